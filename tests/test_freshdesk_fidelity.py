"""Freshdesk as real accounts behave (issue 11; API-NOTES 6.3, 6.4), each behaviour taught to the simulator.

- ``updated_since`` bookmarks keep a lookback: a ticket that shows up in the listing after a run passed
  its ``updated_at`` is still read, and the overlap costs a listing, not a re-sync.
- Write-back: tags of at most 32 characters without commas (checked at config load, refused by the
  vendor), and updates of tickets whose required fields are empty (``?enforce_mandatory=false``).
- Conversation roles from ``source``/``category``: automation notes, forwards and survey comments are
  not agent replies, so first reply and FCR are not broken by them.
- Merges marked by a public, localized note.
- Archived tickets: kept when they leave the listings; status says what cannot be seen; volume months
  that reach before the first sync are flagged partial.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

from config.settings import DistressSettings, KpiSettings, Settings
from connectors.base import WriteRequest
from connectors.normalize import to_epoch
from connectors.sim.base import SimRequest, SimResponse
from connectors.sim.freshdesk import FreshdeskSim
from connectors.sim.freshdesk.render import VENDOR_CONV_ID_BASE
from connectors.sim.model import Message
from kpi_engine import facts
from kpi_engine.engine import compute
from sync.engine import SyncEngine
from sync.store import Store
from tests.freshdesk_kit import (
    AGENT_IDS,
    API_KEY,
    BASE,
    NOW,
    FakeTime,
    make_connector,
    make_source,
    make_world,
    mounted,
    run,
)

AUTH = (API_KEY, "X")
LOOKBACK = 3600  # the kit's sources keep the default "1h"


# -- updated_since with a lookback ------------------------------------------------------------------
def test_a_ticket_listed_only_after_the_run_passed_its_updated_at_is_picked_up_next_run() -> None:
    fake = FakeTime()
    world = make_world(10, same_updated={9: NOW - 120, 10: NOW - 60})
    sim = FreshdeskSim(world, api_key=API_KEY, clock=fake.clock)
    sim.lag(9, 600)  # updated two minutes before the run, listed only ten minutes after its update
    with mounted(sim):
        conn = make_connector(fake=fake)
        first = run(conn.stream("tickets"))
        assert "10" in first.ids("tickets") and "9" not in first.ids("tickets")
        fake.advance(900)
        conversations = sim.requests_made("/conversations")
        second = run(conn.stream("tickets"), first.cursor)
        conversations = sim.requests_made("/conversations") - conversations
    # min(newest stored, run start) - lookback, not the newest value alone
    assert to_epoch(first.cursor["updated_since"]) == NOW - 60 - LOOKBACK
    assert second.ids("tickets") == {"9"}  # 10 is re-listed in the overlap but known unchanged: not re-emitted
    assert conversations == 1 and {m["ticket_id"] for m in second.tables["messages"].values()} == {"9"}


def test_a_late_ticket_whose_updated_at_is_the_bookmark_second_itself_is_picked_up() -> None:
    fake = FakeTime()
    bookmark = NOW - 60 - LOOKBACK
    world = make_world(10, same_updated={8: bookmark, 10: NOW - 60})
    sim = FreshdeskSim(world, api_key=API_KEY, clock=fake.clock)
    sim.lag(8, LOOKBACK + 400)  # becomes visible after the first run
    with mounted(sim):
        conn = make_connector(fake=fake)
        first = run(conn.stream("tickets"))
        fake.advance(900)
        second = run(conn.stream("tickets"), first.cursor)
        fake.advance(900)
        third = run(conn.stream("tickets"), second.cursor)
    assert to_epoch(first.cursor["updated_since"]) == bookmark and "8" not in first.ids("tickets")
    assert second.ids("tickets") == {"8"}
    # Nothing new: the bookmark stays put (it neither walks back run after run nor skips ahead).
    assert third.ids("tickets") == set() and third.cursor["updated_since"] == second.cursor["updated_since"]


def test_a_pass_resumed_after_a_crash_ends_with_the_bookmark_of_a_clean_pass() -> None:
    world = make_world(37, same_updated={5: NOW - 5000, 6: NOW - 5000, 7: NOW - 5000})
    sim = FreshdeskSim(world, api_key=API_KEY)
    with mounted(sim):
        clean = run(make_connector(per_page=4).stream("tickets"))
        for crash_after in range(1, len(clean.pages)):
            partial = run(make_connector(per_page=4).stream("tickets"), stop_after=crash_after)
            assert "pass_from" in partial.cursor  # a pass in progress, not a finished one
            resumed = run(make_connector(per_page=4).stream("tickets"), partial.cursor, into=partial)
            assert resumed.cursor["updated_since"] == clean.cursor["updated_since"], crash_after
            assert resumed.ids("tickets") == clean.ids("tickets"), crash_after


def test_since_filtered_streams_keep_the_lookback_too() -> None:
    world = make_world(3)
    with mounted(FreshdeskSim(world, api_key=API_KEY)):
        got = run(make_connector(per_page=2).stream("contacts"))
    newest = max(p.updated_at for p in world.people if p.role == "customer")
    assert to_epoch(got.cursor["since"]) == newest - LOOKBACK


# -- write-back validation ----------------------------------------------------------------------------
@pytest.mark.parametrize("tag", ["x" * 33, "deskpulse,distress"])
def test_tags_too_long_or_with_a_comma_are_refused_with_freshdesks_validation_error(tag: str) -> None:
    world = make_world(3)
    sim = FreshdeskSim(world, api_key=API_KEY)
    with mounted(sim):
        raw = requests.put(BASE + "/api/v2/tickets/2", json={"tags": [tag]}, auth=AUTH, timeout=5)
        ok = requests.put(BASE + "/api/v2/tickets/2", json={"tags": ["x" * 32]}, auth=AUTH, timeout=5)
        result = make_connector().write(WriteRequest("1", add_tags=[tag]))
    body = raw.json()
    assert raw.status_code == 400 and body["description"] == "Validation failed"
    assert [(e["field"], e["code"]) for e in body["errors"]] == [("tags", "invalid_value")]
    assert ok.status_code == 200
    assert result.outcome == "refused" and "invalid_value" in result.detail
    assert tag not in world.ticket(1).tags  # type: ignore[union-attr]


@pytest.mark.parametrize("tag", ["x" * 33, "deskpulse,distress"])
def test_a_distress_tag_no_helpdesk_would_accept_is_a_config_error(tmp_path: Path, tag: str) -> None:
    config = tmp_path / "deskpulse.toml"
    config.write_text(f'[store]\npath = "{tmp_path / "x.db"}"\n\n[distress]\ntag = "{tag}"\n')
    proc = subprocess.run(["deskpulse", "--config", str(config), "status"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "distress.tag" in lines[0] and "32 characters" in lines[0] and "comma" in lines[0]
    assert DistressSettings(tag="x" * 32).tag == "x" * 32  # the limit itself is fine


def test_an_update_of_a_ticket_with_an_empty_required_field_needs_enforce_mandatory_false() -> None:
    world = make_world(8)  # e-mail tickets; every 4th has the required "product_area" empty
    sim = FreshdeskSim(world, api_key=API_KEY)
    assert world.ticket(4).custom_fields["product_area"] is None  # type: ignore[union-attr]
    with mounted(sim):
        refused = requests.put(BASE + "/api/v2/tickets/4", json={"tags": ["a"]}, auth=AUTH, timeout=5)
        bad_switch = requests.put(BASE + "/api/v2/tickets/4?enforce_mandatory=maybe", json={"tags": ["a"]},
                                  auth=AUTH, timeout=5)
        allowed = requests.put(BASE + "/api/v2/tickets/4?enforce_mandatory=false", json={"tags": ["a"]},
                               auth=AUTH, timeout=5)
        complete = requests.put(BASE + "/api/v2/tickets/3", json={"tags": ["a"]}, auth=AUTH, timeout=5)
        world.ticket(4).tags = ["t4"]  # type: ignore[union-attr]
        result = make_connector().write(WriteRequest("4", add_tags=["deskpulse_distress"],
                                                     fields={"deskpulse_cdi": "77"}))
    assert refused.status_code == 400 and refused.json() == {
        "description": "Validation failed",
        "errors": [{"field": "cf_product_area", "message": "It should be a/an String", "code": "missing_field"}]}
    assert bad_switch.status_code == 400 and bad_switch.json()["errors"][0]["field"] == "enforce_mandatory"
    assert allowed.status_code == 200 and complete.status_code == 200
    assert result.outcome == "applied", result.detail
    assert world.ticket(4).tags == ["t4", "deskpulse_distress"]  # type: ignore[union-attr]
    assert sim.requests_made("PUT /api/v2/tickets/4") == 4


class _NoSwitchSim(FreshdeskSim):
    """An account that refuses ``enforce_mandatory`` as an unknown parameter (the other reading)."""

    def _update_ticket(self, req: SimRequest, ticket_id: str) -> SimResponse:
        if "enforce_mandatory" in req.query:
            return SimResponse.json({"description": "Validation failed", "errors": [
                {"field": "enforce_mandatory", "message": "Unexpected/invalid field in request",
                 "code": "invalid_field"}]}, 400)
        return super()._update_ticket(req, ticket_id)


def test_an_account_refusing_the_switch_gets_the_plain_update() -> None:
    world = make_world(3)
    sim = _NoSwitchSim(world, api_key=API_KEY)
    with mounted(sim):
        result = make_connector().write(WriteRequest("3", add_tags=["deskpulse_distress"]))
    assert result.outcome == "applied" and "deskpulse_distress" in world.ticket(3).tags  # type: ignore[union-attr]
    assert sim.requests_made("PUT /api/v2/tickets/3") == 2


# -- conversation roles -------------------------------------------------------------------------------
def _reply_facts(messages: dict[str, dict[str, Any]]) -> dict[str, tuple[int | None, int]]:
    """Per ticket (first reply time, reply count) exactly as the KPI facts define them (kpi_engine.facts)."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE messages (ticket_id TEXT, author_role TEXT, public INT, kind TEXT, created_at INT)")
    db.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?)",
                   [(m["ticket_id"], m["author_role"], m["public"], m["kind"], m["created_at"])
                    for m in messages.values()])
    rows = db.execute(f"SELECT m.ticket_id, MIN(CASE WHEN {facts.REPLY} THEN m.created_at END), SUM({facts.REPLY}) "
                      f"FROM messages m WHERE {facts.MESSAGE_SCOPE} GROUP BY m.ticket_id").fetchall()
    return {tid: (first, replies) for tid, first, replies in rows}


