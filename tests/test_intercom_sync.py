"""The Intercom connector against the simulator: full and incremental syncs, boundaries, crashes, limits."""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest
import responses

from config.errors import ConfigError
from config.settings import Settings
from connectors.base import Page
from connectors.errors import AuthenticationError
from connectors.intercom import IntercomConnector, build_http, check_base_url
from connectors.sim.base import Fault, SimRequest, SimServer
from connectors.sim.intercom.render import company_id, contact_id
from connectors.sim.world import generate_world
from sync.engine import SyncEngine
from sync.store import Store
from tests.intercom_kit import (
    AGENT_A,
    ALICE,
    BOT,
    NOW,
    ORG_X,
    SOURCE,
    TOKEN,
    Crash,
    FakeTime,
    dump,
    make_connector,
    make_sim,
    make_source,
    mount,
    same_time_world,
    small_world,
    sync,
)


@pytest.fixture
def rm() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def gets(sim: Any) -> int:
    """Conversation retrieves served (search and list calls excluded)."""
    return sum(n for key, n in sim.served.items() if key.startswith("GET /conversations/"))


def test_full_sync_of_a_small_world(rm: Any) -> None:
    fake = FakeTime()
    sim = make_sim(fake=fake)
    mount(rm, sim)
    store = Store(":memory:")
    sync(make_connector(fake), store, {})
    truth = sim.ground_truth()
    counts = store.counts(SOURCE)
    assert counts["tickets"] == truth["conversations"] == 4
    assert counts["ratings"] == truth["ratings"] == 1
    assert counts["messages"] == truth["messages"]
    assert counts["quarantine"] == 0
    tickets = {t["id"]: t for t in store.query("SELECT * FROM tickets")}
    assert tickets["101"]["organization_id"] == company_id(ORG_X)
    assert tickets["101"]["requester_id"] == contact_id(ALICE)
    assert tickets["103"]["organization_id"] is None  # a lead without a company
    assert (tickets["101"]["status"], tickets["102"]["status"], tickets["103"]["status"]) == (
        "closed", "open", "pending")
    assert tickets["101"]["vendor_reopens"] == 1
    assert tickets["101"]["solved_at"] == tickets["101"]["created_at"] + 4 * 3600
    assert tickets["102"]["group_id"] == "42"
    body = store.scalar("SELECT body FROM messages WHERE id='src-101'")
    assert body == "I can't log in &amp; it's <urgent>!"  # HTML rendering round-trips the exact text
    roles = {r["author_id"]: r["author_role"]
             for r in store.query("SELECT author_id, author_role FROM messages WHERE ticket_id='101'")}
    assert roles[str(BOT)] == "bot"  # the bot auto-reply is never an agent reply
    statuses = [r["new_value"] for r in store.query(
        "SELECT new_value FROM ticket_events WHERE ticket_id='101' AND field='status' ORDER BY created_at")]
    assert statuses == ["pending", "closed", "open", "closed"]  # the reopen is visible
    people = {p["id"]: p for p in store.query("SELECT * FROM people")}
    assert people[str(AGENT_A)]["role"] == "agent" and str(BOT) not in people
    assert people[contact_id(ALICE)]["organization_id"] == company_id(ORG_X)
    org = store.query("SELECT * FROM organizations WHERE id=?", [company_id(ORG_X)])[0]
    assert org["value"] == 120000.0


def test_generated_world_matches_ground_truth(rm: Any) -> None:
    world = generate_world(seed=7, tickets=250, now=NOW - 86400)
    fake = FakeTime()
    sim = make_sim(world, fake=fake)
    mount(rm, sim)
    store = Store(":memory:")
    sync(make_connector(fake, make_source(per_page=40)), store, {})
    truth = sim.ground_truth()
    counts = store.counts(SOURCE)
    assert counts["tickets"] == truth["conversations"]
    assert counts["ratings"] == truth["ratings"]
    assert counts["messages"] == truth["messages"]
    assert counts["organizations"] == truth["companies"]
    assert counts["people"] == truth["contacts"] + truth["admins"]
    visible = {t.id: t for t in world.tickets if not (t.deleted or t.spam or t.merged_into)}
    for row in store.query("SELECT id, organization_id, status, solved_at FROM tickets"):
        t = visible[int(row["id"])]
        assert row["organization_id"] == (company_id(t.org_id) if t.org_id else None)
        assert row["status"] == {"new": "open", "open": "open", "pending": "pending", "on_hold": "pending",
                                 "solved": "closed", "closed": "closed"}[t.status]
        if row["status"] == "closed":
            assert row["solved_at"] == t.solved_at
    bots = store.scalar("SELECT count(*) FROM messages WHERE author_role='agent' AND author_id IN "
                        "(SELECT author_id FROM messages WHERE author_role='bot')")
    assert bots == 0


