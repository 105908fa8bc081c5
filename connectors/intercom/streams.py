"""Intercom streams: reference lists, the company scroll, and the two search-driven incremental streams.

The incremental streams (contacts, conversations) use ``POST /<kind>/search``
filtered on ``updated_at``. What shapes them:

* **The bookmark never passes what was seen** (DESIGN.md sync contract 2,
  API-NOTES 6.1/6.4). Intercom's search index is eventually consistent (a
  change can take minutes to become searchable: OAS 2.11 ``/contacts/search``
  "Contact Creation Delay"; Hevo re-reads an hour) and the local clock may run
  ahead of Intercom's. A finished run therefore stores
  ``since = min(newest updated_at stored, run start) - lookback``
  (:func:`connectors.base.time_bookmark`, the source's ``lookback``), where
  "newest" is Intercom's own timestamp carried across runs, so a run that
  stores nothing never moves the bookmark and a fast local clock cannot push
  it past Intercom's present. The overlap is re-read; upserts absorb it.
* **One query reads from ``since`` under every reading of the date filters**:
  ``updated_at > since OR updated_at = since`` (Airbyte's source-intercom
  ``manifest.yaml`` sends the same). For conversations (per second) that is
  ``>= since`` whether ``>`` is inclusive (the 2.11 table) or strict. Contacts
  compare dates by calendar day in the workspace's timezone (OAS 2.11
  "Searching for Timestamp Fields": ``=`` is the whole day, ``>`` starts at the
  *next* day; Hevo reads ``>`` as from that day's midnight): the ``=`` arm
  brings the bookmark's whole day, so nothing from ``since`` on is missed under
  either reading, at the price of re-reading the contacts updated earlier that
  day (harmless upserts). Pages follow ``starting_after``, never a moved time
  filter, so a day with more than a page of contacts is paged through once and
  a repeated cursor stops the stream (no loop).
* **Overlap without refetching** (``seen``: {id: updated_at} of records stored
  at ``since`` or later): a conversation in the overlap whose version is
  already stored is not fetched again, so a quiet run costs one search per
  stream. A version younger than ``safety_margin_s`` when read is never
  trusted for that (a second edit in the same second would keep its
  updated_at). ``seen`` is pruned to the next bookmark as the run goes and
  capped (``seen_cap``; beyond it a re-read costs a GET, never a record).
* **The result order is not relied on**: ``sort`` asks for ascending
  ``updated_at``, but nothing is derived from the order of results.
* **Pages are committed one at a time**: the cursor after a page carries the
  run's query (``since``, ``run_start``), Intercom's ``starting_after``,
  ``newest`` and ``seen``, so a crash after any page resumes with the same query
  where it stopped. If the stored ``starting_after`` is refused (expired), the
  query restarts from its first page; upserts make the re-read harmless.

Pagination assumption (documented): Intercom's cursors are keyset cursors
(``WzE3MTk0OTI4NDMwMDAsMzc4XQ`` decodes to ``[sort value, id]``), so a record
that changes mid-run moves *behind* the cursor rather than shifting others past
it; its new version is at or after the next bookmark.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from connectors.base import Page, Quarantined, Stream, time_bookmark
from connectors.errors import APIError, AuthenticationError, FatalAPIError, SkippableAPIError
from connectors.http import HttpClient, in_current_context, vendor_code
from connectors.intercom.mapping import (
    Rows,
    contact_company,
    map_admin,
    map_company,
    map_contact,
    map_conversation,
    map_team,
    parse_list_item,
    requester_of,
)
from connectors.mapping import MAPPING_ERRORS, merge_rows, not_an_object, quarantined
from connectors.pagination import Scroll, SearchAfter

logger = logging.getLogger("deskpulse.connectors.intercom")



@dataclass
class StreamContext:
    """What every Intercom stream shares within one connector."""

    source: str
    http: HttpClient
    clock: Callable[[], float]
    per_page: int = 150
    start_time: int = 0
    value_attribute: str = "arr"
    safety_margin_s: int = 300
    workers: int = 4
    companies_refresh_s: int = 6 * 3600
    lookback_s: int = 3600  # the source's ``lookback``: re-read window behind the search bookmark
    seen_cap: int = 20_000  # most overlap versions remembered to skip refetching (bounds the cursor)
    scroll_wait_s: float = 65.0  # Intercom frees a scroll a minute after its last use (OAS 2.11), plus slack
    scroll_waits: int = 3  # waits for a scroll held elsewhere (scroll_exists) before giving up this run
    scroll_restarts: int = 3  # restarts of our own scroll (expired, or a 500 "restart the scroll operation")
    companies_chunk: int = 2_000  # companies read back-to-back per committed page: a scroll idles < 60 s
    companies: ContactCompanies = field(init=False)

    def __post_init__(self) -> None:
        self.companies = ContactCompanies(self.http)


class ContactCompanies:
    """contact id -> company id. Conversations name their contacts, not the company, so the connector
    learns the link from the contacts stream (which runs first) and asks ``GET /contacts/{id}`` only for
    contacts it has not seen in this process (a resumed or incremental run). Bounded: cleared when huge."""

    MAX = 500_000

    def __init__(self, http: HttpClient) -> None:
        self.http = http
        self._map: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def learn(self, contact_id: str, company_id: str | None) -> None:
        with self._lock:
            if len(self._map) >= self.MAX:
                self._map.clear()
            self._map[contact_id] = company_id

    def resolve(self, contact_id: str | None) -> str | None:
        if contact_id is None:
            return None
        with self._lock:
            if contact_id in self._map:
                return self._map[contact_id]
        try:
            contact = self.http.get_json(f"/contacts/{contact_id}")
        except SkippableAPIError:
            contact = None  # deleted or merged contact: the ticket simply has no company
        company = contact_company(contact) if isinstance(contact, Mapping) else None
        self.learn(contact_id, company)
        return company


# -- simple lists -------------------------------------------------------------------------------------
class _ListStream(Stream):
    """``GET /admins`` / ``GET /teams``: small, unpaginated, re-read in full every run (one request)."""

    path = ""
    key = ""
    table = ""

    def __init__(self, ctx: StreamContext) -> None:
        self.ctx = ctx

    def map(self, record: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def pages(self, cursor: Any | None) -> Iterator[Page]:
        body = self.ctx.http.get_json(self.path) or {}
        rows, quarantine = [], []
        for record in body.get(self.key) or body.get("data") or []:
            try:
                rows.append(self.map(record))
            except MAPPING_ERRORS as exc:
                quarantine.append(quarantined(self.name, record, exc))
        yield Page({self.table: rows}, {"synced_at": int(self.ctx.clock())}, quarantine, done=True)


class AdminsStream(_ListStream):
    name = "admins"
    path, key, table = "/admins", "admins", "people"

    def map(self, record: Mapping[str, Any]) -> dict[str, Any]:
        return map_admin(record)


class TeamsStream(_ListStream):
    name = "teams"
    path, key, table = "/teams", "teams", "groups"

    def map(self, record: Mapping[str, Any]) -> dict[str, Any]:
        return map_team(record)


# -- companies ----------------------------------------------------------------------------------------
class CompaniesStream(Stream):
    """``GET /companies/scroll``: a full export, refreshed at most every ``companies_refresh_s``.

    Intercom has no updated-since filter for companies, so an incremental run
    would re-read them all; a company's value and age change slowly, hence the
    refresh interval (a run inside it costs no request). What the scroll
    demands (OAS 2.11 ``/companies/scroll``; peers' handling in Airbyte's
    source-intercom ``manifest.yaml`` and singer's tap-intercom ``client.py``):

    * one open scroll per app: ``400 scroll_exists`` means another integration
      (or our own scroll from a run that just died) holds it; it frees a minute
      after its last use, so wait ``scroll_wait_s`` through the HTTP layer's
      stoppable wait and retry, at most ``scroll_waits`` times;
    * a ``scroll_param`` unused for a minute expires, and a ``500`` asks to
      "restart the scroll operation": both start the scroll over (no
      ``scroll_param``), at most ``scroll_restarts`` times a run;
    * a first call answered ``404`` means the workspace has no companies: an
      empty, successful refresh (failing it would fail every run);
    * pages are read back-to-back and committed in chunks of
      ``companies_chunk`` companies, so a slow store or consumer between
      commits rarely leaves the scroll idle for its minute.

    Companies never stop contacts and conversations: whatever fails here is
    raised as a stream-level error (the engine records it and runs the next
    stream), the companies stored before stay, and the next run tries again.
    """

    name = "companies"

    def __init__(self, ctx: StreamContext) -> None:
        self.ctx = ctx

    def pages(self, cursor: Any | None) -> Iterator[Page]:
        state = dict(cursor) if isinstance(cursor, Mapping) else {}
        now = int(self.ctx.clock())
        refreshed = state.get("refreshed_at")
        param = state.get("scroll_param")
        if param is None and isinstance(refreshed, int) and now - refreshed < self.ctx.companies_refresh_s:
            yield Page({}, state, done=True)
            return
        started = int(state.get("started_at") or now)
        try:
            yield from self._scroll(param, started)
        except FatalAPIError as exc:  # permission, contract...: this stream's failure, never the source's
            raise SkippableAPIError(f"{exc} (companies not refreshed; contacts and conversations go on)",
                                    status=exc.status, source=self.ctx.source, endpoint=exc.endpoint,
                                    vendor_code=vendor_code(exc)) from None

    def _scroll(self, param: str | None, started: int) -> Iterator[Page]:
        rows: list[dict[str, Any]] = []
        quarantine: list[Quarantined] = []
        waits = restarts = 0
        pager = Scroll(self.ctx.source, "/companies/scroll", param)
        while True:
            req = pager.request()
            try:
                # A 500 on a scroll_param means "restart the scroll": never resend the dead param (no_retry).
                body = self.ctx.http.get_json(req.url, req.params, no_retry=(500,) if pager.param else ()) or {}
            except APIError as exc:
                if exc.status == 400 and vendor_code(exc) == "scroll_exists":
                    if waits >= self.ctx.scroll_waits:
                        raise SkippableAPIError(
                            f"source {self.ctx.source}: Intercom's company scroll is held by another integration "
                            f"(scroll_exists, still after {waits} waits of {self.ctx.scroll_wait_s:g}s); companies "
                            "not refreshed this run", status=400, source=self.ctx.source,
                            endpoint="/companies/scroll", vendor_code="scroll_exists") from None
                    waits += 1
                    logger.warning("source %s: Intercom's company scroll is open elsewhere (scroll_exists); "
                                   "waiting %gs for it to expire (%d/%d)", self.ctx.source, self.ctx.scroll_wait_s,
                                   waits, self.ctx.scroll_waits)
                    _wait(self.ctx.http, self.ctx.scroll_wait_s)
                    continue
                if pager.param is None and exc.status == 404 and not isinstance(exc, AuthenticationError):
                    logger.info("source %s: Intercom has no companies (404 on the first scroll call)",
                                self.ctx.source)
                    yield Page({"organizations": rows}, {"refreshed_at": started}, quarantine, done=True)
                    return
                if (pager.param is None or restarts >= self.ctx.scroll_restarts or isinstance(exc, AuthenticationError)
                        or exc.status not in (400, 404, 422, 500)):
                    raise
                logger.info("source %s: company scroll ended by Intercom (HTTP %s); starting it over",
                            self.ctx.source, exc.status)
                pager.restart()
                restarts += 1
                rows, quarantine = [], []  # not committed: the new scroll reads them again
                continue
            items = body.get("data") or []
            for record in items:
                try:
                    rows.append(map_company(record, self.ctx.value_attribute))
                except MAPPING_ERRORS as exc:
                    quarantine.append(quarantined(self.name, record, exc))
            if not pager.advance(body):
                yield Page({"organizations": rows}, {"refreshed_at": started}, quarantine, done=True)
                return
            if len(rows) + len(quarantine) >= self.ctx.companies_chunk:
                yield Page({"organizations": rows}, {"scroll_param": pager.param, "started_at": started}, quarantine)
                rows, quarantine = [], []


def _wait(http: HttpClient, seconds: float) -> None:
    """Wait through the HTTP layer, never ``time.sleep``: the client's wait is the one the stop signal ends
    (DESIGN.md sync contract 7) and the one tests' fake clocks drive."""
    http.wait(seconds)


# -- search-driven incremental streams ----------------------------------------------------------------
class _SearchStream(Stream):
    """The bookmark/overlap/seen machinery shared by contacts and conversations (see module docstring)."""

    path = ""
    list_key = ""

    def __init__(self, ctx: StreamContext) -> None:
        self.ctx = ctx

    def expand(self, items: list[Any], seen: dict[str, int], trusted_before: int,
               pool: ThreadPoolExecutor | None) -> tuple[Rows, list[Quarantined], int | None]:
        """Map one search page: its rows, its quarantine and the newest ``updated_at`` it stored. Versions
        already in ``seen`` are skipped; stored ones older than ``trusted_before`` are remembered there."""
        raise NotImplementedError

    def _query(self, since: int) -> dict[str, Any]:
        """The run's search body without pagination (``SearchAfter`` adds ``per_page``/``starting_after``)."""
        # ">" OR "=": everything from ``since`` on, whether ">" is inclusive or strict per second, or (contacts)
        # compares calendar days from the next day's (OAS 2.11) or the same day's (Hevo) midnight.
        return {
            "query": {"operator": "OR", "value": [{"field": "updated_at", "operator": ">", "value": since},
                                                  {"field": "updated_at", "operator": "=", "value": since}]},
            "sort": {"field": "updated_at", "order": "ascending"},
        }

    def _start(self, state: dict[str, Any]) -> tuple[int, int, str | None]:
        """(since, run_start, starting_after) of the query this run makes or resumes."""
        if "run_start" in state and "since" in state:  # resuming a run that stopped after a committed page
            return int(state["since"]), int(state["run_start"]), state.get("starting_after")
        if "since" in state:
            since = int(state["since"])
        elif "watermark" in state:  # a bookmark of an earlier version (a signpost): re-read its lookback too
            since = max(0, int(state["watermark"]) - self.ctx.lookback_s)
        else:
            since = self.ctx.start_time
        return since, int(self.ctx.clock()), None

    def _bookmark(self, since: int, newest: int | None, run_start: int) -> int:
        """``min(newest stored, run start) - lookback``; unchanged while nothing was ever stored."""
        return since if newest is None else time_bookmark(newest, run_start, self.ctx.lookback_s)

    def _prune(self, seen: dict[str, int], floor: int) -> dict[str, int]:
        """Only versions the next query can match are worth remembering; at most ``seen_cap`` (newest kept)."""
        kept = {k: v for k, v in seen.items() if v >= floor}
        if len(kept) > self.ctx.seen_cap:
            kept = dict(sorted(kept.items(), key=lambda kv: kv[1])[-self.ctx.seen_cap:])
        return kept

    def pages(self, cursor: Any | None) -> Iterator[Page]:
        state = dict(cursor) if isinstance(cursor, Mapping) else {}
        since, run_start, after = self._start(state)
        newest = int(state["newest"]) if isinstance(state.get("newest"), int) else None
        seen = self._prune({str(k): int(v) for k, v in (state.get("seen") or {}).items()}, since)
        resumed = after is not None
        pager = SearchAfter(self.ctx.source, self.path, self._query(since), per_page=self.ctx.per_page, after=after)
        pool_cm: ThreadPoolExecutor | _NoPool = _NoPool()
        if self.ctx.workers > 1:
            pool_cm = ThreadPoolExecutor(max_workers=self.ctx.workers, thread_name_prefix=f"intercom-{self.name}")
        with pool_cm as pool:
            while True:
                # A version younger than the margin may be followed by another edit in the same second (same
                # updated_at): never trust such a version for dedup, so the next run reads it again.
                trusted_before = int(self.ctx.clock()) - self.ctx.safety_margin_s
                req = pager.request()
                try:
                    resp = self.ctx.http.request(req.method, req.url, json=req.json)
                except (SkippableAPIError, FatalAPIError) as exc:
                    if not resumed or isinstance(exc, AuthenticationError) or exc.status not in (400, 404, 422):
                        raise
                    logger.info("source %s: %s cursor refused on resume (HTTP %s); restarting the query from "
                                "%d", self.ctx.source, self.name, exc.status, since)
                    pager.restart()
                    resumed = False
                    continue
                resumed = False
                body = self.ctx.http.decode(resp, req.method, expect=dict)
                items = body.get(self.list_key)
                if items is None:
                    items = body.get("data") or []
                records, quarantine, page_newest = self.expand(
                    list(items), seen, trusted_before, pool if isinstance(pool, ThreadPoolExecutor) else None)
                if page_newest is not None:
                    newest = page_newest if newest is None else max(newest, page_newest)
                # The next bookmark is at least this floor (newest only grows): older versions can go.
                seen = self._prune(seen, self._bookmark(since, newest, run_start))
                if not pager.advance(body):  # a starting_after leading back raises PaginationLoopError
                    yield Page(records, {"since": self._bookmark(since, newest, run_start), "newest": newest,
                                         "seen": seen}, quarantine, done=True)
                    return
                yield Page(records, {"since": since, "run_start": run_start, "starting_after": pager.after,
                                     "newest": newest, "seen": dict(seen)}, quarantine)


class _NoPool:
    """Stand-in for a thread pool when ``workers <= 1`` (deterministic tests, tiny accounts)."""

    def __enter__(self) -> _NoPool:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _remember(seen: dict[str, int], rid: str, updated: int, trusted_before: int) -> None:
    if updated < trusted_before:
        seen[rid] = updated
    else:
        seen.pop(rid, None)


def _newest(newest: int | None, updated: int | None) -> int | None:
    if updated is None:
        return newest
    return updated if newest is None else max(newest, updated)


class ContactsStream(_SearchStream):
    """``POST /contacts/search`` -> customer people (users and leads); feeds the contact -> company map."""

    name = "contacts"
    path, list_key = "/contacts/search", "data"

    def expand(self, items: list[Any], seen: dict[str, int], trusted_before: int,
               pool: ThreadPoolExecutor | None) -> tuple[Rows, list[Quarantined], int | None]:
        rows, quarantine = [], []
        newest: int | None = None
        for item in items:
            try:
                cid, updated = parse_list_item(item)
                row = map_contact(item)
            except MAPPING_ERRORS as exc:
                quarantine.append(quarantined(self.name, item, exc))
                continue
            self.ctx.companies.learn(cid, row["organization_id"])
            if seen.get(cid) == updated:
                continue
            # Contacts updated earlier on the bookmark's day come back too (by-day dates): stored again, a no-op.
            rows.append(row)
            newest = _newest(newest, updated)
            _remember(seen, cid, updated, trusted_before)
        return {"people": rows}, quarantine, newest


class ConversationsStream(_SearchStream):
    """``POST /conversations/search`` then ``GET /conversations/{id}`` for each changed one (parts are only
    on the GET). A page's tickets, messages, events and ratings are emitted together, so a ticket is never
    stored without its messages. A conversation gone (404) between search and GET is skipped."""

    name = "conversations"
    path, list_key = "/conversations/search", "conversations"

    def expand(self, items: list[Any], seen: dict[str, int], trusted_before: int,
               pool: ThreadPoolExecutor | None) -> tuple[Rows, list[Quarantined], int | None]:
        quarantine: list[Quarantined] = []
        newest: int | None = None
        todo: list[str] = []
        for item in items:
            try:
                cid, updated = parse_list_item(item)
            except MAPPING_ERRORS as exc:
                quarantine.append(quarantined(self.name, item, exc))
                continue
            if seen.get(cid) != updated and cid not in todo:
                todo.append(cid)
        results = list(pool.map(in_current_context(self._fetch), todo)) if pool is not None and len(todo) > 1 \
            else [self._fetch(cid) for cid in todo]
        records: Rows = {"tickets": [], "messages": [], "ticket_events": [], "ratings": [], "time_entries": []}
        for cid, outcome in zip(todo, results, strict=True):
            if outcome is None:
                continue
            if isinstance(outcome, Quarantined):
                quarantine.append(outcome)
                continue
            rows, updated = outcome
            merge_rows(records, rows)
            newest = _newest(newest, updated)
            _remember(seen, cid, updated, trusted_before)
        return records, quarantine, newest

    def _fetch(self, cid: str) -> tuple[Rows, int] | Quarantined | None:
        """GET one conversation and map it (runs in a worker thread)."""
        try:
            conv = self.ctx.http.get_json(f"/conversations/{cid}")
        except SkippableAPIError as exc:
            if exc.status == 404:
                logger.info("source %s: conversation %s disappeared before it could be read; skipped",
                            self.ctx.source, cid)
                return None
            raise
        if not isinstance(conv, Mapping):
            return quarantined(self.name, conv, not_an_object(conv), cid)
        try:
            org = self.ctx.companies.resolve(requester_of(conv))
            rows, truncated = map_conversation(conv, organization_id=org, synced_at=int(self.ctx.clock()))
            updated = int(rows["tickets"][0]["updated_at"])
        except MAPPING_ERRORS as exc:
            return quarantined(self.name, conv, exc, cid)
        if truncated:
            logger.warning("source %s: conversation %s has more parts than Intercom returns (500 most recent); "
                           "older parts not stored by an earlier sync are missing", self.ctx.source, cid)
        return rows, updated
