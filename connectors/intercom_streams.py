"""Intercom streams: reference lists, the company scroll, and the two search-driven incremental streams.

The incremental streams (contacts, conversations) use ``POST /<kind>/search``
filtered on ``updated_at``. Three facts shape them (API-NOTES 3.2):

* ``>`` is documented as *inclusive*, but is not confirmed either way, so we
  search ``> watermark - 1`` (every record at or after the watermark under both
  readings) and deduplicate the boundary with ``seen`` ({id: updated_at} of
  records already stored at that version): a re-run costs one search, no GETs.
  A version younger than ``safety_margin_s`` when read is never trusted for
  that: a second edit in the same second would keep the same updated_at.
* The result order is not guaranteed, so nothing is derived from the order of
  results: the next watermark is the *signpost*, the time this run started minus
  ``safety_margin_s`` (clock skew, search-index lag). Anything edited during or
  shortly before the run is read again by the next one; nothing is ever skipped.
* Pages are committed one at a time: the cursor after a page carries the
  run's query (watermark, signpost) and Intercom's ``starting_after``, so a
  crash after any page resumes with the same query where it stopped. If the
  stored ``starting_after`` is refused (expired), the query restarts from its
  first page; upserts make the re-read harmless. A finished run stores
  ``{"watermark": signpost, "seen": {...}}``.

Pagination assumption (documented): Intercom's cursors are keyset cursors
(``WzE3MTk0OTI4NDMwMDAsMzc4XQ`` decodes to ``[sort value, id]``), so a record
that changes mid-run moves *behind* the cursor rather than shifting others past
it; the signpost catches whatever moved.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from connectors.base import Page, Quarantined, Stream
from connectors.errors import AuthenticationError, FatalAPIError, ParseError, SkippableAPIError
from connectors.http import HttpClient
from connectors.intercom_map import (
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
from connectors.normalize import id_str

logger = logging.getLogger("deskpulse.connectors.intercom")

MAPPING_ERRORS = (ParseError, KeyError, TypeError, ValueError, AttributeError)


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


def _json(resp: Any) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        raise FatalAPIError("Intercom answered with a body that is not JSON") from None
    if not isinstance(body, dict):
        raise FatalAPIError(f"Intercom answered with a {type(body).__name__}, expected an object")
    return body


def _merge(into: Rows, rows: Rows) -> None:
    for table, items in rows.items():
        into.setdefault(table, []).extend(items)


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
                rid = id_str(record.get("id")) if isinstance(record, Mapping) else None
                quarantine.append(Quarantined(self.name, rid, str(exc), record))
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
    refresh interval (a run inside it costs no request). A scroll_param expires
    after about a minute: a resume that finds it refused starts the scroll over.
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
        restarts = 0  # a scroll_param expires after a minute: a resume or a long backoff between pages ends it
        while True:
            try:
                body = self.ctx.http.get_json("/companies/scroll", {"scroll_param": param} if param else None) or {}
            except (SkippableAPIError, FatalAPIError) as exc:
                if (param is None or restarts >= 2 or isinstance(exc, AuthenticationError)
                        or exc.status not in (400, 404, 422)):
                    raise
                logger.info("source %s: company scroll expired (HTTP %s); starting it over", self.ctx.source,
                            exc.status)
                param, restarts = None, restarts + 1
                continue
            items = body.get("data") or []
            rows, quarantine = [], []
            for record in items:
                try:
                    rows.append(map_company(record, self.ctx.value_attribute))
                except MAPPING_ERRORS as exc:
                    rid = id_str(record.get("id")) if isinstance(record, Mapping) else None
                    quarantine.append(Quarantined(self.name, rid, str(exc), record))
            param = body.get("scroll_param")
            if not items or not param:
                yield Page({"organizations": rows}, {"refreshed_at": started}, quarantine, done=True)
                return
            yield Page({"organizations": rows}, {"scroll_param": param, "started_at": started}, quarantine)


# -- search-driven incremental streams ----------------------------------------------------------------
class _SearchStream(Stream):
    """The watermark/signpost/seen machinery shared by contacts and conversations (see module docstring)."""

    path = ""
    list_key = ""

    def __init__(self, ctx: StreamContext) -> None:
        self.ctx = ctx

    def expand(self, items: list[Any], seen: dict[str, int], keep: tuple[int, int],
               pool: ThreadPoolExecutor | None) -> tuple[Rows, list[Quarantined]]:
        """Map one search page; remember in ``seen`` what was stored with ``keep[0] <= updated_at < keep[1]``."""
        raise NotImplementedError

    def _query(self, since: int, after: str | None) -> dict[str, Any]:
        pagination: dict[str, Any] = {"per_page": self.ctx.per_page}
        if after:
            pagination["starting_after"] = after
        return {
            "query": {"operator": "AND", "value": [{"field": "updated_at", "operator": ">", "value": since}]},
            "pagination": pagination,
            "sort": {"field": "updated_at", "order": "ascending"},
        }

    def pages(self, cursor: Any | None) -> Iterator[Page]:
        state = dict(cursor) if isinstance(cursor, Mapping) else {}
        seen: dict[str, int] = {str(k): int(v) for k, v in (state.get("seen") or {}).items()}
        if "signpost" in state:  # resuming a run that stopped after a committed page
            watermark, signpost = int(state["watermark"]), int(state["signpost"])
            after = state.get("starting_after")
        else:
            watermark = int(state.get("watermark", self.ctx.start_time))
            signpost = int(self.ctx.clock()) - self.ctx.safety_margin_s
            after = None
        since = max(watermark - 1, 0)  # covers updated_at >= watermark whether '>' is inclusive or strict
        keep_from = signpost - 1  # records at or after this are re-matched by the next run: remember them
        resumed = after is not None
        pool_cm: ThreadPoolExecutor | _NoPool = _NoPool()
        if self.ctx.workers > 1:
            pool_cm = ThreadPoolExecutor(max_workers=self.ctx.workers, thread_name_prefix=f"intercom-{self.name}")
        with pool_cm as pool:
            while True:
                # A version younger than the margin may be followed by another edit in the same second (same
                # updated_at): never trust such a version for dedup, so the next run reads it again.
                trusted_before = int(self.ctx.clock()) - self.ctx.safety_margin_s
                try:
                    resp = self.ctx.http.request("POST", self.path, json=self._query(since, after))
                except (SkippableAPIError, FatalAPIError) as exc:
                    if not resumed or isinstance(exc, AuthenticationError) or exc.status not in (400, 404, 422):
                        raise
                    logger.info("source %s: %s cursor refused on resume (HTTP %s); restarting the query from "
                                "watermark %d", self.ctx.source, self.name, exc.status, watermark)
                    after, resumed = None, False
                    continue
                resumed = False
                body = _json(resp)
                items = body.get(self.list_key)
                if items is None:
                    items = body.get("data") or []
                records, quarantine = self.expand(list(items), seen, (keep_from, trusted_before),
                                                  pool if isinstance(pool, ThreadPoolExecutor) else None)
                nxt = _next_cursor(body)
                if nxt is not None and nxt == after:
                    raise FatalAPIError(f"source {self.ctx.source}: Intercom returned the same {self.name} "
                                        "search cursor twice (pagination loop)")
                if nxt is None:
                    done_seen = {k: v for k, v in seen.items() if v >= keep_from}
                    yield Page(records, {"watermark": signpost, "seen": done_seen}, quarantine, done=True)
                    return
                yield Page(records, {"watermark": watermark, "signpost": signpost, "starting_after": nxt,
                                     "seen": dict(seen)}, quarantine)
                after = nxt


class _NoPool:
    """Stand-in for a thread pool when ``workers <= 1`` (deterministic tests, tiny accounts)."""

    def __enter__(self) -> _NoPool:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _remember(seen: dict[str, int], rid: str, updated: int, keep: tuple[int, int]) -> None:
    if keep[0] <= updated < keep[1]:
        seen[rid] = updated
    else:
        seen.pop(rid, None)


def _next_cursor(body: Mapping[str, Any]) -> str | None:
    pages = body.get("pages")
    nxt = pages.get("next") if isinstance(pages, Mapping) else None
    if isinstance(nxt, Mapping):
        value = nxt.get("starting_after")
        return str(value) if value else None
    return None


class ContactsStream(_SearchStream):
    """``POST /contacts/search`` -> customer people (users and leads); feeds the contact -> company map."""

    name = "contacts"
    path, list_key = "/contacts/search", "data"

    def expand(self, items: list[Any], seen: dict[str, int], keep: tuple[int, int],
               pool: ThreadPoolExecutor | None) -> tuple[Rows, list[Quarantined]]:
        rows, quarantine = [], []
        for item in items:
            try:
                cid, updated = parse_list_item(item)
                row = map_contact(item)
            except MAPPING_ERRORS as exc:
                rid = id_str(item.get("id")) if isinstance(item, Mapping) else None
                quarantine.append(Quarantined(self.name, rid, str(exc), item))
                continue
            self.ctx.companies.learn(cid, row["organization_id"])
            if seen.get(cid) == updated:
                continue
            rows.append(row)
            _remember(seen, cid, updated, keep)
        return {"people": rows}, quarantine


class ConversationsStream(_SearchStream):
    """``POST /conversations/search`` then ``GET /conversations/{id}`` for each changed one (parts are only
    on the GET). A page's tickets, messages, events and ratings are emitted together, so a ticket is never
    stored without its messages. A conversation gone (404) between search and GET is skipped."""

    name = "conversations"
    path, list_key = "/conversations/search", "conversations"

    def expand(self, items: list[Any], seen: dict[str, int], keep: tuple[int, int],
               pool: ThreadPoolExecutor | None) -> tuple[Rows, list[Quarantined]]:
        quarantine: list[Quarantined] = []
        todo: list[str] = []
        for item in items:
            try:
                cid, updated = parse_list_item(item)
            except MAPPING_ERRORS as exc:
                rid = id_str(item.get("id")) if isinstance(item, Mapping) else None
                quarantine.append(Quarantined(self.name, rid, str(exc), item))
                continue
            if seen.get(cid) != updated and cid not in todo:
                todo.append(cid)
        results = list(pool.map(self._fetch, todo)) if pool is not None and len(todo) > 1 \
            else [self._fetch(cid) for cid in todo]
        records: Rows = {"tickets": [], "messages": [], "ticket_events": [], "ratings": [], "time_entries": []}
        for cid, outcome in zip(todo, results, strict=True):
            if outcome is None:
                continue
            if isinstance(outcome, Quarantined):
                quarantine.append(outcome)
                continue
            rows, updated = outcome
            _merge(records, rows)
            _remember(seen, cid, updated, keep)
        return records, quarantine

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
            return Quarantined(self.name, cid, "conversation is not a JSON object", conv)
        try:
            org = self.ctx.companies.resolve(requester_of(conv))
            rows, truncated = map_conversation(conv, organization_id=org, synced_at=int(self.ctx.clock()))
            updated = int(rows["tickets"][0]["updated_at"])
        except MAPPING_ERRORS as exc:
            return Quarantined(self.name, cid, str(exc), conv)
        if truncated:
            logger.warning("source %s: conversation %s has more parts than Intercom returns (500 most recent); "
                           "older parts not stored by an earlier sync are missing", self.ctx.source, cid)
        return rows, updated
