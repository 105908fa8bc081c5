"""Intercom's incremental reads against the real vendor behaviours the simulator now models (issue 11).

* The search index is eventually consistent and Intercom's clock is not ours: a change can become searchable
  minutes after its ``updated_at`` (OAS 2.11 ``/contacts/search`` "Contact Creation Delay"; API-NOTES 6.1), so
  the bookmark is ``min(newest stored, run start) - lookback`` (DESIGN.md sync contract 2), never the run start.
* Contacts search compares dates by calendar day in the workspace's timezone (OAS 2.11 "Searching for
  Timestamp Fields"; Hevo's docs read ``>`` differently, both are served).
* The companies scroll: one open per app (``400 scroll_exists``), ``404`` on a first call without companies,
  ``500`` "restart the scroll" (OAS 2.11 ``/companies/scroll``; Airbyte's manifest; singer's tap-intercom).

Each test here fails on the connector as it was before these changes (signpost watermark, ``>`` alone, a
``400`` that stopped the source, a ``404`` that failed every run, a dead ``scroll_param`` sent again).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import responses

from connectors.errors import Stopped
from connectors.sim.base import Fault
from connectors.sim.intercom.render import company_id, contact_id
from sync.store import Store
from tests.intercom_kit import (
    BOB,
    LEAD,
    NOW,
    SOURCE,
    FakeTime,
    engine_sync,
    make_connector,
    make_sim,
    make_source,
    many_contacts_world,
    many_orgs_world,
    mount,
    small_world,
    sync,
)

LAG = 1200  # 20 minutes from a change to its search visibility: longer than the old 5-minute safety margin


@pytest.fixture
def rm() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def since(cursors: dict[str, Any], stream: str) -> int:
    """The stored lower bound of the stream's next query (``watermark`` in the version before this one)."""
    cursor = cursors[stream]
    return int(cursor["since"] if "since" in cursor else cursor["watermark"])


def messages(store: Store, body: str) -> int:
    return int(store.scalar("SELECT count(*) FROM messages WHERE body=?", [body]))


# -- late arrivals and clocks --------------------------------------------------------------------------------
@pytest.mark.parametrize("inclusive", [True, False])
def test_a_late_arrival_at_the_bookmark_second_is_picked_up(rm: Any, inclusive: bool) -> None:
    fake = FakeTime()
    sim = make_sim(fake=fake, inclusive=inclusive)
    sim.configure_search(index_lag_s=LAG)
    mount(rm, sim)
    store, cursors = Store(":memory:"), {}
    sync(make_connector(fake), store, cursors, streams=("conversations",))
    bookmark = since(cursors, "conversations")
    newest = max(t.updated_at for t in sim.conversations.records.values())
    assert bookmark == newest - 3600  # min(newest stored, run start) - the 1h default lookback
    fake.advance(100)
    sim.touch(102, body="indexed late", at=bookmark)  # Intercom dates it at the bookmark second exactly
    fake.advance(500)
    sync(make_connector(fake), store, cursors, streams=("conversations",))
    assert messages(store, "indexed late") == 0  # not searchable yet ...
    assert since(cursors, "conversations") == bookmark  # ... and the bookmark did not move past it
    fake.advance(LAG)
    sync(make_connector(fake), store, cursors, streams=("conversations",))
    assert messages(store, "indexed late") == 1


def test_a_change_searchable_only_after_the_run_is_read_by_the_next(rm: Any) -> None:
    """Edited seconds before a run, searchable 20 minutes later: a run-start signpost would be past it."""
    fake = FakeTime()
    sim = make_sim(fake=fake)
    sim.configure_search(index_lag_s=LAG)
    mount(rm, sim)
    store, cursors = Store(":memory:"), {}
    sync(make_connector(fake), store, cursors, streams=("conversations",))
    sim.touch(101, body="earlier, already searchable")
    fake.advance(LAG + 60)
    edited_at = sim.touch(102, body="edited just before the run")
    fake.advance(400)
    sync(make_connector(fake), store, cursors, streams=("conversations",))
    assert messages(store, "earlier, already searchable") == 1
    assert messages(store, "edited just before the run") == 0
    assert since(cursors, "conversations") < edited_at
    fake.advance(900)
    sync(make_connector(fake), store, cursors, streams=("conversations",))
    assert messages(store, "edited just before the run") == 1


def test_a_client_clock_two_hours_ahead_of_intercom_loses_nothing(rm: Any) -> None:
    fake = FakeTime()
    sim = make_sim(fake=fake)
    sim.skew_clock(-7200)  # Intercom's clock: two hours behind ours
    mount(rm, sim)
    store, cursors = Store(":memory:"), {}
    sync(make_connector(fake), store, cursors, streams=("conversations",))
    first = since(cursors, "conversations")
    fake.advance(900)
    sim.touch(103, body="written on Intercom's clock")
    fake.advance(900)
    sync(make_connector(fake), store, cursors, streams=("conversations",))
    assert messages(store, "written on Intercom's clock") == 1
    assert first <= sim.world.ticket(103).updated_at  # the first bookmark was not in Intercom's future
    assert since(cursors, "conversations") == sim.world.ticket(103).updated_at - 3600  # Intercom's newest