def test_automation_notes_forwards_and_survey_comments_are_not_agent_replies() -> None:
    world = make_world(12)
    sim = FreshdeskSim(world, api_key=API_KEY)
    with mounted(sim):
        got = run(make_connector().stream("tickets"))
    messages = got.tables["messages"]

    def conv(ticket: int, k: int) -> dict[str, Any]:
        return messages[str(VENDOR_CONV_ID_BASE + ticket * 10 + k)]

    roles = {name: (m["author_role"], m["kind"], m["public"]) for name, m in (
        ("automation", conv(1, 1)), ("forward", conv(2, 2)), ("third party", conv(2, 3)),
        ("survey", conv(5, 4)))}
    assert roles == {"automation": ("system", "automation", 1), "forward": ("agent", "forward", 0),
                     "third party": ("system", "third_party", 0), "survey": ("customer", "feedback", 0)}
    assert conv(5, 4)["body"] == "ok"  # the survey comment is kept, as the customer's text
    # First reply and reply count (FCR, one-touch) are the World's, whatever the vendor added around them.
    got_facts = _reply_facts(messages)
    for tk in world.tickets:
        replies = [m.created_at for m in tk.messages[1:] if m.role == "agent" and m.public]
        assert got_facts[str(tk.id)] == (min(replies), len(replies)), tk.id


