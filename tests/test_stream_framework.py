"""``connectors.streams``: a stream declared with a ``StreamSpec`` and run by ``DeclaredStream`` (the loop all
vendors share), over bare HTTP answers through ``responses``: pages, cursors, quarantine, loop guard, errors."""

from __future__ import annotations

from typing import Any

import pytest
import responses

from connectors.errors import FatalAPIError, PaginationLoopError
from connectors.http import HttpClient
from connectors.pagination import CursorList, LinkHeader, Paginator
from connectors.streams import DeclaredStream, StreamSpec

BASE = "https://desk.example.com"


def _rows(record: dict[str, Any], ctx: Any) -> dict[str, list[dict[str, Any]]]:
    return {"groups": [{"id": str(record["id"]), "name": record.get("name"), "ctx": ctx}]}


class _LinkStream(DeclaredStream):
    def paginator(self, cursor: Any, run_start: int | None = None) -> Paginator:
        return LinkHeader(self.source, self.spec.path, {"per_page": 2})

    def context(self, body: Any) -> Any:
        return len(body)


class _ListStream(DeclaredStream):
    def paginator(self, cursor: Any, run_start: int | None = None) -> Paginator:
        return CursorList(self.source, self.spec.path, cursor, records_key=self.spec.records_key or "")


def _http() -> HttpClient:
    return HttpClient(source="dx", base_url=BASE, max_retries=0, sleep=lambda _s: None)


@responses.activate
def test_a_declared_bare_array_stream_pages_by_link_and_quarantines_bad_records() -> None:
    responses.get(f"{BASE}/groups", json=[{"id": 1, "name": "a"}, {"name": "no id"}],
                  headers={"Link": f'<{BASE}/groups?page=2>; rel="next"'},
                  match=[responses.matchers.query_param_matcher({"per_page": "2"})])
    responses.get(f"{BASE}/groups", json=[{"id": 3}], match=[responses.matchers.query_param_matcher({"page": "2"})])
    spec = StreamSpec("groups", "/groups", None, "link", ("groups",), _rows)
    pages = list(_LinkStream(spec, _http(), "dx").pages(None))
    assert [[r["id"] for r in p.records["groups"]] for p in pages] == [["1"], ["3"]]
    assert [r["ctx"] for p in pages for r in p.records["groups"]] == [2, 1]  # context() saw each page's body
    assert [(q.stream, q.record_id, q.error) for q in pages[0].quarantine] == [("groups", None, "KeyError: 'id'")]
    assert [p.done for p in pages] == [False, True]


@responses.activate
def test_a_declared_object_stream_reads_its_records_key_and_keeps_the_paginator_cursor() -> None:
    responses.get(f"{BASE}/g", json={"groups": [{"id": 1}], "meta": {"has_more": True, "after_cursor": "x"}},
                  match=[responses.matchers.query_param_matcher({"page[size]": "100"})])
    responses.get(f"{BASE}/g", json={"groups": [{"id": 2}], "meta": {"has_more": False}},
                  match=[responses.matchers.query_param_matcher({"page[size]": "100", "page[after]": "x"})])
    spec = StreamSpec("groups", "/g", "groups", "list", ("groups",), _rows)
    pages = list(_ListStream(spec, _http(), "dx").pages(None))
    assert [p.records["groups"][0]["id"] for p in pages] == ["1", "2"] and pages[-1].cursor is None


@responses.activate
def test_a_body_without_the_records_key_is_fatal_naming_source_and_endpoint() -> None:
    responses.get(f"{BASE}/g", json={"other": []})
    spec = StreamSpec("groups", "/g", "groups", "list", ("groups",), _rows)
    with pytest.raises(FatalAPIError, match=r"source dx \(GET /g\): no 'groups' list") as caught:
        list(_ListStream(spec, _http(), "dx").pages(None))
    assert caught.value.source == "dx" and caught.value.endpoint == "/g"


@responses.activate
def test_a_link_leading_back_ends_the_declared_stream_with_a_loop_error() -> None:
    responses.get(f"{BASE}/groups", json=[{"id": 1}], headers={"Link": f'<{BASE}/groups?page=2>; rel="next"'},
                  match=[responses.matchers.query_param_matcher({"per_page": "2"})])
    responses.get(f"{BASE}/groups", json=[{"id": 2}], headers={"Link": f'<{BASE}/groups?page=3>; rel="next"'},
                  match=[responses.matchers.query_param_matcher({"page": "2"})])
    responses.get(f"{BASE}/groups", json=[{"id": 3}], headers={"Link": f'<{BASE}/groups?page=2>; rel="next"'},
                  match=[responses.matchers.query_param_matcher({"page": "3"})])
    spec = StreamSpec("groups", "/groups", None, "link", ("groups",), _rows)
    got: list[str] = []
    with pytest.raises(PaginationLoopError, match="pagination loop on source dx"):
        for page in _LinkStream(spec, _http(), "dx").pages(None):
            got += [r["id"] for r in page.records["groups"]]
    assert got == ["1", "2"]  # the declared loop stops before yielding the page that leads back