def test_a_run_that_finds_nothing_keeps_the_bookmark(rm: Any) -> None:
    fake = FakeTime()
    world = small_world()
    world.tickets = []
    sim = make_sim(world, fake=fake)
    mount(rm, sim)
    store, cursors = Store(":memory:"), {}
    sync(make_connector(fake), store, cursors, streams=("conversations",))
    assert since(cursors, "conversations") == 0  # nothing seen yet: no bookmark from our clock


def test_a_signpost_cursor_of_the_previous_version_is_read_with_its_lookback(rm: Any) -> None:
    fake = FakeTime()
    sim = make_sim(fake=fake)
    mount(rm, sim)
    store = Store(":memory:")
    t = sim.world.ticket(104)
    cursors: dict[str, Any] = {"conversations": {"watermark": t.updated_at + 1800, "seen": {}}}
    sync(make_connector(fake), store, cursors, streams=("conversations",))
    assert store.query("SELECT id FROM tickets") == [{"id": "104"}]  # within the lookback of the old watermark


# -- contacts: dates compared by day -------------------------------------------------------------------------
@pytest.mark.parametrize("contact_dates", ["next_day", "same_day"])
@pytest.mark.parametrize("utc_offset_s", [0, 19800, -28800])
def test_contacts_changed_later_on_the_bookmarks_day_are_found(rm: Any, contact_dates: str,
                                                               utc_offset_s: int) -> None:
    fake = FakeTime()
    sim = make_sim(fake=fake)
    sim.configure_search(contact_dates=contact_dates, utc_offset_s=utc_offset_s)
    mount(rm, sim)
    store, cursors = Store(":memory:"), {}
    sync(make_connector(fake), store, cursors, streams=("contacts",))
    assert store.counts(SOURCE)["people"] == 3
    fake.advance(600)
    touched = sim.touch_contact(LEAD)  # the same calendar day as the old signpost: missed by a bare '>'
    fake.advance(600)
    sync(make_connector(fake), store, cursors, streams=("contacts",))
    row = store.query("SELECT updated_at FROM people WHERE id=?", [contact_id(LEAD)])[0]
    assert row["updated_at"] == touched
    assert since(cursors, "contacts") == touched - 3600


def test_a_contact_indexed_late_at_the_bookmark_second_is_picked_up(rm: Any) -> None:
    fake = FakeTime()
    sim = make_sim(fake=fake)
    sim.configure_search(index_lag_s=LAG)
    mount(rm, sim)
    store, cursors = Store(":memory:"), {}
    sync(make_connector(fake), store, cursors, streams=("contacts",))
    bookmark = since(cursors, "contacts")
    fake.advance(100)
    sim.touch_contact(BOB, at=bookmark)
    fake.advance(500)
    sync(make_connector(fake), store, cursors, streams=("contacts",))
    updated = "SELECT updated_at FROM people WHERE id=?"
    assert store.query(updated, [contact_id(BOB)])[0]["updated_at"] != bookmark  # not searchable yet
    fake.advance(LAG)
    sync(make_connector(fake), store, cursors, streams=("contacts",))
    assert store.query(updated, [contact_id(BOB)])[0]["updated_at"] == bookmark


def test_a_busy_day_of_contacts_is_paged_once_per_run_and_the_bookmark_moves(rm: Any) -> None:
    fake = FakeTime()
    day_start = NOW // 86400 * 86400
    sim = make_sim(many_contacts_world(23, day_start + 60), fake=fake)  # 26 contacts, 23 of them today
    mount(rm, sim)
    store, cursors = Store(":memory:"), {}
    source = make_source(per_page=5)
    sync(make_connector(fake, source), store, cursors, streams=("contacts",))
    first = since(cursors, "contacts")
    assert store.counts(SOURCE)["people"] == 26
    fake.advance(900)
    touched = sim.touch_contact(LEAD)
    before = sim.requests_made("POST /contacts/search")
    sync(make_connector(fake, source), store, cursors, streams=("contacts",))
    pages = sim.requests_made("POST /contacts/search") - before
    assert pages == 5  # the day's 24 matches, 5 a page, each page once (starting_after, no re-query)
    assert since(cursors, "contacts") == touched - 3600 > first
    assert store.query("SELECT updated_at FROM people WHERE id=?", [contact_id(LEAD)])[0]["updated_at"] == touched


# -- companies scroll ------------------------------------------------------------------------------------------
def test_a_scroll_held_by_another_integration_is_waited_out(rm: Any) -> None:
    fake = FakeTime()
    sim = make_sim(many_orgs_world(120), fake=fake)
    mount(rm, sim)
    sim.hold_scroll(100)  # another pipeline of the same app is scrolling companies
    store = Store(":memory:")
    sync(make_connector(fake), store, {}, streams=("companies",))
    assert sim.statuses[400] == 2  # refused at +0 s and +65 s, served at +130 s
    assert fake.sleeps == [65.0, 65.0]
    assert store.counts(SOURCE)["organizations"] == 120


