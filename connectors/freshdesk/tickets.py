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

Where a pass ends (DESIGN.md sync contract 2, API-NOTES 6.4): the listing is not a snapshot. A ticket
can show up in it after a run has passed its ``updated_at`` (an index that lags the write, a clock that
disagrees), so the bookmark a finished pass stores is ``max(where the pass began, min(newest updated_at
stored, pass start) - lookback)`` (``connectors.base.time_bookmark``, the source's ``lookback``), never the
newest value alone. The next run re-lists that window; what it already stored unchanged is recognised by
``seen`` (id -> updated_at, bounded to ``MAX_SEEN`` newest entries) and neither re-emitted nor has its
conversations fetched again, so the overlap costs one listing, not a re-sync; a late arrival (not in
``seen``) is read like any other ticket.

Cursor while a pass runs: ``{"updated_since": ISO, "seen": {id: epoch at or after it}, "pass_from": ISO,
"pass_started": ISO}``; resuming from it is the same request the run would have made next, so a crash
after any page loses nothing, and the pass (even across runs) ends with the bookmark a clean pass would
store. A finished pass stores ``{"updated_since": bookmark, "seen": {...}}``. Every cursor also carries
``history_partial_before`` (ISO): the start of the first pass. Freshdesk archives closed tickets after a
period of inactivity and the API lists no archived ticket (API-NOTES 6.3), so history before the first
sync may be incomplete; ``deskpulse status`` and the volume KPIs read this marker. Without a cursor the
listing starts at ``start_time`` (epoch 0 by default): without ``updated_since`` Freshdesk would list only
the last 30 days. (A cursor of the older ``{"updated_since", "seen_ids"}`` shape still loads.)

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

from connectors.base import Page, Quarantined, Stream, time_bookmark
from connectors.errors import FatalAPIError, ParseError, SkippableAPIError
from connectors.freshdesk.mapping import (
    is_merge_note,
    looks_merged,
    map_conversation,
    map_description,
    map_requester,
    map_ticket,
)
from connectors.freshdesk.streams import CLOCK_SKEW_S, ListContext
from connectors.http import in_current_context
from connectors.mapping import MAPPING_ERRORS, Rows, not_an_object, quarantined
from connectors.normalize import id_str, to_epoch, to_iso

logger = logging.getLogger("deskpulse.connectors.freshdesk")

TICKETS_PATH = "/api/v2/tickets"
INCLUDE = "stats,requester,description"
CONVERSATIONS_PER_PAGE = 100
STATS_COLUMNS = ("solved_at", "vendor_first_reply_s", "vendor_reopens", "vendor_metrics")
OVERLAP_S = 1  # request updated_since one second early: correct whether Freshdesk compares >= or >
MAX_SEEN = 5000  # ids remembered for the lookback window; beyond it the oldest are simply re-read (upserts)


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
        state = _PassState.load(cursor, self.ctx.start_time, int(self.ctx.clock()), self.ctx.lookback_s)
        started = state.run_started
        agents = self.ctx.known_agents() if self.with_conversations else set()
        page_no = 1
        pool = ThreadPoolExecutor(self.ctx.workers, thread_name_prefix=f"fd-{self.ctx.source}") \
            if self.with_conversations else None
        with pool if pool is not None else nullcontext():
            while True:
                since = state.since
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
                    state.advance(since + 1)
                    page_no = 1
                    yield Page({}, state.cursor(), done=False)
                    continue
                rows, bad, fresh, page_newest = self._map_page(records, state)
                if fresh and pool is not None:  # a pool exactly when conversations are wanted
                    self._add_conversations(pool, fresh, agents, rows, bad)
                done = nxt is None or not records
                if page_newest is not None and page_newest > since:
                    state.advance(page_newest)
                    page_no = 1
                else:
                    page_no += 1
                    if not done and page_no > self.ctx.max_pages:
                        logger.warning("source %s: more than %d pages of tickets share updated_at %s; the rest "
                                       "of that second cannot be listed", self.ctx.source, self.ctx.max_pages,
                                       to_iso(since))
                        state.advance(since + 1)
                        page_no = 1
                if not done and state.since > started + CLOCK_SKEW_S:
                    done = True  # changes made after this run started are the next run's work
                if done:
                    yield Page(rows, state.finished(), bad, done=True)
                    return
                yield Page(rows, state.cursor(), bad)

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

    def _full_listing(self) -> Iterator[Page]:
        """Fallback for a filter that refuses ``updated_since``: the whole filtered listing, every run."""
        params = {"filter": self.filter, "order_by": "updated_at", "order_type": "asc"}
        for records, last in self.ctx.walk(TICKETS_PATH, params):
            rows, bad, _fresh, _newest = self._map_page(records, None)
            yield Page(rows, {"full": True}, bad, done=last)

    # -- one page -----------------------------------------------------------------------------------
    def _map_page(self, records: list[Any], state: _PassState | None,
                  ) -> tuple[Rows, list[Quarantined], list[tuple[str, str | None]], int | None]:
        """Rows of the tickets not stored yet, and the newest ``updated_at`` on the page (None: none readable).

        A ticket is skipped when it is older than the keyset position or ``seen`` holds it with the same
        ``updated_at`` (stored by an earlier page or run, unchanged since). Every ticket read is noted in
        ``state`` (``None``: the full-listing fallback, which skips nothing).
        """
        rows: Rows = {"tickets": []}
        if self.with_conversations:
            rows.update(messages=[], people=[])
        bad: list[Quarantined] = []
        fresh: list[tuple[str, str | None]] = []
        page_newest: int | None = None
        for record in records:
            if not isinstance(record, Mapping):
                bad.append(quarantined(self.name, record, not_an_object(record)))
                continue
            ticket_id = id_str(record.get("id"))
            try:
                updated = to_epoch(record.get("updated_at"))
            except ParseError:
                updated = None
            if updated is not None and ticket_id is not None and state is not None:
                page_newest = updated if page_newest is None else max(page_newest, updated)
                if updated < state.since or state.seen.get(ticket_id) == updated:
                    continue  # stored by an earlier page or run, unchanged since
                state.saw(ticket_id, updated)
            try:
                row = map_ticket(record, deleted=self.filter == "deleted", spam=self.filter == "spam")
                extra = self._extras(record) if self.with_conversations else None
            except MAPPING_ERRORS as exc:
                bad.append(quarantined(self.name, record, exc, ticket_id))
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
        return rows, bad, fresh, page_newest

    @staticmethod
    def _extras(record: Mapping[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        return map_description(record), map_requester(record.get("requester"))

    # -- conversations ------------------------------------------------------------------------------
    def _add_conversations(self, pool: ThreadPoolExecutor, fresh: list[tuple[str, str | None]], agents: set[str],
                           rows: Rows, bad: list[Quarantined]) -> None:
        """Every changed ticket's conversations, fetched a few at a time, into this same page."""
        tickets = {row["id"]: row for row in rows["tickets"]}
        fetch = in_current_context(self._conversations)  # the pool's threads count under this stream too
        results = pool.map(lambda item: fetch(item[0], item[1], agents), fresh)
        for (ticket_id, _requester), result in zip(fresh, results, strict=True):
            if result is None:
                continue
            messages, broken = result
            rows["messages"].extend(messages)
            bad.extend(broken)
            if any(is_merge_note(m) for m in messages) or looks_merged(tickets[ticket_id], messages):
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
                            raise not_an_object(conv)
                        messages.append(map_conversation(conv, ticket_id=ticket_id, requester_id=requester_id,
                                                         agent_ids=agents))
                    except MAPPING_ERRORS as exc:
                        broken.append(quarantined("conversations", conv, exc))
        except SkippableAPIError as exc:
            if exc.status != 404:
                raise
            logger.info("source %s: ticket %s is gone; its conversations are skipped", self.ctx.source, ticket_id)
            return None
        return messages, broken


class _PassState:
    """Where one pass over the listing stands: keyset position, what it read, and how it began.

    ``seen`` maps ids to the ``updated_at`` stored for them, from ``bookmark()`` on: older entries can no
    longer fall inside the bookmark a finished pass stores, so memory stays bounded by the lookback window.
    """

    def __init__(self, since: int, seen: dict[str, int], pass_from: int, pass_started: int, run_started: int,
                 lookback_s: int, partial_before: str | None) -> None:
        self.since, self.seen, self.pass_from = since, seen, pass_from
        self.pass_started, self.run_started, self.lookback_s = pass_started, run_started, lookback_s
        self.partial_before = partial_before or to_iso(run_started)
        # resuming a pass that a crash interrupted: its keyset position is the newest it had stored
        self.newest: int | None = since if since > pass_from else None

    @classmethod
    def load(cls, cursor: Any | None, start_time: int, now: int, lookback_s: int) -> _PassState:
        if isinstance(cursor, Mapping) and cursor.get("updated_since"):
            since = to_epoch(cursor["updated_since"])
            if since is not None:
                seen: dict[str, int] = {}
                raw_seen = cursor.get("seen")
                if isinstance(raw_seen, Mapping):
                    seen = {str(k): v for k, v in raw_seen.items() if isinstance(v, int)}
                for legacy in cursor.get("seen_ids") or ():  # the cursor shape from before the lookback
                    seen[str(legacy)] = since
                pass_from = to_epoch(cursor["pass_from"]) if cursor.get("pass_from") else since
                pass_started = to_epoch(cursor["pass_started"]) if cursor.get("pass_started") else now
                return cls(since, seen, pass_from if pass_from is not None else since,
                           min(pass_started if pass_started is not None else now, now), now, lookback_s,
                           cursor.get("history_partial_before"))
        return cls(start_time, {}, start_time, now, now, lookback_s, None)

    def saw(self, ticket_id: str, updated: int) -> None:
        self.seen[ticket_id] = updated
        self.newest = updated if self.newest is None else max(self.newest, updated)

    def advance(self, since: int) -> None:
        """Move the keyset position; forget what can no longer fall inside the final bookmark's window."""
        self.since = since
        floor = self.bookmark()
        if any(v < floor for v in self.seen.values()):
            self.seen = {k: v for k, v in self.seen.items() if v >= floor}

    def bookmark(self) -> int:
        """``max(pass start point, min(newest stored, pass start) - lookback)``; the start point if none stored.

        Never past what was stored, and never walking back run after run. The value only grows as the pass
        reads on, so it is also the floor below which ``seen`` can be forgotten.
        """
        if self.newest is None:
            return self.pass_from
        return max(self.pass_from, time_bookmark(self.newest, self.pass_started, self.lookback_s))

    def cursor(self) -> dict[str, Any]:
        return {"updated_since": to_iso(self.since),
                "seen": {k: v for k, v in sorted(self.seen.items()) if v >= self.since},
                "pass_from": to_iso(self.pass_from), "pass_started": to_iso(self.pass_started),
                "history_partial_before": self.partial_before}

    def finished(self) -> dict[str, Any]:
        """The cursor a finished pass stores: the bookmark, and what of its window is stored already."""
        bookmark = self.bookmark()
        window = sorted(((v, k) for k, v in self.seen.items() if v >= bookmark), reverse=True)[:MAX_SEEN]
        return {"updated_since": to_iso(bookmark), "seen": dict(sorted((k, v) for v, k in window)),
                "history_partial_before": self.partial_before}
