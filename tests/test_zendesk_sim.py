"""The Zendesk connector against the Zendesk simulator (same code as the loopback server, via ``responses``).

A full sync of a generated world must reproduce the world's ground truth; a run
with nothing new costs one request per stream; a sync interrupted after any
committed page and resumed from its cursor ends in the same store; 504s above a
page size shrink the page; the export limit is respected without real sleeping.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import responses

from config.settings import Settings
from connectors.base import Page, WriteRequest
from connectors.sim.base import responses_callback
from connectors.sim.model import World
from connectors.sim.world import generate_world
from connectors.sim.zendesk import ZendeskSim
from connectors.zendesk import ZendeskConnector
from sync.engine import SyncEngine
from sync.store import Store
from tests.zendesk_kit import BASE, EMAIL, TOKEN, FakeTime, make_connector, make_source

STREAMS = ("ticket_fields", "groups", "organizations", "users", "tickets", "ticket_events", "satisfaction_ratings")
SOURCE = "acme-zd"


#: a fixed end for the world: which tickets are still "solved" (not yet closed) depends on where the history
#: ends, and a wall-clock end left this one without any on some days (the reopen test needs one)
WORLD_NOW = 1_780_000_000


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(seed=11, tickets=250, now=WORLD_NOW)


class Rig:
    """A simulator mounted on ``responses`` and a fake clock shared by simulator and connector."""

    def __init__(self, world: World, mock: responses.RequestsMock, **sim_options: Any) -> None:
        self.fake = FakeTime(now=world.now + 3600.0)  # past the simulator's one-minute export exclusion
        self.world = copy.deepcopy(world)  # the simulator mutates its world on writes
        self.sim = ZendeskSim(self.world, email=EMAIL, token=TOKEN, clock=self.fake.clock, **sim_options)
        self.sim.base_url = BASE
        callback = responses_callback(self.sim)
        for method in (responses.GET, responses.PUT, responses.POST, responses.DELETE):
            mock.add_callback(method, re.compile(re.escape(BASE) + r"/.*"), callback=callback)
        self.store = Store(":memory:")
        self.cursors: dict[str, Any] = {}

    def connector(self, **source_options: Any) -> ZendeskConnector:
        return make_connector(make_source(**source_options), fake=self.fake)

    def commit(self, stream: str, page: Page) -> None:
        """What the engine does per page: rows, quarantine and cursor in one transaction."""
        with self.store.transaction():
            for table, rows in page.records.items():
                self.store.upsert(table, rows, source=SOURCE)
            for bad in page.quarantine:
                self.store.quarantine(SOURCE, bad.stream, bad.record_id, bad.error, bad.raw)
            self.cursors[stream] = page.cursor

    def sync(self, connector: ZendeskConnector, stop_after: int | None = None) -> int:
        """Run every stream from the saved cursors; optionally 'crash' after ``stop_after`` committed pages."""
        committed = 0
        for stream in connector.streams():
            pages: Iterator[Page] = stream.pages(self.cursors.get(stream.name))
            for page in pages:
                self.commit(stream.name, page)
                committed += 1
                if stop_after is not None and committed >= stop_after:
                    return committed
        return committed

    def count(self, table: str) -> int:
        return int(self.store.scalar(f"SELECT count(*) FROM {table} WHERE source=?", [SOURCE]))


TABLE_OF = {"tickets": "tickets", "messages": "messages", "people": "people", "organizations": "organizations",
            "ratings": "ratings", "groups": "groups"}


def truth(rig: Rig) -> dict[str, int]:
    """The simulator's own reference counts for the tables a full sync fills."""
    reference = rig.sim.ground_truth()
    return {table: reference[key] for key, table in TABLE_OF.items()}


def stored(rig: Rig) -> dict[str, int]:
    return {table: rig.count(table) for table in TABLE_OF.values()}