@pytest.mark.parametrize("inclusive", [True, False])
def test_overlap_is_reread_but_nothing_stored_is_fetched_again(rm: Any, inclusive: bool) -> None:
    fake = FakeTime()
    updated = int(fake.now) - 2 * 3600  # the account's newest second, shared by five conversations
    sim = make_sim(same_time_world(5, updated), fake=fake, inclusive=inclusive)
    mount(rm, sim)
    store = Store(":memory:")
    cursors: dict[str, Any] = {}
    source = make_source(per_page=2)  # five equal timestamps straddle three pages
    sync(make_connector(fake, source), store, cursors, streams=("conversations",))
    assert gets(sim) == 5
    assert cursors["conversations"]["since"] == updated - 3600  # newest stored - lookback (1h), not run start
    searches = sim.requests_made("POST /conversations/search")
    fake.now += 900
    sync(make_connector(fake, source), store, cursors, streams=("conversations",))
    assert sim.requests_made("POST /conversations/search") - searches == 3  # the overlap is re-matched ...
    assert gets(sim) == 5  # ... but nothing already stored is fetched again
    sim.touch(203, body="one more thing")
    fake.now += 900
    sync(make_connector(fake, source), store, cursors, streams=("conversations",))
    assert gets(sim) == 6
    assert store.scalar("SELECT count(*) FROM messages WHERE body='one more thing'") == 1


@pytest.mark.parametrize("inclusive", [True, False])
def test_watermark_misses_nothing_under_either_reading_of_greater_than(rm: Any, inclusive: bool) -> None:
    fake = FakeTime()
    sim = make_sim(fake=fake, inclusive=inclusive)
    mount(rm, sim)
    store = Store(":memory:")
    cursors: dict[str, Any] = {}
    sync(make_connector(fake), store, cursors, streams=("conversations",))
    watermark = cursors["conversations"]["since"]
    sim.touch(102, body="exactly at the watermark", at=watermark)
    fake.now += 3600
    sync(make_connector(fake), store, cursors, streams=("conversations",))
    assert store.scalar("SELECT count(*) FROM messages WHERE body='exactly at the watermark'") == 1


@pytest.mark.parametrize("honor_sort", [True, False])
def test_conversation_touched_during_sync_is_picked_up_next_run(rm: Any, honor_sort: bool) -> None:
    fake = FakeTime()
    sim = make_sim(fake=fake, honor_sort=honor_sort)
    mount(rm, sim)
    store = Store(":memory:")
    cursors: dict[str, Any] = {}
    touched: list[str] = []

    def during(stream: str, page: Page) -> None:
        if stream == "conversations" and not touched:
            first = page.records["tickets"][0]["id"]  # already stored by this run
            fake.now += 5
            sim.touch(first, body="written while syncing")
            fake.now += 5
            sim.touch(104, body="a later edit, still ahead of the cursor")  # newest updated_at seen this run
            touched.append(first)

    sync(make_connector(fake, make_source(per_page=2)), store, cursors, after_page=during)
    if not honor_sort:  # id order: the touched conversation was already behind the cursor
        assert store.scalar("SELECT count(*) FROM messages WHERE body='written while syncing'") == 0
    fake.now += 600
    sync(make_connector(fake, make_source(per_page=2)), store, cursors)
    assert store.scalar("SELECT count(*) FROM messages WHERE body='written while syncing'") == 1
    ticket = store.query("SELECT updated_at FROM tickets WHERE id=?", [touched[0]])[0]
    assert ticket["updated_at"] == sim.world.ticket(int(touched[0])).updated_at


