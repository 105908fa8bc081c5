"""The paginators of ``connectors.pagination`` driven with bare response bodies (no HTTP, no simulator):
each scheme's next request, its cursor after every page, its end, and its loop guard (DESIGN.md rule 7)."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.errors import FatalAPIError, PaginationLoopError
from connectors.pagination import (
    CursorExport,
    CursorList,
    LinkHeader,
    PageSizer,
    Paginator,
    Scroll,
    SearchAfter,
    TimeExport,
    link_next,
)

RUN_START = 1_700_000_000


def drive(pager: Paginator, bodies: list[Any], headers: list[dict[str, str]] | None = None,
          ) -> list[tuple[Any, Any]]:
    """Feed ``bodies`` one by one: (request sent, cursor after the page) per page, until the pager stops."""
    seen = []
    for i, body in enumerate(bodies):
        req = pager.request()
        more = pager.advance(body, (headers or [{}] * len(bodies))[i])
        seen.append(((req.method, req.url, req.params, req.json), pager.cursor))
        if not more:
            assert i == len(bodies) - 1, "stopped before the last body"
            return seen
    raise AssertionError("still asking for pages after the last body")


# -- cursor export ----------------------------------------------------------------------------------
def test_cursor_export_starts_at_start_time_then_follows_after_cursor_and_keeps_the_last() -> None:
    pager = CursorExport("zd", "/x", None, start_time=100, sizer=PageSizer(1000), params={"include": "m"})
    got = drive(pager, [{"after_cursor": "A", "end_of_stream": False}, {"after_cursor": "B", "end_of_stream": True}])
    assert [req[2] for req, _ in got] == [{"per_page": 1000, "include": "m", "start_time": 100},
                                          {"per_page": 1000, "include": "m", "cursor": "A"}]
    assert [cursor for _, cursor in got] == [{"after_cursor": "A"}, {"after_cursor": "B"}]


def test_cursor_export_resumes_from_its_cursor() -> None:
    pager = CursorExport("zd", "/x", {"after_cursor": "B"}, start_time=100, sizer=PageSizer(100), params={})
    assert pager.request().params == {"per_page": 100, "cursor": "B"}


@pytest.mark.parametrize("bodies", [
    [{"after_cursor": "A", "end_of_stream": False}, {"after_cursor": "A", "end_of_stream": False}],  # A, A
    [{"after_cursor": "A", "end_of_stream": False}, {"after_cursor": "B", "end_of_stream": False},
     {"after_cursor": "A", "end_of_stream": False}],  # A, B, A
    [{"end_of_stream": False}],  # no cursor and not the end
])
def test_cursor_export_refuses_a_loop(bodies: list[dict[str, Any]]) -> None:
    pager = CursorExport("zd", "/x", None, start_time=0, sizer=PageSizer(100), params={})
    with pytest.raises(PaginationLoopError) as caught:
        drive(pager, bodies)
    assert isinstance(caught.value, FatalAPIError) and caught.value.source == "zd" and caught.value.endpoint == "/x"


# -- time export ------------------------------------------------------------------------------------
def _time_export(cursor: Any = None, lookback: int = 3600) -> TimeExport:
    return TimeExport("zd", "/ev", cursor, start_time=1000, params={"include": "c"}, records_key="items",
                      since_key="t", run_start=RUN_START, lookback=lookback)


def test_time_export_bookmarks_the_newest_record_read_minus_the_lookback() -> None:
    pager = _time_export()
    got = drive(pager, [
        {"items": [{"t": 5000}, {"t": 9000}], "end_time": 9000, "next_page": "https://h/ev?start_time=9000",
         "end_of_stream": False},
        {"items": [{"t": 9500}, {"t": "garbage"}], "end_time": 9500, "end_of_stream": True},
    ])
    assert got[0][0][1:3] == ("/ev", {"start_time": 1000, "include": "c"})
    assert got[1][0][1:3] == ("https://h/ev?start_time=9000", {"include": "c"})  # a param the link dropped
    assert [cursor for _, cursor in got] == [{"start_time": 5400, "high": 9000}, {"start_time": 5900, "high": 9500}]


def test_time_export_without_records_keeps_the_first_start() -> None:
    got = drive(_time_export(), [{"items": [], "end_time": RUN_START, "end_of_stream": True}])
    assert got[-1][1] == {"start_time": 1000, "high": None}


def test_time_export_refuses_a_next_page_that_does_not_move() -> None:
    pager = _time_export()
    with pytest.raises(PaginationLoopError, match="does not move past start_time 1000"):
        drive(pager, [{"items": [], "end_time": 1000, "next_page": "https://h/ev?start_time=1000",
                       "end_of_stream": False}])


# -- cursor list ------------------------------------------------------------------------------------
def test_cursor_list_follows_page_after_and_is_a_full_refresh_without_since_key() -> None:
    pager = CursorList("zd", "/groups", None, records_key="groups", page_size=2)
    got = drive(pager, [{"groups": [{}, {}], "meta": {"has_more": True, "after_cursor": "p2"}},
                        {"groups": [{}], "meta": {"has_more": False}}])
    assert [req[2] for req, _ in got] == [{"page[size]": 2}, {"page[size]": 2, "page[after]": "p2"}]
    assert got[-1][1] is None


def test_cursor_list_incremental_keeps_its_listing_mid_run_and_bookmarks_at_the_end() -> None:
    pager = CursorList("zd", "/r", None, records_key="r", since_key="u", start_time=50, run_start=RUN_START,
                       lookback=100)
    got = drive(pager, [{"r": [{"u": 700}], "meta": {"has_more": True, "after_cursor": "n"}},
                        {"r": [{"created_at": 900}], "meta": {"has_more": False}}])
    assert got[0][0][2] == {"page[size]": 100, "start_time": 50}
    assert got[0][1] == {"since": 50, "after": "n", "high": 700, "swept": None, "sweeping": True,
                         "csat_api": "listed"}
    assert got[1][1] == {"high": 900, "swept": RUN_START, "csat_api": "listed"}
    later = CursorList("zd", "/r", got[1][1], records_key="r", since_key="u", run_start=RUN_START + 10,
                       lookback=100)
    assert later.request().params == {"page[size]": 100, "start_time": 800}  # time_bookmark(900, ...) - 100


def test_cursor_list_refuses_a_page_after_seen_before() -> None:
    pager = CursorList("zd", "/r", None, records_key="r")
    with pytest.raises(PaginationLoopError, match="already read"):
        drive(pager, [{"r": [], "meta": {"has_more": True, "after_cursor": "a"}},
                      {"r": [], "meta": {"has_more": True, "after_cursor": "b"}},
                      {"r": [], "meta": {"has_more": True, "after_cursor": "a"}}])


# -- Link header ------------------------------------------------------------------------------------
def _link(url: str) -> dict[str, str]:
    return {"Link": f'<{url}>; rel="next"'}


def test_link_header_follows_next_until_there_is_none() -> None:
    pager = LinkHeader("fd", "/api/v2/groups", {"per_page": 2})
    got = drive(pager, [[1, 2], [3]], [_link("https://h/api/v2/groups?page=2"), {}])
    assert [req[1:3] for req, _ in got] == [("/api/v2/groups", {"per_page": 2}),
                                           ("https://h/api/v2/groups?page=2", None)]
    assert pager.last and not pager.truncated


def test_link_header_stops_at_the_page_cap_and_says_so() -> None:
    pager = LinkHeader("fd", "/l", max_pages=2)
    drive(pager, [[1], [2]], [_link("https://h/l?page=2"), _link("https://h/l?page=3")])
    assert pager.truncated and pager.last


def test_link_header_ends_on_an_empty_page_and_refuses_a_link_back() -> None:
    empty = LinkHeader("fd", "/l")
    drive(empty, [[]], [_link("https://h/l?page=2")])
    assert empty.last
    looping = LinkHeader("fd", "/l")
    with pytest.raises(PaginationLoopError, match="Link header leads back"):
        drive(looping, [[1], [2], [3]], [_link("https://h/l?page=2"), _link("https://h/l?page=3"),
                                         _link("https://h/l?page=2")])


def test_link_next_reads_rel_next_only() -> None:
    assert link_next('<https://h/a?page=2>; rel="next"') == "https://h/a?page=2"
    assert link_next('<https://h/a?page=1>; rel="prev"') is None
    assert link_next(None) is None


# -- search with starting_after ---------------------------------------------------------------------
def test_search_after_posts_the_query_with_each_starting_after() -> None:
    query = {"query": {"field": "updated_at", "operator": ">", "value": 5}}
    pager = SearchAfter("ic", "/contacts/search", query, per_page=2)
    got = drive(pager, [{"data": [1, 2], "pages": {"next": {"starting_after": "c2"}}}, {"data": [3], "pages": {}}])
    assert [(req[0], req[3]["pagination"]) for req, _ in got] == [("POST", {"per_page": 2}),
                                                                ("POST", {"per_page": 2, "starting_after": "c2"})]
    assert all(req[3]["query"] == query["query"] for req, _ in got)
    assert [cursor for _, cursor in got] == ["c2", None]


def test_search_after_refuses_a_repeated_cursor_and_restarts_on_request() -> None:
    pager = SearchAfter("ic", "/s", {}, per_page=1, after="x")
    with pytest.raises(PaginationLoopError):
        drive(pager, [{"pages": {"next": {"starting_after": "a"}}}, {"pages": {"next": {"starting_after": "b"}}},
                      {"pages": {"next": {"starting_after": "a"}}}])
    pager.restart()
    assert pager.request().json == {"pagination": {"per_page": 1}}


# -- scroll -----------------------------------------------------------------------------------------
def test_scroll_resends_the_same_token_until_an_empty_page() -> None:
    pager = Scroll("ic", "/companies/scroll")
    got = drive(pager, [{"data": [1], "scroll_param": "s"}, {"data": [2], "scroll_param": "s"},
                        {"data": [], "scroll_param": "s"}])
    assert [req[2] for req, _ in got] == [None, {"scroll_param": "s"}, {"scroll_param": "s"}]
    pager.restart()
    assert pager.request().params is None and pager.cursor is None


# -- page sizer (Zendesk's 504 shrink plugs into it) ------------------------------------------------
def test_page_sizer_halves_to_its_floor_and_grows_back_after_good_pages() -> None:
    sizer = PageSizer(1000)
    assert sizer.shrink() and sizer.size == 500
    while sizer.shrink():
        pass
    assert sizer.size == 50
    for _ in range(5):
        sizer.success()
    assert sizer.size == 100
