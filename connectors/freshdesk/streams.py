"""Freshdesk list paging and the streams built on it (API-NOTES.md 2.2).

Freshdesk lists are bare JSON arrays; the only next-page signal is the
``Link: <...>; rel="next"`` header, and no listing goes past page 300. Listings walk
with the framework's ``connectors.pagination.LinkHeader`` (``ListContext.walk``), pages decode through
``HttpClient.decode``; the page-cap answers (400 or an empty page) are the Freshdesk quirk kept here.
Three kinds of stream share them:

- ``FullListStream`` (groups, agents, companies): no server-side filter, so the
  whole listing each run; the cursor stays ``None``.
- ``SinceListStream`` (contacts ``_updated_since``, satisfaction ratings
  ``created_since``, time entries ``executed_after``): the listing's order is not
  documented, so the cursor moves only when the whole listing is stored, and then
  to ``min(max timestamp seen, listing start) - lookback`` (the source's ``lookback``:
  DESIGN.md sync contract 2, API-NOTES 6.4), never backwards; a crash mid-listing just
  re-reads it. A filter the account refuses (400) falls back to a full listing.
- ``TicketStream`` (tickets, and the ``filter=deleted`` / ``filter=spam`` passes)
  lives in ``tickets.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.base import Page, Quarantined, Stream, time_bookmark
from connectors.errors import FatalAPIError, PaginationLoopError, ParseError
from connectors.http import HttpClient
from connectors.mapping import Rows, map_records
from connectors.normalize import to_epoch, to_iso
from connectors.pagination import LinkHeader, link_next

logger = logging.getLogger("deskpulse.connectors.freshdesk")

Mapper = Callable[[Mapping[str, Any]], Rows]

CLOCK_SKEW_S = 300  # how far our clock and Freshdesk's may disagree; cursors never run ahead of "now - skew"


@dataclass
class ListContext:
    """What every Freshdesk stream of one connector shares: the client, paging limits, and what it learned."""

    http: HttpClient
    source: str
    per_page: int = 100
    max_pages: int = 300
    workers: int = 4
    start_time: int = 0
    value_field: str = "arr"
    clock: Callable[[], float] = time.time
    lookback_s: int = 0  # re-read window behind every time-based bookmark (the source's ``lookback``)
    agent_ids: set[str] | None = None
    _agents_partial: set[str] = field(default_factory=set)

    def get_page(self, url: str, params: Mapping[str, Any] | None) -> tuple[list[Any], str | None]:
        """GET one list page: (records, absolute URL of the next page or None); a body that is not a JSON array
        is a :class:`FatalAPIError` naming source and endpoint (``HttpClient.decode``)."""
        records, headers = self._get(url, params)
        return records, link_next(headers.get("Link"))

    def walk(self, path: str, params: dict[str, Any], *, per_page: int | None = None,
             ) -> Iterator[tuple[list[Any], bool]]:
        """Follow ``Link`` pages of one listing (``connectors.pagination.LinkHeader``): yields (records, is_last).

        The quirk around the paginator: past the page cap Freshdesk answers 400 or an empty array; either ends
        this listing (with a warning when we know records were left unread) rather than failing the stream.
        A page whose link leads back is still yielded (kept); only following it is refused.
        """
        pager = LinkHeader(self.source, path, {**params, "per_page": per_page or self.per_page},
                           max_pages=self.max_pages)
        while True:
            req = pager.request()
            try:
                records, headers = self._get(req.url, req.params)
            except FatalAPIError as exc:
                if pager.page_no == 1 or exc.status != 400:
                    raise
                logger.warning("source %s: %s refused page %d (page cap); listing ends there", self.source,
                               path, pager.page_no)
                yield [], True
                return
            try:
                more = pager.advance(records, headers)
            except PaginationLoopError:
                yield records, False  # every page read is kept; only the way back is refused
                raise
            if pager.truncated:
                logger.warning("source %s: %s has more than %d pages; the rest is left for a later run",
                               self.source, path, self.max_pages)
            yield records, not more
            if not more:
                return

    def _get(self, url: str, params: Mapping[str, Any] | None) -> tuple[list[Any], Mapping[str, str]]:
        resp = self.http.request("GET", url, params=params)
        return self.http.decode(resp, "GET", expect=list, empty=[]), resp.headers  # Freshdesk lists: bare arrays

    def learn_agents(self, ids: set[str], *, complete: bool) -> None:
        """Agent ids seen by the agents stream; conversations use them to tell agents from contacts."""
        self._agents_partial |= ids
        if complete:
            self.agent_ids, self._agents_partial = set(self._agents_partial), set()

    def known_agents(self) -> set[str]:
        """Agent ids, listing ``/api/v2/agents`` once if the agents stream has not run in this connector."""
        if self.agent_ids is None:
            ids: set[str] = set()
            for records, _last in self.walk("/api/v2/agents", {}):
                ids |= {str(r["id"]) for r in records if isinstance(r, Mapping) and r.get("id") is not None}
            self.agent_ids = ids
        return self.agent_ids


class FullListStream(Stream):
    """A small, unfiltered listing read in full every run (groups, agents, companies)."""

    def __init__(self, ctx: ListContext, name: str, path: str, mapper: Mapper) -> None:
        self.ctx, self.name, self.path, self.mapper = ctx, name, path, mapper

    def pages(self, cursor: Any | None) -> Iterator[Page]:
        seen_agents: set[str] = set()
        for records, last in self.ctx.walk(self.path, {}):
            rows: Rows = {}
            bad: list[Quarantined] = []
            map_records(self.name, records, self.mapper, into=rows, bad=bad)
            if self.name == "agents":
                seen_agents |= {r["id"] for r in rows.get("people", ())}
                self.ctx.learn_agents(seen_agents, complete=last)
            yield Page(rows, None, bad, done=last)


class SinceListStream(Stream):
    """A listing filtered by one "since" timestamp parameter whose result order Freshdesk does not document.

    Cursor: ``{"since": ISO}`` (``{"since": ISO, "full": true}`` once the account refused the filter).
    ``lookback_s`` re-reads a further window before the cursor for records that can appear late (a time
    entry logged today for work done yesterday), on top of the source-wide lookback in the bookmark.
    """

    def __init__(self, ctx: ListContext, name: str, path: str, param: str, time_key: str, mapper: Mapper, *,
                 lookback_s: int = 0) -> None:
        self.ctx, self.name, self.path, self.param = ctx, name, path, param
        self.time_key, self.mapper, self.lookback_s = time_key, mapper, lookback_s

    def pages(self, cursor: Any | None) -> Iterator[Page]:
        since = self._since(cursor)
        full = bool(isinstance(cursor, Mapping) and cursor.get("full"))
        started = int(self.ctx.clock())
        params = {} if full else {self.param: to_iso(max(0, since - self.lookback_s))}
        listing = self.ctx.walk(self.path, params)
        try:
            first = next(listing)
        except FatalAPIError as exc:
            if full or exc.status != 400:
                raise
            logger.warning("source %s: %s refused %s (%s); reading the full listing instead", self.ctx.source,
                           self.path, self.param, exc)
            full = True
            listing = self.ctx.walk(self.path, {})
            first = next(listing)
        keep = {"since": to_iso(since)} | ({"full": True} if full else {})
        newest: int | None = None
        for records, last in _chain(first, listing):
            rows: Rows = {}
            bad: list[Quarantined] = []
            map_records(self.name, records, self.mapper, into=rows, bad=bad)
            for record in records:
                stamp = _stamp(record, self.time_key)
                if stamp is not None and (newest is None or stamp > newest):
                    newest = stamp
            cursor_after = keep
            if last:
                moved = since if newest is None else max(since, time_bookmark(newest, started, self.ctx.lookback_s))
                cursor_after = {**keep, "since": to_iso(moved)}
            yield Page(rows, cursor_after, bad, done=last)

    def _since(self, cursor: Any | None) -> int:
        if isinstance(cursor, Mapping) and cursor.get("since"):
            value = to_epoch(cursor["since"])
            if value is not None:
                return value
        return self.ctx.start_time


def _chain(first: tuple[list[Any], bool], rest: Iterator[tuple[list[Any], bool]]) -> Iterator[tuple[list[Any], bool]]:
    yield first
    if not first[1]:
        yield from rest


def _stamp(record: Any, key: str) -> int | None:
    if not isinstance(record, Mapping):
        return None
    try:
        return to_epoch(record.get(key))
    except ParseError:
        return None