def test_crash_after_any_page_then_resume_equals_a_clean_run(rm: Any) -> None:
    world = generate_world(seed=3, tickets=60, now=NOW - 86400)
    fake = FakeTime()
    source = make_source(per_page=15)
    clean_sim = make_sim(world, fake=fake)
    mount(rm, clean_sim)
    clean_store, clean_cursors = Store(":memory:"), {}
    total_pages = sync(make_connector(fake, source), clean_store, clean_cursors)
    expected = dump(clean_store)
    assert total_pages >= 10
    for crash_at in range(1, total_pages):
        rm.reset()
        sim = make_sim(world, fake=fake)
        mount(rm, sim)
        store, cursors = Store(":memory:"), {}
        with pytest.raises(Crash):
            sync(make_connector(fake, source), store, cursors, crash_after=crash_at)
        sync(make_connector(fake, source), store, cursors)  # a new process resumes from the stored cursors
        assert dump(store) == expected, f"crash after page {crash_at}"
        assert cursors == clean_cursors


def test_resume_with_a_refused_cursor_restarts_the_query(rm: Any) -> None:
    fake = FakeTime()
    sim = make_sim(fake=fake)
    mount(rm, sim)
    store, cursors = Store(":memory:"), {}
    with pytest.raises(Crash):
        sync(make_connector(fake, make_source(per_page=1)), store, cursors, streams=("conversations",),
             crash_after=1)
    cursors["conversations"]["starting_after"] = "expired-cursor"
    sync(make_connector(fake, make_source(per_page=1)), store, cursors, streams=("conversations",))
    assert store.counts(SOURCE)["tickets"] == 4
    assert sim.statuses[400] == 1


def test_parts_cap_is_recorded_and_logged(rm: Any, caplog: Any) -> None:
    fake = FakeTime()
    sim = make_sim(fake=fake, parts_cap=3)
    mount(rm, sim)
    store = Store(":memory:")
    with caplog.at_level(logging.WARNING, logger="deskpulse.connectors.intercom"):
        sync(make_connector(fake), store, {}, streams=("conversations",))
    metrics = store.scalar("SELECT vendor_metrics FROM tickets WHERE id='101'")
    assert '"parts_truncated":true' in metrics
    assert store.scalar("SELECT vendor_metrics FROM tickets WHERE id='102'").find("parts_truncated") == -1
    assert any("101" in r.getMessage() and "500 most recent" in r.getMessage() for r in caplog.records)
    assert store.scalar("SELECT count(*) FROM messages WHERE ticket_id='101' AND kind='comment'") <= 3


def test_429_without_retry_after_waits_for_the_reset(rm: Any) -> None:
    fake = FakeTime(now=1_800_000_002.0)
    sim = make_sim(fake=fake, limit_per_window=3)
    mount(rm, sim)
    for _ in range(3):  # another integration of the workspace used this 10-second window up
        sim.handle(SimRequest("GET", "/admins", {}, {"Authorization": f"Bearer {TOKEN}"}))
    store = Store(":memory:")
    sync(make_connector(fake), store, {}, streams=("admins",))
    assert sim.statuses[429] == 1
    refused = rm.calls[0].response
    assert refused.status_code == 429 and "Retry-After" not in refused.headers
    assert fake.sleeps[0] == pytest.approx(8.0)  # from :02 to the window's X-RateLimit-Reset at :10
    assert store.counts(SOURCE)["people"] == 2


def test_malformed_conversations_are_quarantined_and_the_page_goes_on(rm: Any) -> None:
    fake = FakeTime()
    sim = make_sim(fake=fake)
    mount(rm, sim)
    sim.inject(Fault("malformed", count=1, path="/conversations/search"))
    sim.inject(Fault("malformed", count=1, path="/conversations/103"))
    store = Store(":memory:")
    sync(make_connector(fake), store, {}, streams=("conversations",))
    bad = store.query("SELECT stream, record_id, error FROM quarantine ORDER BY record_id")
    assert len(bad) == 2 and {b["stream"] for b in bad} == {"conversations"}
    assert "103" in {b["record_id"] for b in bad}
    assert store.counts(SOURCE)["tickets"] == 2


def test_conversation_deleted_between_search_and_get_is_skipped(rm: Any) -> None:
    fake = FakeTime()
    sim = make_sim(fake=fake)
    original = sim.handle

    def handle(req: Any) -> Any:
        resp = original(req)
        if req.path == "/conversations/search":
            sim.conversations.records.pop(102, None)  # deleted right after the search answered
        return resp

    sim.handle = handle  # type: ignore[method-assign]
    mount(rm, sim)
    store = Store(":memory:")
    sync(make_connector(fake), store, {}, streams=("conversations",))
    assert sorted(r["id"] for r in store.query("SELECT id FROM tickets")) == ["101", "103", "104"]
    assert sim.statuses[404] == 1