@pytest.fixture
def rsps() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def test_full_sync_reproduces_the_ground_truth(world: World, rsps: Any) -> None:
    rig = Rig(world, rsps)
    rig.sync(rig.connector(per_page=100))
    assert stored(rig) == truth(rig)
    assert rig.count("quarantine") == 0
    reference = rig.sim.ground_truth()
    assert rig.store.scalar("SELECT count(*) FROM tickets WHERE status='deleted'") == reference["tickets_deleted"]
    assert rig.store.scalar("SELECT sum(is_merged) FROM tickets") == reference["tickets_merged"]
    assert rig.store.scalar("SELECT sum(public) FROM messages") == reference["messages_public"]
    assert rig.store.scalar("SELECT count(*) FROM ticket_events WHERE field='status' AND old_value IS NOT NULL") \
        == reference["status_changes"]

    # statuses, merges and vendor metrics per ticket
    tickets = {r["id"]: r for r in rig.store.query("SELECT * FROM tickets")}
    for t in world.tickets:
        row = tickets[str(t.id)]
        assert row["status"] == ("deleted" if t.deleted or t.spam else t.status)
        assert row["is_merged"] == int(t.merged_into is not None)
        assert row["solved_at"] == t.solved_at
        assert row["created_at"] == t.created_at and row["requester_id"] == str(t.requester_id)

    # every comment's author role is known after the users stream ran earlier in the same sync
    roles = {r["id"]: (r["author_role"], r["kind"], r["public"]) for r in rig.store.query("SELECT * FROM messages")}
    for t in world.tickets:
        for i, m in enumerate(t.messages):
            expected_role = "system" if m.role in ("bot", "system") else m.role
            assert roles[str(m.id)] == (expected_role, "description" if i == 0 else "comment", int(m.public))

    # every status change of the world arrives as a ticket event, normalized like ticket statuses
    status_changes = Counter((str(c.old), str(c.new)) for t in world.tickets for c in t.changes
                             if c.field == "status")
    got = Counter((str(r["old_value"]), str(r["new_value"])) for r in rig.store.query(
        "SELECT * FROM ticket_events WHERE field='status' AND old_value IS NOT NULL"))
    assert got == status_changes

    ratings = Counter(r["score_raw"] for r in rig.store.query("SELECT score_raw FROM ratings"))
    assert set(ratings) <= {"good", "bad"} and sum(ratings.values()) == reference["ratings"]


def test_run_with_nothing_new_costs_one_request_per_stream(world: World, rsps: Any) -> None:
    rig = Rig(world, rsps)
    rig.sync(rig.connector())
    before = {name: rig.sim.requests_made(name) for name in ("tickets/cursor", "users/cursor", "ticket_events",
                                                              "incremental/organizations", "satisfaction_ratings",
                                                              "ticket_fields", "groups")}
    total_before = sum(rig.sim.served.values())
    counts = stored(rig)
    rig.fake.sleep(900)  # the next scheduled run, 15 minutes later; the world did not change
    rig.sync(rig.connector())  # a fresh connector, as the engine builds one per run
    after = {name: rig.sim.requests_made(name) - n for name, n in before.items()}
    assert after == dict.fromkeys(before, 1)
    assert sum(rig.sim.served.values()) - total_before == len(STREAMS)
    assert stored(rig) == counts
    # the overlap re-read comments whose authors this fresh connector never saw: stored roles survive
    assert rig.store.scalar("SELECT count(*) FROM messages WHERE author_role IS NULL") == 0


@pytest.mark.parametrize("crash_after", [1, 4, 9])
def test_crash_after_any_committed_page_then_resume_loses_nothing(world: World, rsps: Any, crash_after: int) -> None:
    rig = Rig(world, rsps)
    committed = rig.sync(rig.connector(per_page=50), stop_after=crash_after)
    assert committed == crash_after
    rig.sync(rig.connector(per_page=50))
    assert stored(rig) == truth(rig)


def test_gateway_timeouts_above_a_page_size_are_survived(world: World, rsps: Any) -> None:
    rig = Rig(world, rsps, timeout_above_per_page=120)
    connector = rig.connector(per_page=1000)
    pages = list(connector.stream("tickets").pages(None))
    assert sum(len(p.records["tickets"]) for p in pages) == len(world.tickets)
    assert rig.sim.statuses[504] >= 4  # 1000 -> 500 -> 250 -> 125 -> 62 (ok)
    sizes = [int(c.request.params["per_page"]) for c in rsps.calls]
    assert sizes[:5] == [1000, 500, 250, 125, 62]