def test_a_scroll_held_all_run_fails_companies_only(rm: Any) -> None:
    fake = FakeTime()
    sim = make_sim(fake=fake)
    mount(rm, sim)
    sim.hold_scroll(3600)
    report, store = engine_sync(fake)
    streams = {s.stream: s for s in report.streams}
    assert [s.stream for s in report.streams] == ["admins", "teams", "companies", "contacts", "conversations"]
    assert streams["companies"].error and "scroll_exists" in streams["companies"].error
    assert not streams["companies"].fatal and report.error is None
    assert streams["contacts"].error is None and streams["conversations"].error is None
    assert store.counts(SOURCE)["tickets"] == 4 and store.counts(SOURCE)["organizations"] == 0
    assert sim.statuses[400] == 4  # the first try and three waits of a minute, then the run went on


def test_a_workspace_without_companies_is_an_empty_successful_stream(rm: Any) -> None:
    fake = FakeTime()
    world = small_world()
    world.orgs = []
    sim = make_sim(world, fake=fake)
    mount(rm, sim)
    report, store = engine_sync(fake)
    assert sim.statuses[404] == 1  # Intercom's answer to the first scroll call
    assert report.ok, [s.error for s in report.streams]  # so the daemon never backs this source off
    cursor = store.query("SELECT cursor FROM sync_state WHERE stream='companies'")[0]["cursor"]
    assert '"refreshed_at"' in cursor


def test_a_scroll_500_restarts_without_the_dead_scroll_param(rm: Any) -> None:
    fake = FakeTime()
    sim = make_sim(many_orgs_world(120), fake=fake)
    mount(rm, sim)
    sim.fail_scroll(1)  # the second scroll call: "Please restart the scroll operation"
    store = Store(":memory:")
    sync(make_connector(fake), store, {}, streams=("companies",))
    scrolls = [c.request.url for c in rm.calls if "/companies/scroll" in c.request.url]
    assert [c.response.status_code for c in rm.calls if "/companies/scroll" in c.request.url][:3] == [200, 500, 200]
    assert "scroll_param" in scrolls[1] and "scroll_param" not in scrolls[2]  # restarted, not resent
    assert sim.statuses[404] == 0
    assert store.counts(SOURCE)["organizations"] == 120


def test_a_resumed_scroll_of_a_dead_run_waits_for_its_own_scroll(rm: Any) -> None:
    """Our own process died mid-scroll; its scroll is still open for a minute: the new run waits, no error."""
    fake = FakeTime()
    sim = make_sim(many_orgs_world(120), fake=fake)
    mount(rm, sim)
    connector = make_connector(fake)
    connector.ctx.companies_chunk = 50
    first = next(connector.stream("companies").pages(None))  # one page committed, then the process died
    store = Store(":memory:")
    sync(make_connector(fake), store, {"companies": {"refreshed_at": int(fake.now) - 7 * 3600}},
         streams=("companies",))
    assert first.cursor.get("scroll_param") and sim.statuses[400] == 1 and fake.sleeps == [65.0]
    assert store.counts(SOURCE)["organizations"] == 120


def test_the_scroll_wait_ends_when_a_stop_is_asked(rm: Any) -> None:
    fake = FakeTime()
    sim = make_sim(fake=fake)
    mount(rm, sim)
    sim.hold_scroll(3600)
    connector = make_connector(fake)
    stop = threading.Event()
    connector.http.watch_stop(stop)
    fake_sleep = fake.sleep

    def sleep_until_stopped(seconds: float) -> None:  # SIGTERM arrives during the minute's wait
        stop.set()
        fake_sleep(seconds)

    connector.http._sleep = sleep_until_stopped  # type: ignore[method-assign]
    with pytest.raises(Stopped):
        list(connector.stream("companies").pages(None))
    assert sim.statuses[400] == 1  # no second try after the stop


def test_scroll_pages_are_read_back_to_back_so_a_slow_store_cannot_expire_them(rm: Any) -> None:
    fake = FakeTime()
    sim = make_sim(many_orgs_world(120), fake=fake)
    mount(rm, sim)
    store = Store(":memory:")
    pages = sync(make_connector(fake), store, {}, streams=("companies",),
                 after_page=lambda stream, page: fake.advance(90))
    assert pages == 1 and sim.statuses[404] == 0
    assert {r["id"] for r in store.query("SELECT id FROM organizations")} >= {company_id(31), company_id(32)}


def test_companies_refused_by_permission_do_not_stop_the_source(rm: Any) -> None:
    """A token without the companies scope (403) fails companies only, never conversations."""
    fake = FakeTime()
    sim = make_sim(fake=fake)
    mount(rm, sim)
    sim.inject(Fault("5xx", count=1, path="/companies/scroll", status=403))
    report, store = engine_sync(fake)
    streams = {s.stream: s for s in report.streams}
    assert streams["companies"].error and "403" in streams["companies"].error
    assert not streams["companies"].fatal and report.error is None
    assert streams["conversations"].error is None and store.counts(SOURCE)["tickets"] == 4
