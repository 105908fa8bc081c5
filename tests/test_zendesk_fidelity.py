"""Zendesk behaviours the simulator used to get wrong (issue 11): taught to the simulator, fixed in the connector.

- Time-based bookmarks are ``min(newest read, run start) - lookback``: a record that shows up late with an
  older timestamp (eventual consistency, a skewed clock) is read by the next run, and one stamped exactly at
  the previous bookmark second too.
- ``support_type_scope``: the incremental ticket and ticket-event exports leave out tickets handled by AI
  agents unless asked for ``all`` (Incremental Exports API reference); the connector asks on every request.
- Legacy CSAT: a rating record is created when the survey is offered and updated by the answer; the score
  is timed by ``updated_at``, ``offered`` is never a score, and an answer given after the bookmark passed
  the offer is read again (at the latest by the next answer-window sweep).
- An account whose CSAT this API does not serve (Zendesk's newer CSAT: an empty legacy listing; or a 403)
  gets ``csat_pct: null`` with a reason in ``deskpulse kpi --format json`` and a line in ``deskpulse status``,
  never 0% and never a silent null.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from config.settings import Settings
from connectors.sim.base import SimServer
from connectors.sim.model import Org, World
from connectors.sim.world import generate_world
from connectors.sim.zendesk.render import is_ai_agent, survey_offered_at
from connectors.zendesk.streams import RATING_SWEEP_EVERY
from kpi_engine import quality
from kpi_engine.engine import compute
from sync.engine import SyncEngine
from sync.simulators import build_simulator
from sync.store import Store
from tests.test_zendesk_sim import Rig
from tests.zendesk_kit import BASE, EMAIL, TOKEN, FakeTime, json_reply, make_connector, query

EVENTS_URL = f"{BASE}/api/v2/incremental/ticket_events.json"


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(seed=11, tickets=250)


@pytest.fixture
def rsps() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


# -- time-based bookmarks -------------------------------------------------------------------------------
def test_late_organizations_with_older_timestamps_are_read_by_the_next_run(world: World, rsps: Any) -> None:
    rig = Rig(world, rsps)
    rig.sync(rig.connector())
    newest = max(o.updated_at or o.created_at for o in rig.world.orgs)
    # two organizations become visible only after that run, stamped before the newest one it read
    template = rig.world.orgs[0]
    rig.world.orgs.append(Org(900_000_001, "Late Co", "late.example", template.created_at, 1000.0,
                              updated_at=newest - 600))
    rig.world.orgs.append(Org(900_000_002, "Edge Co", "edge.example", template.created_at, 2000.0,
                              updated_at=newest - 3600))  # exactly the bookmark second (default lookback 1h)
    rig.fake.advance(900)
    rig.sync(rig.connector())
    got = {r["id"] for r in rig.store.query("SELECT id FROM organizations")}
    assert {"900000001", "900000002"} <= got
    # the run started after them all: the bookmark is the newest organization read, minus the lookback
    assert rig.cursors["organizations"] == {"start_time": newest - 3600, "high": newest}


def test_a_late_comment_stamped_before_the_last_event_read_is_not_lost(world: World, rsps: Any) -> None:
    rig = Rig(world, rsps)
    rig.sync(rig.connector())
    newest = rig.store.scalar("SELECT max(at) FROM (SELECT max(created_at) AS at FROM messages "
                              "UNION ALL SELECT max(created_at) FROM ticket_events)")
    old = next(t for t in rig.world.tickets if t.updated_at < newest - 7200 and not (t.deleted or t.spam))
    late = rig.sim.add_message(old.id, "Any news on this? Indexed late.", at=newest - 300)
    rig.fake.advance(900)
    rig.sync(rig.connector())
    assert rig.store.scalar("SELECT count(*) FROM messages WHERE id = ?", [str(late.id)]) == 1


def test_bookmark_never_passes_the_run_start_when_the_vendor_clock_runs_ahead(rsps: Any) -> None:
    run_start = 1_720_000_000
    ahead = run_start + 7200  # the vendor's stamps are two hours in our future

    def event(event_id: int, ts: int) -> dict[str, Any]:
        return {"id": event_id, "ticket_id": 7, "timestamp": ts, "updater_id": 5, "event_type": "Audit",
                "child_events": [{"id": event_id * 10, "event_type": "Comment", "body": "hi", "public": True}]}

    visible = [event(1, ahead)]

    def export(request: Any) -> tuple[int, dict[str, str], str]:
        start = int(query(request.url)["start_time"])
        events = [e for e in visible if e["timestamp"] >= start]
        return json_reply({"ticket_events": events, "end_time": max([start] + [e["timestamp"] for e in events]),
                           "next_page": None, "end_of_stream": True})

    rsps.add_callback(responses.GET, EVENTS_URL, callback=export)
    fake = FakeTime(now=run_start)
    (page,) = list(make_connector(fake=fake, start_time=run_start - 86400).stream("ticket_events").pages(None))
    assert page.cursor == {"start_time": run_start - 3600, "high": ahead}  # capped by our run start, minus 1h
    visible.append(event(2, run_start - 1800))  # indexed late, stamped before the newest event read
    fake.advance(600)
    (again,) = list(make_connector(fake=fake).stream("ticket_events").pages(page.cursor))
    assert query(rsps.calls[-1].request.url)["start_time"] == str(run_start - 3600)
    assert sorted(m["id"] for m in again.records["messages"]) == ["10", "20"]
    assert again.cursor == {"start_time": run_start + 600 - 3600, "high": ahead}  # this run's start, minus 1h


# -- support_type_scope -----------------------------------------------------------------------------------
def test_tickets_handled_by_ai_agents_are_synced(world: World, rsps: Any) -> None:
    rig = Rig(world, rsps)
    ai = {t.id for t in rig.world.tickets if is_ai_agent(t)}
    assert ai, "the world has AI-agent tickets"
    # the simulator leaves them out by default, as Zendesk's default scope "agent" does
    default = requests.get(f"{BASE}/api/v2/incremental/tickets/cursor.json", params={"start_time": 0},
                           auth=(f"{EMAIL}/token", TOKEN), timeout=10).json()
    assert default["end_of_stream"] and {t["id"] for t in default["tickets"]}.isdisjoint(ai)
    rig.sync(rig.connector(per_page=100))
    stored = {int(r["id"]) for r in rig.store.query("SELECT id FROM tickets")}
    assert ai <= stored and len(stored) == len(rig.world.tickets)
    ai_messages = sum(len(t.messages) for t in rig.world.tickets if t.id in ai)
    assert rig.store.scalar(f"SELECT count(*) FROM messages WHERE ticket_id IN ({','.join(map(str, ai))})") \
        == ai_messages > 0
    exports = [query(c.request.url) for c in list(rsps.calls)[1:] if "/incremental/tickets" in c.request.url
               or "/incremental/ticket_events" in c.request.url]
    assert exports and all(q.get("support_type_scope") == "all" for q in exports)  # cursor pages included


# -- legacy CSAT: offered, answered later ----------------------------------------------------------------
def test_ratings_are_timed_by_the_answer_and_offers_are_never_scores(world: World, rsps: Any) -> None:
    rig = Rig(world, rsps)
    rig.sync(rig.connector())
    rated = {str(t.rating.id): t.rating.created_at for t in rig.world.tickets if t.rating}
    stored = {r["id"]: r for r in rig.store.query("SELECT id, created_at, score_raw FROM ratings")}
    assert {k: r["created_at"] for k, r in stored.items()} == rated  # answer time; no offered/unoffered rows
    later = [t for t in rig.world.tickets if t.rating and survey_offered_at(t) < t.rating.created_at]
    assert later, "some surveys were answered after they were offered"


def test_a_rating_answered_after_the_bookmark_passed_its_offer_is_read_again(world: World, rsps: Any) -> None:
    rig = Rig(world, rsps)
    rig.sync(rig.connector())
    bookmark = rig.cursors["satisfaction_ratings"]["high"] - 3600
    waiting = next(t for t in rig.world.tickets if t.rating is None and (offered := survey_offered_at(t))
                   and world.now - 20 * 86400 < offered < bookmark - 86400)
    answered_at = int(rig.fake.now) + 60
    rid = rig.sim.answer_rating(waiting.id, 1, answered_at, comment="Took far too long.")
    rig.fake.advance(RATING_SWEEP_EVERY + 60)  # the simulator filters start_time on created_at (the offer)
    rig.sync(rig.connector())
    row = rig.store.query("SELECT * FROM ratings WHERE id = ?", [str(rid)])
    assert len(row) == 1 and row[0]["score_raw"] == "bad" and row[0]["created_at"] == answered_at
    assert row[0]["comment"] == "Took far too long."


# -- CSAT this API does not serve ---------------------------------------------------------------------------
def _sync(tmp_path: Path, world: World, **sim_options: Any) -> Path:
    sim, source = build_simulator("zendesk", world, speedup=1000)
    for key, value in sim_options.items():
        setattr(sim, key, value)
    db = tmp_path / "s.db"
    with SimServer(sim) as server:
        settings = Settings(sources=[{**source, "name": "zd", "base_url": server.url}])
        with Store(db) as store:
            assert all(r.ok for r in SyncEngine(store, settings).sync_all())
    return db


def _kpis(db: Path, now: int) -> dict[str, Any]:
    defaults = Settings()
    with Store(db) as store:
        return compute(store.conn, kpi=defaults.kpi, sla=defaults.sla, costs=defaults.costs,
                       since=now - 365 * 86400, until=now + 1, now=now)


def _deskpulse(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["deskpulse", "--config", str(tmp_path / "none.toml"), "--db", str(tmp_path / "s.db"),
                           *args], capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)


def test_new_csat_account_reports_csat_unavailable_not_zero(tmp_path: Path) -> None:
    world = generate_world(seed=4, tickets=200)
    db = _sync(tmp_path, world, csat="new")
    result = _kpis(db, world.now)
    assert result["kpis"]["csat_pct"] is None
    assert result["reasons"]["csat_pct"].startswith("source zd: CSAT not available through this API")
    assert "newer CSAT" in result["reasons"]["csat_pct"]
    with Store(db) as store:
        assert set(quality.csat_unavailable(store.conn, None, world.now)) == {"zd"}
    # the CLI contract: JSON carries the null with its reason; status says it in one line
    kpi = _deskpulse(tmp_path, "kpi", "--format", "json")
    assert kpi.returncode == 0, kpi.stderr
    out = json.loads(kpi.stdout)
    assert out["kpis"]["csat_pct"] is None and "CSAT not available through this API" in out["reasons"]["csat_pct"]
    table = _deskpulse(tmp_path, "kpi")
    assert table.returncode == 0 and "csat_pct: source zd: CSAT not available through this API" in table.stdout
    status = _deskpulse(tmp_path, "status")
    assert status.returncode == 0, status.stderr
    assert "CSAT (zd)" in status.stdout and "CSAT not available through this API" in status.stdout


def test_legacy_csat_account_has_no_unavailability_reason(tmp_path: Path) -> None:
    world = generate_world(seed=4, tickets=200)
    result = _kpis(_sync(tmp_path, world), world.now)
    assert result["kpis"]["csat_pct"] is not None and "reasons" not in result


def test_csat_forbidden_is_null_with_the_403_reason(tmp_path: Path) -> None:
    world = generate_world(seed=4, tickets=120)
    result = _kpis(_sync(tmp_path, world, csat="off"), world.now)
    assert result["kpis"]["csat_pct"] is None
    assert "CSAT not available through this API" in result["reasons"]["csat_pct"]
    assert "HTTP 403" in result["reasons"]["csat_pct"]


def test_a_source_without_csat_makes_a_mixed_figure_partial(tmp_path: Path) -> None:
    with Store(tmp_path / "m.db") as store:
        store.upsert("sync_state", [{"stream": "satisfaction_ratings", "cursor": json.dumps(
            {"high": None, "swept": 0, "csat_api": "listed"})}], source="zd")
        now = 1_720_000_000
        store.upsert("tickets", [{"id": str(i), "status": "closed", "created_at": now - 40 * 86400,
                                  "solved_at": now - 30 * 86400 + i, "is_merged": 0} for i in range(12)],
                     source="zd")
        unavailable = quality.csat_unavailable(store.conn, ["zd", "fd"], now)
    assert set(unavailable) == {"zd"}
    assert quality.csat_reason(unavailable, None) == f"source zd: {unavailable['zd']}"
    assert quality.csat_reason(unavailable, 87.5).startswith("partial, without zd")
    assert quality.csat_reason({}, None) is None