def test_a_no_change_run_is_cheap(rm: Any) -> None:
    fake = FakeTime()
    sim = make_sim(fake=fake)
    mount(rm, sim)
    store, cursors = Store(":memory:"), {}
    sync(make_connector(fake), store, cursors)
    fake.now += 900
    before = sum(sim.served.values())
    connector = make_connector(fake)
    sync(connector, store, cursors)
    assert connector.http.requests_sent == sum(sim.served.values()) - before
    assert connector.http.requests_sent <= 4  # admins, teams, one contacts search, one conversations search
    assert gets(sim) == 4  # only the first run retrieved conversations


def test_bad_token_fails_without_leaking_it(rm: Any, caplog: Any) -> None:
    fake = FakeTime()
    sim = make_sim(fake=fake)
    mount(rm, sim)
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthenticationError) as info:
        sync(make_connector(fake, make_source(access_token="wrong-token-123456")), Store(":memory:"), {})
    assert "401" in str(info.value)
    assert "wrong-token-123456" not in str(info.value) + caplog.text
    assert rm.calls[0].request.headers["Intercom-Version"] == "2.16"  # the default version (API-NOTES 6.1)


def test_world_copies_are_independent() -> None:
    world = small_world()
    a, b = make_sim(world), make_sim(world)
    a.touch(101, body="only in a")
    assert b.world.ticket(101).updated_at == copy.deepcopy(world).ticket(101).updated_at


def test_engine_over_loopback_with_worker_threads_and_a_rate_limit() -> None:
    world = generate_world(seed=11, tickets=120, now=NOW - 86400)
    fake = FakeTime()
    sim = make_sim(world, fake=fake, limit_per_window=40)
    with SimServer(sim) as server:
        settings = Settings(sources=[{"kind": "intercom", "name": SOURCE, "base_url": server.url,
                                      "access_token": TOKEN, "admin_id": str(AGENT_A)}])

        def factory(source: Any, _settings: Settings) -> IntercomConnector:
            http = build_http(source, clock=fake.clock, sleep=fake.sleep)
            return IntercomConnector(source, http=http, clock=fake.clock, workers=4)

        store = Store(":memory:")
        [report] = SyncEngine(store, settings, connector_factory=factory, clock=fake.clock).sync_all()
    assert report.ok, report.error or [s.error for s in report.streams]
    truth = sim.ground_truth()
    counts = store.counts(SOURCE)
    assert (counts["tickets"], counts["messages"], counts["ratings"]) == (
        truth["conversations"], truth["messages"], truth["ratings"])
    severities = {r["priority"]: r["severity"] for r in store.query("SELECT DISTINCT priority, severity FROM tickets")}
    # the engine maps Intercom's priority: 2.16 levels, "none" stored as 2.11's not_priority
    assert severities == {"urgent": 3, "high": 2, "not_priority": 1, "low": 1}
    assert report.requests is not None and report.requests >= truth["conversations"]


def test_web_app_url_is_rejected_with_a_hint() -> None:
    with pytest.raises(ConfigError, match="api.eu.intercom.io"):
        check_base_url(make_source(base_url="https://app.intercom.com"))
    assert check_base_url(make_source(base_url="https://api.au.intercom.io")) == "https://api.au.intercom.io"


def test_company_scroll_expiring_mid_run_is_restarted() -> None:
    """One long gap between two scroll pages (a backoff) outlives the 60 s scroll_param: start the scroll over."""
    fake = FakeTime()
    world = generate_world(seed=3, tickets=2400)  # > 50 companies: several scroll pages
    sim = make_sim(world, fake)
    store = Store(":memory:")
    gaps = {"n": 0}

    def slow_once(stream: str, page: Page) -> None:
        if stream == "companies" and gaps["n"] == 0:
            gaps["n"] += 1
            fake.now += 90  # the next scroll request finds its scroll_param expired

    connector = make_connector(fake)
    connector.ctx.companies_chunk = 50  # one scroll call per committed page, so the gap falls between calls
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rm:
        mount(rm, sim)
        sync(connector, store, {}, streams=("companies",), after_page=slow_once)
    assert gaps["n"] == 1
    assert sim.statuses[404] == 1  # the expired scroll_param, then a new scroll from the start
    assert store.scalar("SELECT count(*) FROM organizations") == len(world.orgs) > 50