# -- merges ---------------------------------------------------------------------------------------------
def _close(world: Any, ticket_id: int, note: str, *, role: str = "system", merged_into: int | None = None) -> None:
    tk = world.ticket(ticket_id)
    at = tk.messages[-1].created_at + 600
    tk.messages.append(Message(99_000 + ticket_id, AGENT_IDS[0], role, role != "system", note, at))
    tk.status, tk.solved_at, tk.merged_into, tk.updated_at = "closed", at, merged_into, at + 5


def test_a_public_localized_merge_note_marks_the_ticket_merged() -> None:
    world = make_world(7)
    _close(world, 4, "This request was closed and merged into request #2.", merged_into=2)  # even id: German
    _close(world, 5, "This request was closed and merged into request #2.", merged_into=2)  # odd id: English
    _close(world, 6, "Closing ticket #6, thanks!", role="agent")  # closed, quoting its own number only
    sim = FreshdeskSim(world, api_key=API_KEY)
    with mounted(sim):
        got = run(make_connector().stream("tickets"))
    tickets, messages = got.tables["tickets"], got.tables["messages"]
    german = messages[str(99_004)]
    assert german["public"] == 1 and "zusammengeführt" in german["body"] and "merged" not in german["body"]
    assert (tickets["4"]["is_merged"], tickets["5"]["is_merged"], tickets["6"]["is_merged"]) == (1, 1, 0)
    assert sum(t["is_merged"] for t in tickets.values()) == 2


# -- archived tickets -----------------------------------------------------------------------------------
def _engine(store: Store, fake: FakeTime) -> SyncEngine:
    source = make_source()
    settings = Settings(sources=[source.model_dump()])
    return SyncEngine(store, settings, connector_factory=lambda _src, _s: make_connector(source, fake=fake))


