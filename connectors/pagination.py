"""Paginators: one small state machine per pagination scheme, shared by every vendor.

A paginator knows *how a listing pages*, nothing about what it lists: ``request()`` is the page to fetch
next, ``advance(body, headers)`` consumes the answer and says whether another page follows in this run,
and ``cursor`` (JSON-serializable) always resumes *after* the last consumed page (DESIGN.md sync
contract 1). Every paginator refuses to follow a page token it already followed in this run
(:class:`~connectors.errors.PaginationLoopError`, sync contract 7): A, B, A is a loop too, not only A, A.

Schemes (API-NOTES.md 1.2, 2.2, 3.x):

- :class:`CursorExport`: an incremental export resumed by an opaque cursor until ``end_of_stream``
  (Zendesk tickets/users).
- :class:`TimeExport`: a time-based export following ``next_page`` until ``end_of_stream``, bookmarked with
  :func:`connectors.base.time_bookmark` (Zendesk ticket events, organizations).
- :class:`CursorList`: ``page[size]``/``page[after]`` lists with ``meta.has_more``, optionally
  incremental on a record timestamp (Zendesk satisfaction ratings, groups, fields).
- :class:`LinkHeader`: bare-array pages whose only next-page signal is ``Link: <...>; rel="next"``, with
  a page cap (Freshdesk lists).
- :class:`SearchAfter`: a POSTed search query paged by ``starting_after`` (Intercom contacts/conversations).
- :class:`Scroll`: a scroll export paged by ``scroll_param`` until an empty page (Intercom companies).

Vendor quirks (Zendesk's 504 page shrink, Freshdesk's keyset restart at the 300-page cap, Intercom's scroll
contention and search de-duplication) stay in the vendor subpackages, plugged in around these.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from connectors.base import time_bookmark
from connectors.errors import PaginationLoopError, ParseError
from connectors.normalize import to_epoch

MIN_PAGE_SIZE = 50
GROW_AFTER_PAGES = 5
_LINK_NEXT = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?', re.I)


@dataclass(slots=True)
class PageRequest:
    """What to fetch next: ``method`` on a path under the base URL (with params / a JSON body) or an absolute
    next-page URL on the same origin."""

    url: str
    params: dict[str, Any] | None = None
    method: str = "GET"
    json: Any = None


@dataclass(slots=True)
class PageSizer:
    """Adaptive page size: halve on a gateway timeout (504), grow back after a run of good pages."""

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


def loop_error(source: str, path: str, detail: str, method: str = "GET") -> PaginationLoopError:
    """The error for a listing that leads back to a page already read (ends the stream, not the source)."""
    return PaginationLoopError(f"pagination loop on source {source} ({method} {path}: {detail})", source=source,
                               endpoint=path)


def link_next(header: str | None) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header, else None."""
    if not header:
        return None
    match = _LINK_NEXT.search(header)
    return match.group(1) if match else None


def epoch_or_none(item: Any, key: str) -> int | None:
    """A record's timestamp for a high-water mark; a malformed one is the mapper's to quarantine."""
    try:
        return to_epoch(item.get(key))
    except (ParseError, AttributeError):
        return None


class Paginator(ABC):
    """One pagination scheme: ``request()`` is the page to fetch, ``advance(body, headers)`` consumes it."""

    cursor: Any = None
    sizer: PageSizer | None = None
    source: str = ""
    path: str = ""

    @abstractmethod
    def request(self) -> PageRequest: ...

    @abstractmethod
    def advance(self, body: Any, headers: Mapping[str, str] | None = None) -> bool:
        """Take a page body (and the response headers); True when another page follows in this run."""

    def _seen_before(self, token: str) -> bool:
        """True when this run already followed ``token`` (a page cursor or link). Page tokens are short and
        a run reads a bounded number of pages, so the set stays small."""
        seen: set[str] = self.__dict__.setdefault("_tokens_followed", set())
        if token in seen:
            return True
        seen.add(token)
        return False


