"""Zendesk pagination schemes and the one request loop every Zendesk stream shares.

Zendesk has three ways to page (API-NOTES.md 1.2), each a tiny state machine
here with a loop guard (STYLE.md #3):

- ``CursorExport``: incremental cursor exports (tickets, users): ``after_cursor``
  + ``end_of_stream``. The cursor is persisted after every page, including the
  last, so the next scheduled run resumes with one request.
  Zendesk documents this opaque cursor as the way to resume (ZD-USING "You don't
  need a start time for the next page or export"), so it is kept as is: no
  time bookmark, no lookback.
- ``TimeExport``: time-based incremental exports (ticket events, organizations):
  ``next_page`` + ``end_time`` + ``end_of_stream``. The bookmark is
  ``connectors.base.time_bookmark``: ``min(newest timestamp actually read,
  run start) - lookback`` (DESIGN.md sync rule 2, API-NOTES 6.4), never the
  vendor's ``end_time`` alone; the overlap is re-read and absorbed by upserts.
- ``CursorList``: ordinary list endpoints: ``page[size]``/``page[after]`` with
  ``meta.has_more``/``meta.after_cursor``/``links.next`` (legacy ``next_page``
  tolerated). Optionally incremental on a timestamp filter (satisfaction ratings,
  bookmarked on ``updated_at`` with the same rule plus a periodic answer-window sweep).

A stream (``ZendeskStream``) is a declaration (``StreamSpec``): path, records
key, scheme, extra params and a mapper. Only quirks are code.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from connectors.base import Page, Stream, time_bookmark
from connectors.errors import (
    AuthenticationError,
    FatalAPIError,
    PaginationLoopError,
    ParseError,
    RetriableAPIError,
)
from connectors.http import HttpClient
from connectors.mapping import Rows, map_records
from connectors.normalize import to_epoch
from connectors.zendesk.mapping import SYSTEM_USER_ID, index_metric_sets

logger = logging.getLogger("deskpulse.connectors.zendesk")

MIN_PAGE_SIZE = 50
GROW_AFTER_PAGES = 5
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


@dataclass(slots=True)
class PageRequest:
    """What to GET next: a path under the base URL (with params) or an absolute next-page URL."""

    url: str
    params: dict[str, Any] | None = None


@dataclass(slots=True)
class PageSizer:
    """Adaptive ``per_page``: halve on a gateway timeout (504), grow back after a run of good pages."""

    maximum: int
    size: int = 0
    streak: int = 0

    def __post_init__(self) -> None:
        self.size = self.size or self.maximum

    @property
    def minimum(self) -> int:
        return min(MIN_PAGE_SIZE, self.maximum)

    def shrink(self) -> bool:
        if self.size <= self.minimum:
            return False
        self.size = max(self.minimum, self.size // 2)
        self.streak = 0
        return True

    def success(self) -> None:
        self.streak += 1
        if self.streak >= GROW_AFTER_PAGES and self.size < self.maximum:
            self.size = min(self.maximum, self.size * 2)
            self.streak = 0


class Paginator(ABC):
    """One pagination scheme: ``request()`` is the page to fetch, ``advance(body)`` consumes it.

    ``cursor`` always resumes after the last consumed page (JSON-serializable).
    """

    cursor: Any = None
    sizer: PageSizer | None = None

    @abstractmethod
    def request(self) -> PageRequest: ...

    @abstractmethod
    def advance(self, body: dict[str, Any]) -> bool:
        """Take a page body; True when another page follows in this run."""

    def _seen_before(self, token: str) -> bool:
        """True when this run already followed ``token`` (a page cursor or link): A, B, A is a loop too, not
        only A, A (DESIGN.md sync contract 7). Page tokens are short, so the set stays small."""
        seen: set[str] = self.__dict__.setdefault("_tokens_followed", set())
        if token in seen:
            return True
        seen.add(token)
        return False


def _loop(source: str, path: str, detail: str) -> FatalAPIError:
    # a loop ends this stream only (the engine runs the next one); still a FatalAPIError for callers
    return PaginationLoopError(f"pagination loop on source {source} (GET {path}: {detail})", source=source,
                               endpoint=path)


class CursorExport(Paginator):
    """Incremental cursor export: ``start_time`` once, then ``cursor=after_cursor`` until ``end_of_stream``."""

    def __init__(self, source: str, path: str, cursor: Any, *, start_time: int, sizer: PageSizer,
                 params: Mapping[str, Any]) -> None:
        self.source, self.path, self.start_time, self.sizer, self.params = source, path, start_time, sizer, params
        self.cursor = cursor if isinstance(cursor, dict) and cursor.get("after_cursor") else None
        self.after: str | None = self.cursor["after_cursor"] if self.cursor else None

    def request(self) -> PageRequest:
        assert self.sizer is not None
        params: dict[str, Any] = {"per_page": self.sizer.size, **self.params}
        if self.after is None:
            params["start_time"] = self.start_time
        else:
            params["cursor"] = self.after
        return PageRequest(self.path, params)

    def advance(self, body: dict[str, Any]) -> bool:
        assert self.sizer is not None
        self.sizer.success()
        after = body.get("after_cursor")
        if after:
            self.cursor = {"after_cursor": after}
        if body.get("end_of_stream"):
            return False
        if not after or after == self.after:
            raise _loop(self.source, self.path, "after_cursor did not advance and end_of_stream is false")
        if self._seen_before(after):
            raise _loop(self.source, self.path, "after_cursor leads back to a page already read in this run")
        self.after = after
        return True


class TimeExport(Paginator):
    """Time-based export: follow ``next_page`` until ``end_of_stream``.

    The cursor is ``{"start_time": bookmark, "high": newest}``: ``high`` is the newest ``since_key``
    of the records read so far (all runs), ``bookmark`` is ``time_bookmark(high, run start,
    lookback)``, where the next run (or a resume after a crash) starts. The vendor's ``end_time`` only
    drives the pages of this run. While nothing was ever read the bookmark stays at the first start:
    a run's start alone is a signpost that would skip records arriving late with an older timestamp.
    A cursor of the older shape (``{"start_time": end_time}``) counts as ``high``.
    """

    def __init__(self, source: str, path: str, cursor: Any, *, start_time: int, params: Mapping[str, Any],
                 records_key: str, since_key: str, run_start: int, lookback: int) -> None:
        self.source, self.path, self.params = source, path, params
        self.records_key, self.since_key = records_key, since_key
        self.run_start, self.lookback = run_start, lookback
        saved = cursor if isinstance(cursor, dict) else {}
        high = saved.get("high", saved.get("start_time"))
        self.high: int | None = None if high is None else int(high)
        if "high" in saved and saved.get("start_time") is not None:
            self.start = int(saved["start_time"])
        elif self.high is not None:  # older cursor: its start_time was the vendor's end_time
            self.start = time_bookmark(self.high, run_start, lookback)
        else:
            self.start = start_time
        self.first = self.start
        self.cursor = dict(saved) or None
        self.next_url: str | None = None

    def request(self) -> PageRequest:
        if self.next_url:  # keep declared params (include=...) should the vendor's link drop one
            present = parse_qs(urlsplit(self.next_url).query)
            return PageRequest(self.next_url, {k: v for k, v in self.params.items() if k not in present} or None)
        return PageRequest(self.path, {"start_time": self.start, **self.params})

    def advance(self, body: dict[str, Any]) -> bool:
        end_time = body.get("end_time")
        for item in body.get(self.records_key) or ():
            at = _epoch_or_none(item, self.since_key) if isinstance(item, dict) else None
            if at is not None and (self.high is None or at > self.high):
                self.high = at
        # never before this run's first start (high only grows, so an empty overlap page cannot drift it)
        bookmark = self.first if self.high is None else max(
            self.first, time_bookmark(self.high, self.run_start, self.lookback))
        self.cursor = {"start_time": bookmark, "high": self.high}
        nxt = body.get("next_page")
        if body.get("end_of_stream") or (not nxt and body.get("end_of_stream") is None):
            return False  # older responses have no end_of_stream: no next_page is the end
        if nxt:
            query = parse_qs(urlsplit(nxt).query)
            nxt_start = int(query["start_time"][0]) if query.get("start_time") else end_time
        else:  # end_of_stream is false but no link: the documented rule, end_time is the next start_time
            nxt_start = end_time
        if (nxt and nxt == self.next_url) or nxt_start is None or int(nxt_start) <= self.start:
            raise _loop(self.source, self.path, f"next page does not move past start_time {self.start}")
        self.next_url, self.start = nxt or None, int(nxt_start)
        return True


def _epoch_or_none(item: Any, key: str) -> int | None:
    """A record's timestamp for the high-water mark; a malformed one is the mapper's to quarantine."""
    try:
        return to_epoch(item.get(key))
    except (ParseError, AttributeError):
        return None


class CursorList(Paginator):
    """``page[size]``/``page[after]`` list pagination, optionally incremental on a record timestamp.

    When ``since_key`` is set (satisfaction ratings: ``updated_at``), the cursor keeps ``high``, the
    newest timestamp of the records listed (any score, ``offered`` included: the record was read),
    and, mid-run, the ``page[after]`` token plus the filter it belongs to, so a resume continues the
    same listing whatever order the vendor sorts it in. A later run filters with ``start_time =
    time_bookmark(high, run start, lookback)``; every ``sweep_every`` seconds it reaches back
    ``sweep_window`` instead (see ``RATING_ANSWER_WINDOW``), and ``swept`` remembers when. The cursor
    also says ``csat_api: "listed"``: the endpoint answered (``"forbidden"`` is set by the stream on a
    403), which ``kpi_engine.quality`` reads to tell "no CSAT through this API" from "no ratings yet".
    Without ``since_key`` the stream is a full refresh.
    """

    def __init__(self, source: str, path: str, cursor: Any, *, records_key: str, page_size: int = 100,
                 since_key: str | None = None, start_time: int = 0, run_start: int = 0, lookback: int = 0,
                 sweep_every: int = 0, sweep_window: int = 0) -> None:
        self.source, self.path, self.records_key = source, path, records_key
        self.page_size, self.since_key = page_size, since_key
        self.run_start = run_start
        saved = cursor if since_key and isinstance(cursor, dict) else {}
        self.high: int | None = saved.get("high")
        self.after: str | None = saved.get("after")
        self.swept: int | None = saved.get("swept")
        self.sweeping = False
        if self.after is not None:  # resuming this listing mid-run
            self.since: int | None = saved.get("since")
            self.sweeping = bool(saved.get("sweeping"))
        elif self.high is not None:
            self.since = time_bookmark(self.high, run_start, lookback)
            if sweep_every and (self.swept is None or run_start - int(self.swept) >= sweep_every):
                self.since = max(0, min(self.since, run_start - sweep_window))
                self.sweeping = True
        else:  # first listing: from the configured start, which covers any answer window
            self.since = start_time if since_key and start_time else None
            self.sweeping = bool(since_key)
        self.cursor = dict(saved) or None
        self.next_url: str | None = None

    def request(self) -> PageRequest:
        if self.next_url:
            return PageRequest(self.next_url)
        params: dict[str, Any] = {"page[size]": self.page_size}
        if self.after is not None:
            params["page[after]"] = self.after
        if self.since is not None:
            params["start_time"] = self.since
        return PageRequest(self.path, params)

    def _track(self, body: dict[str, Any]) -> None:
        if not self.since_key:
            return
        for item in body.get(self.records_key) or ():
            if not isinstance(item, dict):
                continue
            at = _epoch_or_none(item, self.since_key)
            if at is None:
                at = _epoch_or_none(item, "created_at")
            if at is not None and (self.high is None or at > self.high):
                self.high = at

    def advance(self, body: dict[str, Any]) -> bool:
        self._track(body)
        meta, links = body.get("meta") or {}, body.get("links") or {}
        if meta.get("has_more"):
            after = meta.get("after_cursor")
            if not after and links.get("next"):
                after = (parse_qs(urlsplit(links["next"]).query).get("page[after]") or [None])[0]
            if not after or after == self.after:
                raise _loop(self.source, self.path, "has_more but page[after] did not advance")
            if self._seen_before(after):
                raise _loop(self.source, self.path, "page[after] leads back to a page already read in this run")
            self.after = after
            self._save(mid_run=True)
            return True
        if not meta and body.get("next_page"):  # offset pagination (older list endpoints)
            if body["next_page"] == self.next_url or self._seen_before(body["next_page"]):
                raise _loop(self.source, self.path, "next_page leads back to a page already read in this run")
            self.next_url = body["next_page"]
            return True
        self._save(mid_run=False)
        return False

    def _save(self, *, mid_run: bool) -> None:
        if not self.since_key:
            self.cursor = None
        elif mid_run:
            self.cursor = {"since": self.since, "after": self.after, "high": self.high, "swept": self.swept,
                           "sweeping": self.sweeping, "csat_api": "listed"}
        else:
            swept = self.run_start if self.sweeping else self.swept
            self.cursor = {"high": self.high, "swept": swept, "csat_api": "listed"}


@dataclass(frozen=True, slots=True)
class MapContext:
    """What a mapper may need besides the record: the page's side-loaded metric sets, settings."""

    metrics: dict[str, dict[str, Any]]
    value_field: str
    time_field: str | None = None


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """One Zendesk endpoint, declared: where, which key holds the records, how it pages, how it maps."""

    name: str
    path: str
    records_key: str
    scheme: Literal["cursor_export", "time_export", "list"]
    tables: tuple[str, ...]
    to_rows: Callable[[dict[str, Any], MapContext], Rows]
    params: tuple[tuple[str, str], ...] = ()
    since_key: str | None = None  # "list": incremental on this timestamp; "time_export": the bookmark's timestamp
    feature: str | None = None  # an account feature the endpoint needs: a 403 means "not enabled", not bad auth


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


