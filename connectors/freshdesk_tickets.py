"""The Freshdesk ticket streams: keyset paging over ``updated_since``, conversations in the same page.

Why not just follow ``Link: rel="next"`` through ``page=1..300``? Offset paging over
data that changes while we read it loses records: when a ticket we already read
is updated mid-listing it jumps to the end, every later ticket shifts one slot
forward, and the one at the next page boundary is never served (it is not
changed, so no later run sees it either). A busy account's initial sync takes
long enough for that to happen many times. So every page is requested as
``page=1`` of ``updated_since=<newest updated_at read so far>`` (order
``updated_at asc``): a ticket moving to the end can then only be read twice,
never skipped, and Freshdesk's 300-page cap is never reached. ``updated_since`` is
inclusive (Airbyte's restart-at-the-cap produces boundary duplicates), so each
request re-serves the tickets sharing the boundary second; the cursor lists their
ids (``seen_ids``) and they are skipped, without their conversations being fetched
again. In case an account compares exclusively, requests ask for one second
earlier than the cursor (``OVERLAP_S``); tickets older than the cursor are skipped
too, so either reading gives the same rows. Only when a whole page shares one second
(a bulk update wider than a page) do we follow ``page=2, 3, ...`` of that same
``updated_since``; at the page cap (Freshdesk's 400, or an empty page, both
tolerated) the rest of that one-second group cannot be listed, which is logged,
and the listing moves on to the next second. (Inside such a group the paging is by
offset again, so a member updated while the group is walked can shift another out
of it: the one case keyset paging cannot cover, and only for groups wider than a page.)

Cursor: ``{"updated_since": ISO, "seen_ids": [ids stored with exactly that updated_at]}``. Resuming
from it is the same request the run would have made next, so a crash after any page loses nothing.
Without a cursor the listing starts at ``start_time`` (epoch 0 by default): without ``updated_since``
Freshdesk would list only the last 30 days.

The ``filter=deleted`` and ``filter=spam`` passes use the same machinery without conversations. If
the account refuses ``updated_since`` together with a filter (400), the pass reads the full filtered
listing instead (cursor ``{"full": true}``); upserts by id make the repetition harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import Any
from urllib.parse import quote

from connectors.base import Page, Quarantined, Stream
from connectors.errors import FatalAPIError, ParseError, SkippableAPIError
from connectors.freshdesk_map import (
    is_merge_note,
    map_conversation,
    map_description,
    map_requester,
    map_ticket,
)
from connectors.freshdesk_streams import CLOCK_SKEW_S, RECORD_ERRORS, ListContext, Rows
from connectors.normalize import id_str, to_epoch, to_iso

logger = logging.getLogger("deskpulse.connectors.freshdesk")

TICKETS_PATH = "/api/v2/tickets"
INCLUDE = "stats,requester,description"
CONVERSATIONS_PER_PAGE = 100
STATS_COLUMNS = ("solved_at", "vendor_first_reply_s", "vendor_reopens", "vendor_metrics")
OVERLAP_S = 1  # request updated_since one second early: correct whether Freshdesk compares >= or >


class TicketStream(Stream):
    """``tickets`` (with conversations), or a ``filter=deleted``/``filter=spam`` pass (``deleted_tickets``...)."""

    def __init__(self, ctx: ListContext, name: str, *, filter_: str | None = None) -> None:
        self.ctx = ctx
        self.name = name
        self.filter = filter_
        self.with_conversations = filter_ is None

    # -- the listing --------------------------------------------------------------------------------
    def pages(self, cursor: Any | None) -> Iterator[Page]:
        if isinstance(cursor, Mapping) and cursor.get("full"):
            yield from self._full_listing()
            return
        since, seen = self._load(cursor)
        started = int(self.ctx.clock())
        agents = self.ctx.known_agents() if self.with_conversations else set()
        page_no = 1
        pool = ThreadPoolExecutor(self.ctx.workers, thread_name_prefix=f"fd-{self.ctx.source}") \
            if self.with_conversations else nullcontext()
        with pool:
            while True:
                try:
                    records, nxt = self.ctx.get_page(TICKETS_PATH, self._params(since, page_no))
                except FatalAPIError as exc:
                    if exc.status != 400:
                        raise
                    if page_no > 1:  # the page cap inside a one-second group wider than a page
                        records, nxt = [], None
                    elif self.filter is not None:
                        logger.warning("source %s: filter=%s refused updated_since (%s); reading the full "
                                       "filtered listing", self.ctx.source, self.filter, exc)
                        yield from self._full_listing()
                        return
                    else:
                        raise
                if not records and page_no > 1:
                    logger.warning("source %s: page %d of the tickets sharing updated_at %s came back empty or "
                                   "refused (page cap); the rest of that second cannot be listed", self.ctx.source,
                                   page_no, to_iso(since))
                    since, seen, page_no = since + 1, set(), 1
                    yield Page({}, self._cursor(since, seen))
                    continue
                rows, bad, fresh, newest, at_newest = self._map_page(records, since, seen)
                if fresh and self.with_conversations:
                    self._add_conversations(pool, fresh, agents, rows, bad)  # type: ignore[arg-type]
                done = nxt is None or not records
                if newest > since:
                    since, seen, page_no = newest, at_newest, 1
                else:
                    seen, page_no = seen | at_newest, page_no + 1
                    if not done and page_no > self.ctx.max_pages:
                        logger.warning("source %s: more than %d pages of tickets share updated_at %s; the rest "
                                       "of that second cannot be listed", self.ctx.source, self.ctx.max_pages,
                                       to_iso(since))
                        since, seen, page_no = since + 1, set(), 1
                if not done and since > started + CLOCK_SKEW_S:
                    done = True  # changes made after this run started are the next run's work
                yield Page(rows, self._cursor(since, seen), bad, done=done)
                if done:
                    return

    def _params(self, since: int, page_no: int) -> dict[str, Any]:
        params: dict[str, Any] = {"updated_since": to_iso(max(0, since - OVERLAP_S)), "order_by": "updated_at",
                                  "order_type": "asc",
                                  "per_page": self.ctx.per_page}
        if page_no > 1:
            params["page"] = page_no
        if self.filter is not None:
            params["filter"] = self.filter
        else:
            params["include"] = INCLUDE
        return params

    def _load(self, cursor: Any | None) -> tuple[int, set[str]]:
        if isinstance(cursor, Mapping) and cursor.get("updated_since"):
            since = to_epoch(cursor["updated_since"])
            if since is not None:
                return since, {str(i) for i in cursor.get("seen_ids") or ()}
        return self.ctx.start_time, set()

    @staticmethod
    def _cursor(since: int, seen: set[str]) -> dict[str, Any]:
        return {"updated_since": to_iso(since), "seen_ids": sorted(seen, key=lambda i: (len(i), i))}

    def _full_listing(self) -> Iterator[Page]:
        """Fallback for a filter that refuses ``updated_since``: the whole filtered listing, every run."""
        params = {"filter": self.filter, "order_by": "updated_at", "order_type": "asc"}
        for records, last in self.ctx.walk(TICKETS_PATH, params):
            rows, bad, _fresh, _newest, _at = self._map_page(records, -1, set())
            yield Page(rows, {"full": True}, bad, done=last)

    # -- one page -----------------------------------------------------------------------------------
    def _map_page(self, records: list[Any], since: int, seen: set[str],
                  ) -> tuple[Rows, list[Quarantined], list[tuple[str, str | None]], int, set[str]]:
        """Rows of the tickets not stored yet, plus (newest updated_at on the page, ids at it)."""
        rows: Rows = {"tickets": []}
        if self.with_conversations:
            rows.update(messages=[], people=[])
        bad: list[Quarantined] = []
        fresh: list[tuple[str, str | None]] = []
        newest, at_newest = since, set()
        for record in records:
            if not isinstance(record, Mapping):
                bad.append(Quarantined(self.name, None, "ParseError: record is not an object", record))
                continue
            ticket_id = id_str(record.get("id"))
            try:
                updated = to_epoch(record.get("updated_at"))
            except ParseError:
                updated = None
            if updated is not None and ticket_id is not None:
                if updated < since or (updated == since and ticket_id in seen):
                    continue  # stored by an earlier page or run
                if updated > newest:
                    newest, at_newest = updated, {ticket_id}
                elif updated == newest:
                    at_newest.add(ticket_id)
            try:
                row = map_ticket(record, deleted=self.filter == "deleted", spam=self.filter == "spam")
                extra = self._extras(record) if self.with_conversations else None
            except RECORD_ERRORS as exc:
                bad.append(Quarantined(self.name, ticket_id, f"{type(exc).__name__}: {exc}", record))
                continue
            if "stats" not in record:  # a listing without include=stats must not erase what one with it stored
                for column in STATS_COLUMNS:
                    row.pop(column, None)
            rows["tickets"].append(row)
            if extra is not None:
                description, requester = extra
                if description is not None:
                    rows["messages"].append(description)
                if requester is not None:
                    rows["people"].append(requester)
                fresh.append((row["id"], row["requester_id"]))
        return rows, bad, fresh, newest, at_newest

    @staticmethod
    def _extras(record: Mapping[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        return map_description(record), map_requester(record.get("requester"))

    # -- conversations ------------------------------------------------------------------------------
    def _add_conversations(self, pool: ThreadPoolExecutor, fresh: list[tuple[str, str | None]], agents: set[str],
                           rows: Rows, bad: list[Quarantined]) -> None:
        """Every changed ticket's conversations, fetched a few at a time, into this same page."""
        tickets = {row["id"]: row for row in rows["tickets"]}
        results = pool.map(lambda item: self._conversations(item[0], item[1], agents), fresh)
        for (ticket_id, _requester), result in zip(fresh, results, strict=True):
            if result is None:
                continue
            messages, broken = result
            rows["messages"].extend(messages)
            bad.extend(broken)
            if any(is_merge_note(m) for m in messages):
                tickets[ticket_id]["is_merged"] = 1

    def _conversations(self, ticket_id: str, requester_id: str | None, agents: set[str],
                       ) -> tuple[list[dict[str, Any]], list[Quarantined]] | None:
        """One ticket's conversations; None when the ticket is gone (deleted since it was listed)."""
        messages: list[dict[str, Any]] = []
        broken: list[Quarantined] = []
        path = f"{TICKETS_PATH}/{quote(ticket_id, safe='')}/conversations"
        try:
            for records, _last in self.ctx.walk(path, {}, per_page=CONVERSATIONS_PER_PAGE):
                for conv in records:
                    try:
                        if not isinstance(conv, Mapping):
                            raise ParseError("conversation is not an object")
                        messages.append(map_conversation(conv, ticket_id=ticket_id, requester_id=requester_id,
                                                         agent_ids=agents))
                    except RECORD_ERRORS as exc:
                        conv_id = id_str(conv.get("id")) if isinstance(conv, Mapping) else None
                        broken.append(Quarantined("conversations", conv_id, f"{type(exc).__name__}: {exc}", conv))
        except SkippableAPIError as exc:
            if exc.status != 404:
                raise
            logger.info("source %s: ticket %s is gone; its conversations are skipped", self.ctx.source, ticket_id)
            return None
        return messages, broken
