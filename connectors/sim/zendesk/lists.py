"""List endpoints of the Zendesk simulator (mixed into ``ZendeskSim``): ratings, ticket fields, groups.

Zendesk list pagination comes in two dialects (API-NOTES.md 1.2): cursor
(``page[size]`` <= 100, ``page[after]``; ``meta.has_more``/``after_cursor``,
``links.next``) and, when neither parameter is sent, the older offset pages
(``next_page``/``previous_page``/``count``). Both are served; ``page[size]``
above 100 is a 400 ``InvalidPaginationParameter``.

Satisfaction ratings (legacy CSAT only: the Satisfaction Ratings API page says
its endpoints are for the legacy CSAT feature and only one CSAT option can be
active) hold one record per offered survey: ``offered`` until the customer
answers, then the score, ``updated_at`` moving to the answer (API-NOTES 6.2).
They are sorted by ``(created_at, id)`` and filtered by ``start_time``
(inclusive), ``end_time`` (exclusive) and ``score`` (the OAS list: offered,
unoffered, received, good, bad, each ``_with_comment``/``_without_comment``).
Zendesk documents the time filters only as "time of the oldest/most recent
satisfaction rating"; the simulator compares them with ``created_at`` (the
offer), the reading under which a late answer is easiest to lose (UNCONFIRMED).
An account on the newer CSAT (``csat="new"``) gets an empty listing here, an
account without CSAT (``csat="off"``) a 403; which of the two Zendesk really
answers for the newer CSAT is UNCONFIRMED. The neutral world's 1-5 score becomes
Zendesk's binary one as documented in ``render.csat_score`` (3 is
``good`` for even rating ids, ``bad`` for odd).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from connectors.sim.base import SimRequest, SimResponse
from connectors.sim.model import Ticket, World
from connectors.sim.zendesk.render import (
    SYSTEM_FIELDS,
    TIME_FIELD_ID,
    csat_score,
    iso,
    rating_record_id,
    render_rating,
    survey_offered_at,
)

LIST_PAGE_MAX = 100


class ZendeskLists:
    """List endpoints; ``ZendeskSim`` provides the state declared here."""

    world: World
    lock: threading.RLock
    csat: str = "legacy"  # "legacy" | "new" (empty listing) | "off" (403): see the module notes
    ratings_version: int = 0  # bumped by writes that change a rating (the index is rebuilt)
    # (ticket count, ratings_version) it was built for, the (offered_at, record id) keys, the rated tickets
    _ratings_cache: tuple[tuple[int, int], list[tuple[int, int]], list[Ticket]] | None = None

    def _base(self) -> str:  # provided by ZendeskSim
        raise NotImplementedError

    @staticmethod
    def _int_arg(req: SimRequest, name: str, default: int | None = None) -> int | None:  # provided by ZendeskSim
        raise NotImplementedError

    # -- lists ---------------------------------------------------------------------------------------------
    def _list_page(self, req: SimRequest, name: str, keys: list[tuple[int, int]], render: Callable[[int], Any],
                   match: Callable[[int], bool] | None = None, lo: int = 0, hi: int | None = None) -> SimResponse:
        """One page of ``keys[lo:hi]`` (sorted) that ``match``; only the items on the page are rendered."""
        hi = len(keys) if hi is None else hi
        size_arg, after_arg = req.arg("page[size]"), req.arg("page[after]")
        if size_arg is None and after_arg is None:
            per_page = min(self._int_arg(req, "per_page", LIST_PAGE_MAX) or LIST_PAGE_MAX, LIST_PAGE_MAX)
            page = max(1, self._int_arg(req, "page", 1) or 1)
            hits = [i for i in range(lo, hi) if match is None or match(i)]
            chunk = hits[(page - 1) * per_page: page * per_page]
            link = f"{self._base()}{req.path}?"
            return SimResponse.json({
                name: [render(i) for i in chunk], "count": len(hits),
                "next_page": link + urlencode({"page": page + 1, "per_page": per_page})
                if page * per_page < len(hits) else None,
                "previous_page": link + urlencode({"page": page - 1, "per_page": per_page}) if page > 1 else None})
        size = self._int_arg(req, "page[size]", LIST_PAGE_MAX) or LIST_PAGE_MAX
        if size < 1 or size > LIST_PAGE_MAX:
            return SimResponse.json({"error": "InvalidPaginationParameter",
                                     "description": f"page[size] must be between 1 and {LIST_PAGE_MAX}"}, 400)
        i = lo
        if after_arg:
            try:
                after = tuple(json.loads(base64.urlsafe_b64decode(after_arg + "=" * (-len(after_arg) % 4))))
            except (ValueError, binascii.Error):
                return SimResponse.json({"error": "InvalidPaginationParameter", "description": "invalid cursor"}, 400)
            i = max(lo, bisect.bisect_right(keys, after))
        chunk = []
        has_more = False
        while i < hi:
            if match is None or match(i):
                if len(chunk) == size:
                    has_more = True
                    break
                chunk.append(i)
            i += 1

        def token(key: tuple[int, int]) -> str:
            return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")

        after_cursor = token(keys[chunk[-1]]) if chunk else None
        query = {k: v[0] for k, v in req.query.items() if k != "page[after]"}
        nxt = f"{self._base()}{req.path}?{urlencode({**query, 'page[after]': after_cursor})}" if has_more else None
        return SimResponse.json({name: [render(i) for i in chunk],
                                 "meta": {"has_more": has_more, "after_cursor": after_cursor,
                                          "before_cursor": token(keys[chunk[0]]) if chunk else None},
                                 "links": {"next": nxt, "prev": None}})

    def _ratings_index(self) -> tuple[list[tuple[int, int]], list[Ticket]]:
        """Rating records sorted by (created_at = offer, record id); rebuilt when tickets or ratings changed.

        Only surveys offered by the world's ``now`` exist (the world is generated up to then).
        """
        cached = self._ratings_cache
        stamp = (len(self.world.tickets), self.ratings_version)
        if cached is None or cached[0] != stamp:
            now = self.world.now
            records: list[tuple[int, int, Ticket]] = []
            for t in self.world.tickets:
                offered = survey_offered_at(t)
                if offered is not None and offered <= now:
                    records.append((offered, rating_record_id(t), t))
            records.sort(key=lambda rec: (rec[0], rec[1], rec[2].id))
            cached = (stamp, [(c, r) for c, r, _ in records], [t for _, _, t in records])
            self._ratings_cache = cached
        return cached[1], cached[2]

    @staticmethod
    def _score_match(score: str, ticket: Ticket) -> bool:
        """Zendesk's ``score`` filter: a state (offered/received/good/bad), optionally ``_with[out]_comment``."""
        if not score:
            return True
        if score == "unoffered":
            return False  # every listed record was offered
        rating = ticket.rating
        base, _, comment = score.partition("_with")
        if base == "offered":
            return rating is None
        if rating is None or base not in ("received", "good", "bad"):
            return False
        if base != "received" and csat_score(rating) != base:
            return False
        if comment == "_comment":
            return bool(rating.comment)
        if comment == "out_comment":
            return not rating.comment
        return True

    def _ratings(self, req: SimRequest) -> SimResponse:
        if self.csat == "off":  # CSAT not enabled for the account (the project's 403 reading, API-NOTES 1.4)
            return SimResponse.json({"error": "Forbidden", "description": "Customer satisfaction is not enabled"},
                                    403)
        start = self._int_arg(req, "start_time")
        end = self._int_arg(req, "end_time")
        score = (req.arg("score") or "").lower()
        with self.lock:
            keys, tickets = self._ratings_index()
            if self.csat == "new":  # legacy endpoint on an account using the newer CSAT: nothing to list
                keys, tickets = [], []
            lo = 0 if start is None else bisect.bisect_left(keys, (start, 0))
            hi = len(keys) if end is None else bisect.bisect_left(keys, (end, 0))
            base = self._base()

            def match(i: int) -> bool:
                return self._score_match(score, tickets[i])

            return self._list_page(req, "satisfaction_ratings", keys, lambda i: render_rating(tickets[i], base),
                                   match, lo, hi)

    def _small_list(self, req: SimRequest, name: str, items: list[dict[str, Any]]) -> SimResponse:
        items = sorted(items, key=lambda d: d["id"])
        return self._list_page(req, name, [(d["id"], 0) for d in items], lambda i: items[i])

    def _fields(self, req: SimRequest) -> SimResponse:
        return self._small_list(req, "ticket_fields", ticket_fields(self.world, self._base()))

    def _groups(self, req: SimRequest) -> SimResponse:
        base = self._base()
        created = min((p.created_at for p in self.world.people), default=self.world.now)
        return self._small_list(req, "groups", [
            {"url": f"{base}/api/v2/groups/{g.id}.json", "id": g.id, "name": g.name,
             "description": "Escalations" if g.escalation else "", "default": i == 0, "deleted": False,
             "is_public": True, "created_at": iso(created), "updated_at": iso(created)}
            for i, g in enumerate(self.world.groups)])


def ticket_fields(world: World, base: str) -> list[dict[str, Any]]:
    """System fields first (Zendesk lists them too), then the world's custom fields and time tracking."""
    out = [{"id": fid, "url": f"{base}/api/v2/ticket_fields/{fid}.json", "type": kind, "title": title,
            "raw_title": title, "active": True, "required": kind == "subject", "removable": False}
           for fid, kind, title in SYSTEM_FIELDS]
    for f in world.fields:
        out.append({"id": f.id, "url": f"{base}/api/v2/ticket_fields/{f.id}.json", "type": f.type, "title": f.name,
                    "raw_title": f.name, "active": True, "required": False, "removable": True})
    out.append({"id": TIME_FIELD_ID, "url": f"{base}/api/v2/ticket_fields/{TIME_FIELD_ID}.json", "type": "integer",
                "title": "Total time spent (sec)", "raw_title": "Total time spent (sec)", "active": True,
                "required": False, "removable": True})
    return out