def test_export_limit_is_respected_without_real_sleep(world: World, rsps: Any) -> None:
    rig = Rig(world, rsps, export_limit_per_minute=10)
    started = rig.fake.now
    rig.sync(rig.connector(per_page=10))  # many small export pages: well over 10 export requests
    exports = rig.sim.requests_made("/api/v2/incremental/")
    assert exports > 20
    assert rig.sim.statuses[429] == 0  # paced below the limit, never refused
    assert rig.fake.now - started >= 60 * (exports // 10 - 1)
    assert rig.count("tickets") == len(world.tickets)


def test_activity_between_runs_arrives_incrementally(world: World, rsps: Any) -> None:
    rig = Rig(world, rsps)
    rig.sync(rig.connector())
    rig.fake.sleep(600)
    new = rig.sim.add_ticket(subject="Export stuck", body="Our export has been stuck since this morning.")
    solved = next(t for t in rig.world.tickets if t.status == "solved")
    rig.sim.add_message(solved.id, "Still broken, please help", role="customer")  # reopens it
    rig.fake.sleep(120)  # past the one-minute export exclusion
    before = sum(rig.sim.served.values())
    rig.sync(rig.connector())
    assert stored(rig) == truth(rig)
    assert sum(rig.sim.served.values()) - before == len(STREAMS)  # still one page per stream
    row = rig.store.query("SELECT * FROM tickets WHERE id=?", [str(new.id)])[0]
    assert (row["status"], row["subject"]) == ("new", "Export stuck")
    # the requester existed before this run, so this fresh connector cannot know the role: left NULL for the
    # engine's people join (see test_engine_resolves_roles_the_connector_could_not_know)
    assert rig.store.query("SELECT kind, author_role FROM messages WHERE ticket_id=?", [str(new.id)]) == [
        {"kind": "description", "author_role": None}]
    assert rig.store.scalar("SELECT status FROM tickets WHERE id=?", [str(solved.id)]) == "open"
    reopened = rig.store.query("SELECT old_value, new_value FROM ticket_events WHERE ticket_id=? AND field='status' "
                               "ORDER BY created_at DESC LIMIT 1", [str(solved.id)])
    assert reopened == [{"old_value": "solved", "new_value": "open"}]
    reply = rig.store.query("SELECT public, kind FROM messages WHERE ticket_id=? ORDER BY created_at DESC "
                            "LIMIT 1", [str(solved.id)])
    assert reply == [{"public": 1, "kind": "comment"}]


def test_write_back_through_the_simulator(world: World, rsps: Any) -> None:
    rig = Rig(world, rsps)
    connector = rig.connector()
    target = next(t for t in rig.world.tickets if t.status != "closed" and not (t.deleted or t.spam))
    result = connector.write(WriteRequest(str(target.id), add_tags=["deskpulse_distress"],
                                          fields={"deskpulse_cdi": "83"}))
    assert result.outcome == "applied"
    assert result.tags is not None and "deskpulse_distress" in result.tags
    assert target.custom_fields["deskpulse_cdi"] == "83" and "deskpulse_distress" in target.tags
    removed = connector.write(WriteRequest(str(target.id), remove_tags=["deskpulse_distress"]))
    assert removed.outcome == "applied" and "deskpulse_distress" not in (removed.tags or [])

    closed = next(t for t in rig.world.tickets if t.status == "closed" and not (t.deleted or t.spam))
    refused = connector.write(WriteRequest(str(closed.id), add_tags=["deskpulse_distress"]))
    assert refused.outcome == "refused" and "RecordInvalid" in refused.detail
    gone_ticket = next(t for t in rig.world.tickets if t.deleted or t.spam)
    assert connector.write(WriteRequest(str(gone_ticket.id), add_tags=["x"])).outcome == "gone"
    assert TOKEN not in refused.detail

    # the write bumped the ticket: the next export brings it back with the new field value
    rig.fake.sleep(120)
    rig.sync(rig.connector())
    row = rig.store.query("SELECT custom_fields, tags FROM tickets WHERE id=?", [str(target.id)])[0]
    assert '"360002":"83"' in row["custom_fields"] and "deskpulse_distress" not in row["tags"]


def test_engine_resolves_roles_the_connector_could_not_know(world: World, rsps: Any) -> None:
    rig = Rig(world, rsps)
    source = make_source()
    settings = Settings(sources=[source.model_dump(mode="json") | {"api_token": TOKEN}])
    engine = SyncEngine(rig.store, settings, clock=rig.fake.clock,
                        connector_factory=lambda src, _settings: make_connector(src, fake=rig.fake))
    first = engine.sync_source(settings.sources[0])
    assert first.ok and stored(rig) == truth(rig)
    rig.fake.sleep(600)
    new = rig.sim.add_ticket(subject="Export stuck")
    rig.fake.sleep(120)
    second = engine.sync_source(settings.sources[0])
    assert second.ok and stored(rig) == truth(rig)
    assert rig.store.query("SELECT author_role FROM messages WHERE ticket_id=?", [str(new.id)]) == [
        {"author_role": "customer"}]
    assert rig.store.scalar("SELECT count(*) FROM messages WHERE author_role IS NULL") == 0
