"""Zendesk pagination schemes and the one request loop every Zendesk stream shares.

Zendesk has three ways to page (API-NOTES.md 1.2), each a tiny state machine
here with a loop guard (STYLE.md #3):

- ``CursorExport``: incremental cursor exports (tickets, users): ``after_cursor``
  + ``end_of_stream``. The cursor is persisted after every page, including the
  last, so the next scheduled run resumes with one request.
- ``TimeExport``: time-based incremental exports (ticket events, organizations):
  ``next_page`` + ``end_time`` + ``end_of_stream``. The cursor is the page's
  ``end_time``; a resume re-reads ``overlap`` seconds before it, because items
  sharing a timestamp can straddle a page boundary (upserts make this harmless).
- ``CursorList``: ordinary list endpoints: ``page[size]``/``page[after]`` with
  ``meta.has_more``/``meta.after_cursor``/``links.next`` (legacy ``next_page``
  tolerated). Optionally incremental on a timestamp filter (satisfaction ratings).

A stream (``ZendeskStream``) is a declaration (``StreamSpec``): path, records
key, scheme, extra params and a mapper. Only quirks are code.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from connectors.base import Page, Stream
from connectors.errors import AuthenticationError, FatalAPIError, ParseError, RetriableAPIError
from connectors.http import HttpClient
from connectors.normalize import to_epoch
from connectors.zendesk_map import SYSTEM_USER_ID, Rows, index_metric_sets, map_records

logger = logging.getLogger("deskpulse.connectors.zendesk")

MIN_PAGE_SIZE = 50
GROW_AFTER_PAGES = 5


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


def _loop(source: str, path: str, detail: str) -> FatalAPIError:
    return FatalAPIError(f"pagination loop on source {source} (GET {path}: {detail})", source=source, endpoint=path)


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
        self.after = after
        return True


class TimeExport(Paginator):
    """Time-based export: follow ``next_page`` until ``end_of_stream``; the cursor is ``end_time``."""

    def __init__(self, source: str, path: str, cursor: Any, *, start_time: int, overlap: int,
                 params: Mapping[str, Any]) -> None:
        self.source, self.path, self.params = source, path, params
        saved = cursor.get("start_time") if isinstance(cursor, dict) else None
        self.cursor = {"start_time": int(saved)} if saved is not None else None
        self.start = max(0, int(saved) - overlap) if saved is not None else start_time
        self.next_url: str | None = None

    def request(self) -> PageRequest:
        if self.next_url:  # keep declared params (include=...) should the vendor's link drop one
            present = parse_qs(urlsplit(self.next_url).query)
            return PageRequest(self.next_url, {k: v for k, v in self.params.items() if k not in present} or None)
        return PageRequest(self.path, {"start_time": self.start, **self.params})

    def advance(self, body: dict[str, Any]) -> bool:
        end_time = body.get("end_time")
        if end_time is not None and (self.cursor is None or int(end_time) > self.cursor["start_time"]):
            self.cursor = {"start_time": int(end_time)}  # never backwards: an empty overlap page must not drift it
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

    When ``since_key`` is set (satisfaction ratings: ``created_at``), the cursor keeps the highest
    timestamp seen and, mid-run, the ``page[after]`` token plus the filter it belongs to, so a
    resume continues the same listing whatever order the vendor sorts it in. A later run filters
    with ``start_time = highest - overlap``. Without ``since_key`` the stream is a full refresh.
    """

    def __init__(self, source: str, path: str, cursor: Any, *, records_key: str, page_size: int = 100,
                 since_key: str | None = None, start_time: int = 0, overlap: int = 60) -> None:
        self.source, self.path, self.records_key = source, path, records_key
        self.page_size, self.since_key = page_size, since_key
        saved = cursor if since_key and isinstance(cursor, dict) else {}
        self.high: int | None = saved.get("high")
        self.after: str | None = saved.get("after")
        if self.after is not None:
            self.since: int | None = saved.get("since")
        elif self.high is not None:
            self.since = max(0, int(self.high) - overlap)
        else:
            self.since = start_time if since_key and start_time else None
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
            at = _epoch_or_none(item, self.since_key)
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
            self.after = after
            self._save(mid_run=True)
            return True
        if not meta and body.get("next_page"):  # offset pagination (older list endpoints)
            if body["next_page"] == self.next_url:
                raise _loop(self.source, self.path, "next_page repeats the current page")
            self.next_url = body["next_page"]
            return True
        self._save(mid_run=False)
        return False

    def _save(self, *, mid_run: bool) -> None:
        if not self.since_key:
            self.cursor = None
        elif mid_run:
            self.cursor = {"since": self.since, "after": self.after, "high": self.high}
        else:
            self.cursor = {"high": self.high} if self.high is not None else None


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
    since_key: str | None = None  # "list" scheme only: makes it incremental on this timestamp
    feature: str | None = None  # an account feature the endpoint needs: a 403 means "not enabled", not bad auth


@dataclass(slots=True)
class StreamOptions:
    """Per-connector settings the specs are run with."""

    source: str
    per_page: int
    start_time: int
    value_field: str
    time_field: str | None = None
    overlap: int = 60
    list_page_size: int = 100


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

    def paginator(self, cursor: Any) -> Paginator:
        spec, opts = self.spec, self.options
        params = dict(spec.params)
        if spec.scheme == "cursor_export":
            return CursorExport(opts.source, spec.path, cursor, start_time=opts.start_time, sizer=self.sizer,
                                params=params)
        if spec.scheme == "time_export":
            return TimeExport(opts.source, spec.path, cursor, start_time=opts.start_time, overlap=opts.overlap,
                              params=params)
        return CursorList(opts.source, spec.path, cursor, records_key=spec.records_key,
                          page_size=opts.list_page_size, since_key=spec.since_key, start_time=opts.start_time,
                          overlap=opts.overlap)

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
