"""A vendor cursor that cycles (A, B, A, B, ...) stops its stream with an error instead of looping forever.

The guard lives in the sync engine (``CursorCycleGuard``), the one place that sees every stream's cursors.
Each vendor test answers a bounded number of cycling pages and then ends the stream, so the code before
the guard terminates too (and fails the assertions) instead of hanging the suite.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from config.settings import Settings
from connectors.base import Connector, Page, Stream
from connectors.errors import PaginationLoopError
from sync.engine import CursorCycleGuard, SyncEngine
from sync.store import Store

MAX_ANSWERS = 8  # below Zendesk's export budget of 10/min, so no pacing wait


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def run_bounded(call: Any) -> Any:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(call()), daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the sync never returned"
    return out[0]


def stored_cursor(store: Store, source: str, stream: str) -> Any:
    row = store.conn.execute("SELECT cursor, status, last_error FROM sync_state WHERE source=? AND stream=?",
                             [source, stream]).fetchone()
    return json.loads(row[0]) if row[0] else None, row[1], row[2]


def test_zendesk_cursor_alternating_a_b_stops_the_stream_with_an_error(rsps: responses.RequestsMock) -> None:
    answered: list[str | None] = []

    def export(request: Any) -> tuple[int, dict[str, str], str]:
        cursor = parse_qs(urlsplit(request.url).query).get("cursor", [None])[0]
        answered.append(cursor)
        nxt = "B" if cursor == "A" else "A"
        last = len(answered) >= MAX_ANSWERS  # only so that the unguarded code ends too
        body = {"tickets": [], "after_cursor": nxt, "end_of_stream": last, "after_url": None}
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    rsps.add_callback(responses.GET, "https://acme.zendesk.com/api/v2/incremental/tickets/cursor.json",
                      callback=export)
    settings = Settings.model_validate({"sources": [{"name": "zd", "kind": "zendesk",
                                                     "base_url": "https://acme.zendesk.com",
                                                     "email": "ops@acme.example", "api_token": "t0ken-zd"}]})
    with Store(":memory:") as store:
        report = run_bounded(lambda: SyncEngine(store, settings).sync_source(settings.sources[0],
                                                                              streams=["tickets"]))
        [stream] = report.streams
        assert stream.error is not None and "pagination loop" in stream.error and "zd" in stream.error
        assert answered == [None, "A", "B"]  # the third answer leads back to A: refused, not requested again
        cursor, status, error = stored_cursor(store, "zd", "tickets")
    assert cursor == {"after_cursor": "B"}  # the refused page is not committed; the last good cursor stays
    assert status == "error" and "pagination loop" in error
    assert report.error is None  # a loop ends its stream, not the source


def test_zendesk_full_listing_whose_page_after_alternates_stops_with_an_error(rsps: responses.RequestsMock) -> None:
    """A full-refresh list keeps no cursor (``None`` on every page), so only the paginator sees page[after]."""
    answered: list[str | None] = []

    def listing(request: Any) -> tuple[int, dict[str, str], str]:
        after = parse_qs(urlsplit(request.url).query).get("page[after]", [None])[0]
        answered.append(after)
        more = len(answered) < MAX_ANSWERS
        nxt = "B" if after == "A" else "A"
        body = {"ticket_fields": [], "meta": {"has_more": more, "after_cursor": nxt if more else None}}
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    rsps.add_callback(responses.GET, "https://acme.zendesk.com/api/v2/ticket_fields.json", callback=listing)
    settings = Settings.model_validate({"sources": [{"name": "zd", "kind": "zendesk",
                                                     "base_url": "https://acme.zendesk.com",
                                                     "email": "ops@acme.example", "api_token": "t0ken-zd"}]})
    with Store(":memory:") as store:
        report = run_bounded(lambda: SyncEngine(store, settings).sync_source(settings.sources[0],
                                                                              streams=["ticket_fields"]))
    [stream] = report.streams
    assert stream.error is not None and "pagination loop" in stream.error and "already read" in stream.error
    assert answered == [None, "A", "B"]


def test_freshdesk_link_header_leading_back_stops_the_listing_with_an_error(rsps: responses.RequestsMock) -> None:
    """Freshdesk lists page by ``Link: <...>; rel="next"``; a full listing keeps no cursor for the engine to see."""
    answered: list[str | None] = []
    base = "https://acme.freshdesk.com/api/v2/groups"

    def groups(request: Any) -> tuple[int, dict[str, str], str]:
        page = parse_qs(urlsplit(request.url).query).get("page", [None])[0]
        answered.append(page)
        headers = {"Content-Type": "application/json"}
        if len(answered) < MAX_ANSWERS:  # 1 -> 2 -> 3 -> 2 -> 3 ...
            headers["Link"] = f'<{base}?page={"3" if page == "2" else "2"}&per_page=100>; rel="next"'
        return 200, headers, json.dumps([{"id": len(answered), "name": f"group {len(answered)}"}])

    rsps.add_callback(responses.GET, base, callback=groups)
    settings = Settings.model_validate({"sources": [{"name": "fd", "kind": "freshdesk",
                                                     "base_url": "https://acme.freshdesk.com", "api_key": "k3y-fd"}]})
    with Store(":memory:") as store:
        report = run_bounded(lambda: SyncEngine(store, settings).sync_source(settings.sources[0],
                                                                              streams=["groups"]))
    [stream] = report.streams
    assert stream.error is not None and "pagination loop" in stream.error and "fd" in stream.error
    assert answered == [None, "2", "3"]
    assert stream.pages == 3  # every page read was kept; only the way back was refused


def test_intercom_search_cursor_alternating_stops_the_stream_with_an_error(rsps: responses.RequestsMock) -> None:
    answered: list[str | None] = []

    def search(request: Any) -> tuple[int, dict[str, str], str]:
        after = (json.loads(request.body).get("pagination") or {}).get("starting_after")
        answered.append(after)
        nxt = None if len(answered) >= MAX_ANSWERS else ("B" if after == "A" else "A")
        body = {"type": "list", "data": [], "total_count": 0,
                "pages": {"type": "pages", "next": {"starting_after": nxt} if nxt else None}}
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    rsps.add_callback(responses.POST, "https://api.intercom.io/contacts/search", callback=search)
    settings = Settings.model_validate({"sources": [{"name": "ic", "kind": "intercom",
                                                     "base_url": "https://api.intercom.io",
                                                     "access_token": "t0ken-ic"}]})
    with Store(":memory:") as store:
        report = run_bounded(lambda: SyncEngine(store, settings).sync_source(settings.sources[0],
                                                                              streams=["contacts"]))
        [stream] = report.streams
        cursor, status, _error = stored_cursor(store, "ic", "contacts")
    assert stream.error is not None and "pagination loop" in stream.error and "ic" in stream.error
    assert answered == [None, "A", "B"]
    assert status == "error" and cursor["starting_after"] == "B"


class _Scripted(Stream):
    def __init__(self, name: str, pages: list[Page]) -> None:
        self.name = name  # type: ignore[misc]
        self.script = pages

    def pages(self, cursor: Any | None) -> Iterator[Page]:
        yield from self.script


class _Connector(Connector):
    kind = "zendesk"

    def __init__(self, streams: list[Stream]) -> None:
        self._streams = streams

    def streams(self) -> list[Stream]:
        return self._streams


def test_a_loop_ends_its_stream_only_and_the_next_stream_still_runs() -> None:
    looping = _Scripted("tickets", [Page({}, {"c": "A"}), Page({}, {"c": "B"}), Page({}, {"c": "A"}),
                                    Page({}, {"c": "B"}, done=True)])
    fine = _Scripted("groups", [Page({"groups": [{"id": "1", "name": "g"}]}, None, done=True)])
    settings = Settings.model_validate({"sources": [{"name": "zd", "kind": "zendesk",
                                                     "base_url": "https://acme.zendesk.com",
                                                     "email": "ops@acme.example", "api_token": "t0ken-zd"}]})
    with Store(":memory:") as store:
        engine = SyncEngine(store, settings, connector_factory=lambda _s, _g: _Connector([looping, fine]))
        report = engine.sync_source(settings.sources[0])
        assert [s.stream for s in report.streams] == ["tickets", "groups"]
        assert report.streams[0].pages == 2 and "pagination loop" in (report.streams[0].error or "")
        assert report.streams[1].error is None and report.streams[1].rows == 1


@pytest.mark.parametrize("cursors", [
    [None, None, None],  # a full listing keeps no cursor
    [{"since": 1}, {"since": 1}, {"since": 9}],  # a filtered listing moves only on its last page
    [{"a": 1}, {"a": 2}, {"a": 2}, {"a": 3}],  # a stream may repeat the page just before (its own guard's job)
])
def test_what_is_not_a_cycle(cursors: list[Any]) -> None:
    guard = CursorCycleGuard("zd", "s", {"since": 1})
    for i, cursor in enumerate(cursors):
        guard.check(Page({}, cursor, done=i == len(cursors) - 1))


def test_the_last_page_may_carry_an_earlier_cursor_but_a_middle_page_may_not() -> None:
    guard = CursorCycleGuard("zd", "s", {"high": 5})
    guard.check(Page({}, {"after": "x", "high": 5}))
    guard.check(Page({}, {"after": "y", "high": 5}))
    guard.check(Page({}, {"high": 5}, done=True))  # the listing ends where the previous run ended: fine
    guard = CursorCycleGuard("zd", "s", None)
    guard.check(Page({}, {"after": "x"}))
    guard.check(Page({}, {"after": "y"}))
    with pytest.raises(PaginationLoopError, match="pagination loop on source zd, stream s"):
        guard.check(Page({}, {"after": "x"}))