def test_archived_tickets_leave_the_api_but_stay_in_the_store(tmp_path: Path) -> None:
    fake = FakeTime()
    world = make_world(6)
    _close(world, 3, "Solved, closing.", role="agent")
    sim = FreshdeskSim(world, api_key=API_KEY, clock=fake.clock)
    with mounted(sim), Store(tmp_path / "fd.db") as store:
        engine = _engine(store, fake)
        assert all(r.ok for r in engine.sync_all())
        before = store.query("SELECT status, subject FROM tickets WHERE id = '3'")
        messages = store.scalar("SELECT count(*) FROM messages WHERE ticket_id = '3'")
        sim.archive(3)
        listed = {t["id"] for f in (None, "deleted", "spam") for t in requests.get(
            BASE + "/api/v2/tickets", params={"updated_since": "1970-01-01T00:00:00Z", **({"filter": f} if f else {})},
            auth=AUTH, timeout=5).json()}
        shown = requests.get(BASE + "/api/v2/tickets/3", auth=AUTH, timeout=5)
        archived = requests.get(BASE + "/api/v2/tickets/archived/3", auth=AUTH, timeout=5)
        fake.advance(3600)
        assert all(r.ok for r in engine.sync_all())
        assert all(r.ok for r in engine.sync_all(full=True))
        gone = make_connector(fake=fake).write(WriteRequest("3", add_tags=["deskpulse_distress"]))
        after = store.query("SELECT status, subject FROM tickets WHERE id = '3'")
        assert store.scalar("SELECT count(*) FROM tickets") == 6
        assert store.scalar("SELECT count(*) FROM messages WHERE ticket_id = '3'") == messages
    assert 3 not in listed and shown.status_code == 404
    assert archived.status_code == 200 and archived.json()["id"] == 3 and archived.json()["status"] == 5
    assert before == after == [{"status": "closed", "subject": "Ticket 3"}]  # kept, never marked deleted
    assert gone.outcome == "gone"


def test_status_names_the_archive_horizon_of_each_freshdesk_source(tmp_path: Path) -> None:
    fake = FakeTime()
    db = tmp_path / "fd.db"
    with mounted(FreshdeskSim(make_world(4), api_key=API_KEY, clock=fake.clock)), Store(db) as store:
        assert all(r.ok for r in _engine(store, fake).sync_all())
    config = tmp_path / "deskpulse.toml"
    config.write_text(f'[store]\npath = "{db}"\n\n[[sources]]\nname = "acme-fd"\nkind = "freshdesk"\n'
                      f'base_url = "{BASE}"\napi_key = "{API_KEY}"\n')
    proc = subprocess.run(["deskpulse", "--config", str(config), "status"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "COLUMNS": "400"})
    assert proc.returncode == 0, proc.stderr
    assert ("acme-fd: closed tickets archived by Freshdesk before the first sync are not visible via the API; "
            "history before 2026-09-21 may be partial") in " ".join(proc.stdout.split())
    assert API_KEY not in proc.stdout + proc.stderr


def test_volume_months_reaching_before_the_first_sync_are_flagged_partial(tmp_path: Path) -> None:
    fake = FakeTime()
    with mounted(FreshdeskSim(make_world(20), api_key=API_KEY, clock=fake.clock)), \
            Store(tmp_path / "fd.db") as store:
        assert all(r.ok for r in _engine(store, fake).sync_all())
        settings = Settings()
        args = {"kpi": KpiSettings(timezone="UTC"), "sla": settings.sla, "costs": settings.costs}
        before = compute(store.conn, since=NOW - 90 * 86400, until=NOW, now=NOW, **args)
        later = compute(store.conn, since=NOW + 400 * 86400, until=NOW + 420 * 86400, now=NOW + 430 * 86400,
                        **args)
        store.conn.execute("UPDATE sync_state SET cursor = json_remove(cursor, '$.history_partial_before')")
        unmarked = compute(store.conn, since=NOW - 90 * 86400, until=NOW, now=NOW, **args)
    months = before["kpis"]["monthly_ticket_volume"]
    assert months and all(m["history_partial"] for m in months)
    assert all("acme-fd" in m["partial_reason"] and "2026-09-21" in m["partial_reason"] for m in months)
    assert not any("history_partial" in m for m in later["kpis"]["monthly_ticket_volume"])  # bases after it
    assert not any("history_partial" in m for m in unmarked["kpis"]["monthly_ticket_volume"])
    json.dumps(before)
