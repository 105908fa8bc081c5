"""The Freshdesk connector against the simulator: completeness, the page cap, resume, cost, faults."""

from __future__ import annotations

import logging

import pytest

from connectors.sim.base import Fault
from connectors.sim.freshdesk import FreshdeskSim
from connectors.sim.world import generate_world
from tests.freshdesk_kit import (
    API_KEY,
    NOW,
    Collected,
    FakeTime,
    main_ticket_ids,
    make_connector,
    make_source,
    make_world,
    mounted,
    run,
)


def test_full_sync_of_a_generated_world_matches_ground_truth() -> None:
    world = generate_world(seed=11, tickets=400)
    sim = FreshdeskSim(world, api_key=API_KEY)
    truth = sim.ground_truth()
    fake = FakeTime(world.now + 60)
    with mounted(sim):
        conn = make_connector(fake=fake)
        got = Collected()
        for stream in conn.streams():
            run(stream, into=got)
    tickets = got.tables["tickets"]
    assert len(tickets) == truth["tickets_total"]
    assert sum(1 for t in tickets.values() if t["status"] == "deleted") == \
        truth["deleted_tickets"] + truth["spam_tickets"]
    assert sum(t["is_spam"] for t in tickets.values()) == truth["spam_tickets"]
    assert len(got.tables["messages"]) == truth["messages"]
    assert len(got.tables["ratings"]) == truth["ratings"]
    assert len(got.tables["time_entries"]) == truth["time_entries"]
    assert len(got.tables["organizations"]) == truth["companies"]
    assert {r["value"] for r in got.tables["organizations"].values()} == {o.value for o in world.orgs}
    # Normalization agrees with the world: status, solve time, and who wrote what.
    for tk in world.tickets:
        row = tickets[str(tk.id)]
        if not tk.deleted and not tk.spam:
            expected = {"new": "open", "on_hold": "open"}.get(tk.status, tk.status)
            assert row["status"] == expected
            assert row["solved_at"] == tk.solved_at
            assert row["is_merged"] == int(tk.merged_into is not None)
    messages = got.tables["messages"]
    for tk in world.tickets[:100]:
        if tk.deleted or tk.spam:
            continue  # the trash and spam passes read tickets only
        for msg in tk.messages[1:]:
            if msg.role in ("customer", "agent"):
                assert messages[str(msg.id)]["author_role"] == msg.role
                assert messages[str(msg.id)]["public"] == int(msg.public)


def test_page_cap_with_tiny_pages_loses_nothing_and_emits_each_ticket_once() -> None:
    world = make_world(100)
    sim = FreshdeskSim(world, api_key=API_KEY, max_pages=3)
    with mounted(sim):
        conn = make_connector(make_source(max_pages=3), per_page=5)
        got = run(conn.stream("tickets"))
    assert got.ids("tickets") == main_ticket_ids(world)
    assert max(got.emitted.values()) == 1  # boundary re-reads are recognized, not re-emitted
    assert sim.statuses[400] == 0  # keyset paging never asks past the cap
    assert len(got.tables["messages"]) == sim.ground_truth()["messages"]


@pytest.mark.parametrize("cap_mode", ["error", "empty"])
def test_one_second_group_wider_than_a_page_is_paged_through(cap_mode: str) -> None:
    same = {tid: NOW - 1000 for tid in range(30, 43)}  # 13 tickets share one updated_at; pages of 5
    world = make_world(60, same_updated=same)
    sim = FreshdeskSim(world, api_key=API_KEY, max_pages=3, cap_mode=cap_mode)
    with mounted(sim):
        got = run(make_connector(make_source(max_pages=3), per_page=5).stream("tickets"))
    assert got.ids("tickets") == main_ticket_ids(world)