class ZendeskStream(Stream):
    """Runs one ``StreamSpec``: the single request loop (fetch, 504 page shrink, map, advance, yield)."""

    def __init__(self, spec: StreamSpec, http: HttpClient, options: StreamOptions, roles: RoleBook) -> None:
        self.name = spec.name  # type: ignore[misc]  # instances of one class serve every spec
        self.spec, self.http, self.options, self.roles = spec, http, options, roles
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
                              records_key=spec.records_key, since_key=spec.since_key or "updated_at",
                              run_start=run_start, lookback=opts.lookback)
        incremental = spec.since_key is not None
        return CursorList(opts.source, spec.path, cursor, records_key=spec.records_key,
                          page_size=opts.list_page_size, since_key=spec.since_key, start_time=opts.start_time,
                          run_start=run_start, lookback=opts.lookback,
                          sweep_every=RATING_SWEEP_EVERY if incremental else 0,
                          sweep_window=RATING_ANSWER_WINDOW if incremental else 0)

    def pages(self, cursor: Any | None) -> Iterator[Page]:
        pager = self.paginator(cursor)
        more = True
        while more:
            try:
                body = self._fetch(pager)
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
                return
            items = body.get(self.spec.records_key)
            if not isinstance(items, list):
                raise FatalAPIError(
                    f"unexpected response from source {self.options.source} (GET {self.spec.path}): "
                    f"no '{self.spec.records_key}' list", source=self.options.source, endpoint=self.spec.path)
            ctx = MapContext(index_metric_sets(body), self.options.value_field, self.options.time_field)
            to_rows = self.spec.to_rows
            rows, bad = map_records(self.spec.name, items, lambda item, ctx=ctx, f=to_rows: f(item, ctx),
                                    self.spec.tables)
            self.roles.learn(rows.get("people", ()))
            self.roles.fill(rows.get("messages", ()))
            more = pager.advance(body)
            yield Page(records=rows, cursor=pager.cursor, quarantine=bad, done=not more)

    def _fetch(self, pager: Paginator) -> dict[str, Any]:
        """GET the paginator's current page; on a gateway timeout shrink the page and ask again."""
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
            return body