class CursorExport(Paginator):
    """Incremental cursor export: ``start_time`` once, then ``cursor=after_cursor`` until ``end_of_stream``.

    The cursor is persisted after every page, including the last, so the next run resumes with one
    request. The vendor documents this opaque cursor as the way to resume, so it is kept as is: no time
    bookmark, no lookback.
    """

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

    def advance(self, body: Any, headers: Mapping[str, str] | None = None) -> bool:
        assert self.sizer is not None
        self.sizer.success()
        after = body.get("after_cursor")
        if after:
            self.cursor = {"after_cursor": after}
        if body.get("end_of_stream"):
            return False
        if not after or after == self.after:
            raise loop_error(self.source, self.path, "after_cursor did not advance and end_of_stream is false")
        if self._seen_before(after):
            raise loop_error(self.source, self.path, "after_cursor leads back to a page already read in this run")
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

    def advance(self, body: Any, headers: Mapping[str, str] | None = None) -> bool:
        end_time = body.get("end_time")
        for item in body.get(self.records_key) or ():
            at = epoch_or_none(item, self.since_key) if isinstance(item, dict) else None
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
            raise loop_error(self.source, self.path, f"next page does not move past start_time {self.start}")
        self.next_url, self.start = nxt or None, int(nxt_start)
        return True