@pytest.mark.parametrize("connector_cap", [3, 10])  # 10: the account's cap is lower than configured
@pytest.mark.parametrize("cap_mode", ["error", "empty"])
def test_a_group_wider_than_the_cap_is_reported_and_the_listing_goes_on(cap_mode: str, connector_cap: int,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    same = {tid: NOW - 1000 for tid in range(10, 30)}  # 20 tickets in one second, but only 3 pages of 5
    world = make_world(40, same_updated=same)
    for tid in range(30, 41):
        world.ticket(tid).updated_at = NOW - 900 + tid  # type: ignore[union-attr]
    sim = FreshdeskSim(world, api_key=API_KEY, max_pages=3, cap_mode=cap_mode)
    with caplog.at_level(logging.WARNING, logger="deskpulse.connectors.freshdesk"), mounted(sim):
        got = run(make_connector(make_source(max_pages=connector_cap), per_page=5).stream("tickets"))
    assert "updated_at" in caplog.text and "cannot be listed" in caplog.text
    ids = got.ids("tickets")
    assert {str(t) for t in range(30, 41)} <= ids  # everything after the oversized second still arrives
    assert len({str(t) for t in range(10, 30)} & ids) == 15  # what Freshdesk can list of that second


@pytest.mark.parametrize("exclusive", [False, True])
def test_boundary_seconds_are_complete_whether_updated_since_is_inclusive_or_not(exclusive: bool) -> None:
    # Pairs of tickets share a second, so page boundaries (pages of 3) keep falling inside a shared second.
    same = {tid: NOW - 10_000 + tid // 2 for tid in range(1, 31)}
    world = make_world(30, same_updated=same)
    sim = FreshdeskSim(world, api_key=API_KEY, updated_since_exclusive=exclusive)
    with mounted(sim):
        conn = make_connector(per_page=3)
        got = run(conn.stream("tickets"))
        again = run(conn.stream("tickets"), got.cursor)
    assert got.ids("tickets") == main_ticket_ids(world)
    assert max(got.emitted.values()) == 1
    assert again.ids("tickets") == set()


def test_resume_after_a_crash_after_any_page_equals_a_clean_run() -> None:
    world = make_world(37, same_updated={5: NOW - 5000, 6: NOW - 5000, 7: NOW - 5000})
    sim = FreshdeskSim(world, api_key=API_KEY)
    with mounted(sim):
        clean = run(make_connector(per_page=4).stream("tickets"))
        for crash_after in range(1, len(clean.pages) + 1):
            partial = run(make_connector(per_page=4).stream("tickets"), stop_after=crash_after)
            resumed = run(make_connector(per_page=4).stream("tickets"), partial.cursor, into=partial)
            assert resumed.tables["tickets"] == clean.tables["tickets"], crash_after
            assert resumed.tables["messages"] == clean.tables["messages"], crash_after


def test_a_ticket_updated_mid_listing_shifts_nothing_out() -> None:
    """Offset paging would skip the ticket that slides into the previous page; keyset paging cannot."""
    fake = FakeTime()
    world = make_world(30)
    sim = FreshdeskSim(world, api_key=API_KEY, clock=fake.clock)
    with mounted(sim):
        got = Collected()
        for n, page in enumerate(make_connector(fake=fake, per_page=5).stream("tickets").pages(None), start=1):
            got.add(page)
            if n in (1, 3):
                sim.touch(2 if n == 1 else 12)  # already read: it jumps to the end of the listing
    assert got.ids("tickets") == main_ticket_ids(world)


def test_no_change_run_only_lists_and_fetches_no_conversations() -> None:
    world = make_world(25)
    sim = FreshdeskSim(world, api_key=API_KEY)
    with mounted(sim):
        conn = make_connector(per_page=10)
        first = run(conn.stream("tickets"))
        before = sim.requests_made("/conversations")
        lists_before = sim.requests_made("GET /api/v2/tickets")
        again = run(conn.stream("tickets"), first.cursor)
        assert again.ids("tickets") == set()
        assert sim.requests_made("/conversations") == before
        assert sim.requests_made("GET /api/v2/tickets") - lists_before == 1
        sim.touch(7)
        third = run(conn.stream("tickets"), again.cursor)
    assert third.ids("tickets") == {"7"}
    assert {m["ticket_id"] for m in third.tables["messages"].values()} == {"7"}


def test_conversations_ride_in_the_same_page_as_their_tickets() -> None:
    world = make_world(12)
    sim = FreshdeskSim(world, api_key=API_KEY, vendor_conversations=False)  # the World's four messages each
    with mounted(sim):
        got = run(make_connector(per_page=5).stream("tickets"))
    for page in got.pages:
        tickets = {r["id"] for r in page.records.get("tickets", [])}
        message_tickets = {m["ticket_id"] for m in page.records.get("messages", [])}
        assert message_tickets == tickets
        for tid in tickets:
            kinds = sorted(m["kind"] for m in page.records["messages"] if m["ticket_id"] == tid)
            assert kinds == ["comment", "comment", "description", "note"]
    desc = got.tables["messages"]["desc-3"]
    created = world.ticket(3).created_at  # type: ignore[union-attr]
    assert (desc["author_role"], desc["author_id"], desc["created_at"]) == ("customer", "301", created)


def test_a_ticket_deleted_before_its_conversations_are_read_is_skipped() -> None:
    world = make_world(6)
    sim = FreshdeskSim(world, api_key=API_KEY, vendor_conversations=False)
    with mounted(sim):
        stream = make_connector(per_page=10).stream("tickets")
        original = sim._conversations

        def vanish(req, ticket_id):  # noqa: ANN001, ANN202 - deletes ticket 4 just before its conversations
            if ticket_id == "4":
                world.ticket(4).deleted = True  # type: ignore[union-attr]
            return original(req, ticket_id)

        sim.routes = [(m, p, sim._guard(vanish) if "conversations" in p.pattern else h) for m, p, h in sim.routes]
        got = run(stream)
    assert "4" in got.ids("tickets")
    assert not any(m["ticket_id"] == "4" and m["kind"] != "description" for m in got.tables["messages"].values())
    assert len(got.tables["messages"]) == 6 * 4 - 3


def test_deleted_and_spam_passes_mark_tickets_and_keep_them() -> None:
    fake = FakeTime()
    world = make_world(10)
    sim = FreshdeskSim(world, api_key=API_KEY, clock=fake.clock)
    with mounted(sim):
        conn = make_connector(fake=fake)
        got = run(conn.stream("tickets"))
        assert got.tables["tickets"]["4"]["status"] == "open"
        sim.delete(4)
        sim.delete(6, spam=True)
        deleted = run(conn.stream("deleted_tickets"), into=got)
        spam = run(conn.stream("spam_tickets"), into=got)
        incremental = run(conn.stream("tickets"), got.pages[0].cursor)
    assert got.tables["tickets"]["4"]["status"] == "deleted" and got.tables["tickets"]["4"]["is_spam"] == 0
    assert got.tables["tickets"]["6"]["status"] == "deleted" and got.tables["tickets"]["6"]["is_spam"] == 1
    assert got.tables["tickets"]["4"]["solved_at"] is None or "stats" in got.tables["tickets"]["4"]["raw"]
    assert deleted.cursor["updated_since"] and spam.cursor["updated_since"]
    assert {"4", "6"}.isdisjoint(incremental.ids("tickets"))


def test_filters_refusing_updated_since_fall_back_to_a_full_listing() -> None:
    world = make_world(8)
    world.ticket(3).deleted = True  # type: ignore[union-attr]
    sim = FreshdeskSim(world, api_key=API_KEY, filters_accept_updated_since=False)
    with mounted(sim):
        conn = make_connector()
        first = run(conn.stream("deleted_tickets"))
        again = run(conn.stream("deleted_tickets"), first.cursor)
    assert first.ids("tickets") == again.ids("tickets") == {"3"}
    assert first.cursor == {"full": True}
    assert sim.statuses[400] == 1  # the refusal is remembered in the cursor, not retried every run


def test_retry_after_is_honoured_with_injected_sleep() -> None:
    fake = FakeTime()
    world = make_world(12)
    sim = FreshdeskSim(world, api_key=API_KEY, clock=fake.clock)
    sim.inject(Fault("429", count=1, path="/api/v2/tickets", retry_after=17))
    with mounted(sim):
        got = run(make_connector(fake=fake, per_page=5).stream("tickets"))
    assert 17 in fake.sleeps
    assert got.ids("tickets") == main_ticket_ids(world)


def test_a_credit_limited_account_still_syncs_completely() -> None:
    fake = FakeTime()
    world = make_world(40)
    sim = FreshdeskSim(world, api_key=API_KEY, calls_per_minute=30, tickets_list_per_minute=3, clock=fake.clock)
    with mounted(sim):
        conn = make_connector(make_source(tickets_list_per_minute=3), fake=fake, per_page=10)
        got = Collected()
        for stream in conn.streams():
            run(stream, into=got)
    assert got.ids("tickets") == {str(t.id) for t in world.tickets}
    assert len(got.tables["messages"]) == sim.ground_truth()["messages"]
    assert fake.now > NOW + 60  # it had to wait for new minutes, on the fake clock only


def test_a_malformed_record_is_quarantined_and_the_rest_of_the_page_goes_on() -> None:
    world = make_world(12)
    sim = FreshdeskSim(world, api_key=API_KEY)
    sim.inject(Fault("malformed", count=1, path="/api/v2/tickets"))
    with mounted(sim):
        got = run(make_connector(per_page=5).stream("tickets"))
    bad = [q for p in got.pages for q in p.quarantine]
    assert len(bad) == 1 and bad[0].stream == "tickets" and bad[0].record_id == "5"
    assert "created_at" in bad[0].error
    assert got.ids("tickets") == main_ticket_ids(world) - {"5"}
    assert {"1", "2", "3", "4"} <= {r["id"] for r in got.pages[0].records["tickets"]}
