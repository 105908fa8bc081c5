"""Zendesk's streams on the shared framework, and the Zendesk quirks plugged into it.

Zendesk has three ways to page (API-NOTES.md 1.2); each is a paginator of ``connectors.pagination``:

- ``cursor_export`` -> ``CursorExport``: incremental cursor exports (tickets, users): ``after_cursor`` +
  ``end_of_stream``; the opaque cursor is the documented way to resume (ZD-USING "You don't need a start
  time for the next page or export"), so no time bookmark, no lookback.
- ``time_export`` -> ``TimeExport``: time-based incremental exports (ticket events, organizations),
  bookmarked with ``connectors.base.time_bookmark`` (DESIGN.md sync rule 2, API-NOTES 6.4).
- ``list`` -> ``CursorList``: ``page[size]``/``page[after]`` lists, optionally incremental on a timestamp
  (satisfaction ratings, bookmarked on ``updated_at`` plus a periodic answer-window sweep).

A stream is a declaration (``connectors.streams.StreamSpec``, listed in ``connector.py``) run by
``ZendeskStream``, the framework's ``DeclaredStream`` with Zendesk's quirks as hooks: the 504 page shrink
(``fetch``), the side-loaded metric sets a ticket mapper reads (``context``), the role book that tells
agents from customers (``after_map``) and a 403 on an account feature that is switched off (``pages``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.base import Page
from connectors.errors import AuthenticationError, FatalAPIError, RetriableAPIError
from connectors.http import HttpClient
from connectors.mapping import Rows
from connectors.pagination import CursorExport, CursorList, PageSizer, Paginator, TimeExport
from connectors.streams import DeclaredStream, StreamSpec
from connectors.zendesk.mapping import SYSTEM_USER_ID, index_metric_sets

__all__ = ["RATING_ANSWER_WINDOW", "RATING_SWEEP_EVERY", "MapContext", "RoleBook", "StreamOptions", "StreamSpec",
           "ZendeskStream"]

logger = logging.getLogger("deskpulse.connectors.zendesk")

# Satisfaction ratings (legacy CSAT): a rating record is created when the survey is offered and updated
# when the customer answers (API-NOTES 6.2). Zendesk documents ``start_time``/``end_time`` only as the
# "time of the oldest/most recent satisfaction rating" (Satisfaction Ratings API page, List filters),
# not whether they compare ``created_at`` or ``updated_at`` (UNCONFIRMED). Read the first way, an
# answer given after the bookmark passed the offer would never be listed again; so every
# ``RATING_SWEEP_EVERY`` a run re-lists the last ``RATING_ANSWER_WINDOW``: solved tickets close at most
# 28 days after solving (the close automation's upper bound) and a closed ticket takes no new rating
# (assumed from Zendesk's help on satisfaction ratings; UNCONFIRMED). Read the other way the sweep only
# re-reads what upserts absorb.
RATING_ANSWER_WINDOW = 28 * 86400
RATING_SWEEP_EVERY = 6 * 3600


@dataclass(frozen=True, slots=True)
class MapContext:
    """What a mapper may need besides the record: the page's side-loaded metric sets, settings."""

    metrics: Mapping[str, Mapping[str, Any]]
    value_field: str
    time_field: str | None = None


@dataclass(slots=True)
class StreamOptions:
    """Per-connector settings the specs are run with."""

    source: str
    per_page: int
    start_time: int
    value_field: str
    time_field: str | None = None
    lookback: int = 3600  # seconds re-read behind every time bookmark (the source's ``lookback``)
    list_page_size: int = 100
    clock: Callable[[], float] = time.time  # the run's start, for ``time_bookmark``