class CursorList(Paginator):
    """``page[size]``/``page[after]`` list pagination, optionally incremental on a record timestamp.

    When ``since_key`` is set, the cursor keeps ``high``, the newest timestamp of the records listed, and,
    mid-run, the ``page[after]`` token plus the filter it belongs to, so a resume continues the same
    listing whatever order the vendor sorts it in. A later run filters with ``start_time =
    time_bookmark(high, run start, lookback)``; every ``sweep_every`` seconds it reaches back
    ``sweep_window`` instead, and ``swept`` remembers when. The cursor also says ``csat_api: "listed"``
    (the endpoint answered), which ``kpi_engine.quality`` reads. Without ``since_key`` the stream is a full
    refresh (cursor None).
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

    def _track(self, body: Mapping[str, Any]) -> None:
        if not self.since_key:
            return
        for item in body.get(self.records_key) or ():
            if not isinstance(item, dict):
                continue
            at = epoch_or_none(item, self.since_key)
            if at is None:
                at = epoch_or_none(item, "created_at")
            if at is not None and (self.high is None or at > self.high):
                self.high = at

    def advance(self, body: Any, headers: Mapping[str, str] | None = None) -> bool:
        self._track(body)
        meta, links = body.get("meta") or {}, body.get("links") or {}
        if meta.get("has_more"):
            after = meta.get("after_cursor")
            if not after and links.get("next"):
                after = (parse_qs(urlsplit(links["next"]).query).get("page[after]") or [None])[0]
            if not after or after == self.after:
                raise loop_error(self.source, self.path, "has_more but page[after] did not advance")
            if self._seen_before(after):
                raise loop_error(self.source, self.path, "page[after] leads back to a page already read in this run")
            self.after = after
            self._save(mid_run=True)
            return True
        if not meta and body.get("next_page"):  # offset pagination (older list endpoints)
            if body["next_page"] == self.next_url or self._seen_before(body["next_page"]):
                raise loop_error(self.source, self.path, "next_page leads back to a page already read in this run")
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


class LinkHeader(Paginator):
    """Bare-array pages linked by ``Link: <url>; rel="next"``, at most ``max_pages`` pages a listing.

    ``truncated`` says the cap (not the vendor) ended the listing, so the caller can warn that records
    were left for a later run. An empty page ends the listing too (past its cap a vendor may answer so).
    The cursor is not kept here: a plain link walk is re-read from the start (the streams built on it
    bookmark on a timestamp filter, which is theirs).
    """

    def __init__(self, source: str, path: str, params: Mapping[str, Any] | None = None, *,
                 max_pages: int = 300) -> None:
        self.source, self.path, self.max_pages = source, path, max_pages
        self.params = dict(params or {})
        self.next_url: str | None = None
        self.page_no = 1
        self.truncated = False
        self.last = False  # set by advance(): the page just consumed is the listing's last

    def request(self) -> PageRequest:
        if self.next_url is not None:
            return PageRequest(self.next_url)
        return PageRequest(self.path, self.params)

    def advance(self, body: Any, headers: Mapping[str, str] | None = None) -> bool:
        nxt = link_next((headers or {}).get("Link"))
        if nxt is not None and self.page_no >= self.max_pages:
            self.truncated, nxt = True, None
        self.last = nxt is None or not body
        if self.last:
            return False
        assert nxt is not None
        if self._seen_before(nxt):
            raise loop_error(self.source, self.path, "the Link header leads back to a page already read in this run")
        self.next_url, self.page_no = nxt, self.page_no + 1
        return True


class SearchAfter(Paginator):
    """A POSTed search query (fixed for the run) paged by the vendor's ``pages.next.starting_after``.

    ``query`` is the request body without pagination; ``after`` is where a resumed run starts. The cursor
    is the next ``starting_after`` (None once the last page is consumed); the stream around it keeps its
    own bookmark.
    """

    def __init__(self, source: str, path: str, query: Mapping[str, Any], *, per_page: int,
                 after: str | None = None) -> None:
        self.source, self.path, self.query, self.per_page = source, path, dict(query), per_page
        self.after = after
        self.cursor = after

    def request(self) -> PageRequest:
        pagination: dict[str, Any] = {"per_page": self.per_page}
        if self.after:
            pagination["starting_after"] = self.after
        return PageRequest(self.path, method="POST", json={**self.query, "pagination": pagination})

    @staticmethod
    def next_of(body: Mapping[str, Any]) -> str | None:
        pages = body.get("pages")
        nxt = pages.get("next") if isinstance(pages, Mapping) else None
        if isinstance(nxt, Mapping):
            value = nxt.get("starting_after")
            return str(value) if value else None
        return None

    def restart(self) -> None:
        """Start the query over from its first page (a stored ``starting_after`` the vendor refused)."""
        self.after = self.cursor = None
        self.__dict__.pop("_tokens_followed", None)

    def advance(self, body: Any, headers: Mapping[str, str] | None = None) -> bool:
        nxt = self.next_of(body)
        self.cursor = nxt
        if nxt is None:
            return False
        if nxt == self.after or self._seen_before(nxt):
            raise loop_error(self.source, self.path, "starting_after leads back to a page already read in this run",
                             "POST")
        self.after = nxt
        return True


class Scroll(Paginator):
    """A scroll export: ``GET path`` then ``?scroll_param=<token>`` until a page comes back empty.

    The cursor is the scroll token to resume with (None: start a new scroll). Intercom answers every page of
    one scroll with the same ``scroll_param`` (the simulator does too), so a repeated token is not a loop;
    the scroll ends at its first empty page, which the vendor's server-side position guarantees. A token
    must not be resent once dead: the vendor-specific restart rules (a 500 asking to restart, a scroll
    held elsewhere) belong to the stream that runs it.
    """

    def __init__(self, source: str, path: str, param: str | None = None, *,
                 records_key: str = "data", token_key: str = "scroll_param") -> None:
        self.source, self.path, self.records_key, self.token_key = source, path, records_key, token_key
        self.param = param
        self.cursor = param

    def request(self) -> PageRequest:
        return PageRequest(self.path, {self.token_key: self.param} if self.param else None)

    def restart(self) -> None:
        """Start a new scroll (the old token expired or the vendor asked for a restart)."""
        self.param = self.cursor = None

    def advance(self, body: Any, headers: Mapping[str, str] | None = None) -> bool:
        items = body.get(self.records_key) or []
        param = body.get(self.token_key)
        self.cursor = param
        if not items or not param:
            return False
        self.param = param  # the same token page after page is normal for a scroll: no token loop guard
        return True
