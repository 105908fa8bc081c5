"""The stream framework: a stream is a declaration (:class:`StreamSpec`), run by one request loop.

A vendor declares each endpoint (where, which key holds the records, how it pages, how a record maps,
which timestamp the bookmark follows) and :class:`DeclaredStream` runs it: fetch the paginator's page
through ``HttpClient`` (the one JSON decoding path), map or quarantine every record
(:mod:`connectors.mapping`), let the paginator advance, yield a :class:`~connectors.base.Page` whose cursor
resumes after it. Only quirks are code: a vendor subclass overrides a hook (``fetch`` for Zendesk's 504
page shrink, ``context`` for side-loaded data a mapper needs, ``after_map`` for what a page teaches the
connector, ``paginator`` to pick the scheme), never the loop.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.base import Page, Stream
from connectors.errors import FatalAPIError
from connectors.http import HttpClient
from connectors.mapping import Rows, map_records
from connectors.pagination import Paginator


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """One endpoint, declared: where, which key holds the records, how it pages, how it maps.

    ``scheme`` names the paginator (the vendor's stream class turns it into one, see
    :meth:`DeclaredStream.paginator`); ``records_key`` None means the body itself is the list (Freshdesk);
    ``since_key`` is the record timestamp a time bookmark follows (None: the scheme's own cursor, or a
    full refresh); ``feature`` is an account feature the endpoint needs, so a 403 reads "not enabled".
    """

    name: str
    path: str
    records_key: str | None
    scheme: str
    tables: tuple[str, ...]
    to_rows: Callable[[dict[str, Any], Any], Rows]
    params: tuple[tuple[str, str], ...] = ()
    since_key: str | None = None
    feature: str | None = None


class DeclaredStream(Stream):
    """Runs one :class:`StreamSpec`: the single request loop (fetch, map, advance, yield) every vendor shares."""

    def __init__(self, spec: StreamSpec, http: HttpClient, source: str) -> None:
        self.name = spec.name  # instances of one class serve every spec
        self.spec, self.http, self.source = spec, http, source

    # -- hooks a vendor overrides -------------------------------------------------------------------------
    def paginator(self, cursor: Any, run_start: int | None = None) -> Paginator:
        """The paginator for ``spec.scheme``, resuming after ``cursor``."""
        raise NotImplementedError(f"{type(self).__name__} does not page scheme {self.spec.scheme!r}")

    def fetch(self, pager: Paginator) -> tuple[Any, Mapping[str, str]]:
        """The decoded body and the headers of the paginator's current page."""
        req = pager.request()
        resp = self.http.request(req.method, req.url, params=req.params, json=req.json)
        if self.spec.records_key is None:  # the body itself is the list
            return self.http.decode(resp, req.method, expect=list, empty=[]), resp.headers
        return self.http.decode(resp, req.method, expect=dict), resp.headers

    def context(self, body: Any) -> Any:
        """What a mapper may need besides the record (side-loaded data on the page, settings)."""
        return None

    def after_map(self, rows: Rows) -> None:
        """What the connector learns from a mapped page (e.g. who is an agent) before it is yielded."""

    # -- the loop -----------------------------------------------------------------------------------------
    def records(self, body: Any) -> list[Any]:
        items = body if self.spec.records_key is None else body.get(self.spec.records_key)
        if not isinstance(items, list):
            raise FatalAPIError(
                f"unexpected response from source {self.source} (GET {self.spec.path}): "
                f"no '{self.spec.records_key}' list", source=self.source, endpoint=self.spec.path)
        return items

    def run(self, pager: Paginator) -> Iterator[Page]:
        """Pages of one listing with ``pager`` until it says the listing ended."""
        more = True
        to_rows = self.spec.to_rows
        while more:
            body, headers = self.fetch(pager)
            items = self.records(body)
            ctx = self.context(body)
            rows, bad = map_records(self.spec.name, items, functools.partial(_map_one, to_rows, ctx=ctx),
                                    self.spec.tables)
            self.after_map(rows)
            more = pager.advance(body, headers)
            yield Page(records=rows, cursor=pager.cursor, quarantine=bad, done=not more)

    def pages(self, cursor: Any | None) -> Iterator[Page]:
        yield from self.run(self.paginator(cursor))


def _map_one(to_rows: Callable[[dict[str, Any], Any], Rows], record: dict[str, Any], *, ctx: Any) -> Rows:
    return to_rows(record, ctx)