class RoleBook:
    """Who wrote a comment: ticket events carry author ids, not roles.

    Learned from the users stream as it syncs in this connector (agents are kept always, customers
    up to a bound so memory stays flat). A row whose author the book does not know carries no
    ``author_role`` (stored NULL when new) and the sync engine fills it from the stored people after
    the run (one SQL join, no extra API requests: a run with nothing new costs one request per stream).
    """

    def __init__(self, max_customers: int = 100_000) -> None:
        self.max_customers = max_customers
        self.agents: set[str] = set()
        self.customers: set[str] = set()

    def learn(self, people: Iterable[dict[str, Any]]) -> None:
        for row in people:
            person_id, role = row.get("id"), row.get("role")
            if not person_id or not role:
                continue
            if role == "agent":
                self.agents.add(person_id)
                self.customers.discard(person_id)
                continue
            self.agents.discard(person_id)
            if len(self.customers) >= self.max_customers:
                self.customers.clear()
            self.customers.add(person_id)

    def role(self, person_id: str) -> str | None:
        if person_id == SYSTEM_USER_ID:
            return "system"
        if person_id in self.agents:
            return "agent"
        return "customer" if person_id in self.customers else None

    def fill(self, messages: Iterable[dict[str, Any]]) -> None:
        """Set ``author_role`` where the author is known; otherwise leave the column out of the row.

        Left out, not None: an upsert keeps a column the row omits, so re-reading a comment in the
        overlap window of a later run never erases a role stored (or resolved by the engine) before.
        """
        for message in messages:
            role = self.role(message["author_id"]) if message.get("author_id") else None
            if role is not None:
                message["author_role"] = role


class ZendeskStream(DeclaredStream):
    """Runs one ``StreamSpec`` with the framework's request loop and Zendesk's quirks as its hooks."""

    def __init__(self, spec: StreamSpec, http: HttpClient, options: StreamOptions, roles: RoleBook) -> None:
        super().__init__(spec, http, options.source)
        self.options, self.roles = options, roles
        self.sizer = PageSizer(options.per_page)  # kept across runs of this stream object

    def paginator(self, cursor: Any, run_start: int | None = None) -> Paginator:
        spec, opts = self.spec, self.options
        params = dict(spec.params)
        run_start = int(opts.clock()) if run_start is None else run_start
        if spec.scheme == "cursor_export":
            return CursorExport(opts.source, spec.path, cursor, start_time=opts.start_time, sizer=self.sizer,
                                params=params)
        if spec.scheme == "time_export":
            return TimeExport(opts.source, spec.path, cursor, start_time=opts.start_time, params=params,
                              records_key=spec.records_key or "", since_key=spec.since_key or "updated_at",
                              run_start=run_start, lookback=opts.lookback)
        incremental = spec.since_key is not None
        return CursorList(opts.source, spec.path, cursor, records_key=spec.records_key or "",
                          page_size=opts.list_page_size, since_key=spec.since_key, start_time=opts.start_time,
                          run_start=run_start, lookback=opts.lookback,
                          sweep_every=RATING_SWEEP_EVERY if incremental else 0,
                          sweep_window=RATING_ANSWER_WINDOW if incremental else 0)

    def pages(self, cursor: Any | None) -> Iterator[Page]:
        try:
            yield from self.run(self.paginator(cursor))
        except AuthenticationError as exc:
            if self.spec.feature is None or exc.status != 403:
                raise
            # e.g. satisfaction ratings switched off for the account: nothing to sync, not a failed source
            logger.warning("source %s: %s is not available (HTTP 403 on %s); is %s enabled? skipping it",
                           self.options.source, self.spec.name, self.spec.path, self.spec.feature)
            if self.spec.since_key is not None:  # remembered, so status and KPIs can say why there is none
                kept = {k: v for k, v in cursor.items() if k in ("high", "swept")} \
                    if isinstance(cursor, dict) else {}
                cursor = {**kept, "csat_api": "forbidden"}
            yield Page({}, cursor, done=True)

    def context(self, body: Any) -> MapContext:
        return MapContext(index_metric_sets(body), self.options.value_field, self.options.time_field)

    def after_map(self, rows: Rows) -> None:
        self.roles.learn(rows.get("people", ()))
        self.roles.fill(rows.get("messages", ()))

    def fetch(self, pager: Paginator) -> tuple[Any, Mapping[str, str]]:
        """GET the paginator's current page; on a gateway timeout shrink the page and ask again (the quirk)."""
        while True:
            req = pager.request()
            sizer = pager.sizer
            shrinkable = sizer is not None and sizer.size > sizer.minimum
            try:
                body = self.http.get_json(req.url, req.params, no_retry={504} if shrinkable else ())
            except RetriableAPIError as exc:
                if exc.status == 504 and sizer is not None and sizer.shrink():
                    logger.warning("source %s stream %s: gateway timeout, per_page down to %d",
                                   self.options.source, self.spec.name, sizer.size)
                    continue
                raise
            if not isinstance(body, dict):
                raise FatalAPIError(f"unexpected response from source {self.options.source} (GET {self.spec.path})",
                                    source=self.options.source, endpoint=self.spec.path)
            return body, {}
