"""Pre-sorted indexes behind the Freshdesk simulator's listings, so a request costs what its page costs.

Tickets are kept per listing (``main``: the default listing; ``deleted``;
``spam``) as sorted ``(updated_at, id)`` and ``(created_at, id)`` keys. The
connector's request (``updated_since`` + ``order_by=updated_at``) is a bisect and a
slice; other orders (the 30-day default window, ``order_by=created_at``) sort just
the matching tickets. Writes and ``touch`` re-key one ticket.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable
from typing import Any

from connectors.sim.model import Ticket, World

NUMBER_TYPES = ("number", "integer")

LIST_PARAMS = ("per_page", "page")
CATEGORIES = ("main", "deleted", "spam")
_STATUS_ORDER = {"new": 2, "open": 2, "pending": 3, "on_hold": 7, "solved": 4, "closed": 5}


def ticket_category(tk: Ticket) -> str:
    """Which listing serves a ticket: the trash first, then spam, else the default listing."""
    if tk.deleted:
        return "deleted"
    if tk.spam:
        return "spam"
    return "main"


def _sort_key(order_by: str) -> Callable[[Ticket], tuple[int, int]]:
    if order_by == "updated_at":
        return lambda t: (t.updated_at, t.id)
    if order_by == "status":
        return lambda t: (_STATUS_ORDER.get(t.status, 2), t.id)
    return lambda t: (t.created_at, t.id)  # created_at, and due_by (a fixed offset from created_at here)


class Listing:
    """A static listing sorted by a key whose first element is the "since" timestamp (or an id)."""

    def __init__(self, items: list[tuple[tuple[int, ...], Any]]) -> None:
        self.keys = [key for key, _ in items]
        self.items = [item for _, item in items]

    def __len__(self) -> int:
        return len(self.items)

    def page(self, since: int | None, page: int, per_page: int) -> tuple[list[Any], bool]:
        start = 0 if since is None else bisect_left(self.keys, (since,))
        lo = start + (page - 1) * per_page
        return self.items[lo:lo + per_page], len(self.items) > lo + per_page


class TicketIndex:
    """Sorted keys per category; callers hold the simulator lock."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.archived: set[int] = set()  # archived tickets are in no listing (API-NOTES 6.3)
        self.by_updated: dict[str, list[tuple[int, int]]] = {c: [] for c in CATEGORIES}
        self.by_created: dict[str, list[tuple[int, int]]] = {c: [] for c in CATEGORIES}
        for tk in world.tickets:
            cat = ticket_category(tk)
            self.by_updated[cat].append((tk.updated_at, tk.id))
            self.by_created[cat].append((tk.created_at, tk.id))
        for cat in CATEGORIES:
            self.by_updated[cat].sort()
            self.by_created[cat].sort()

    def category(self, tk: Ticket) -> str:
        """``archived`` for an archived ticket, else its listing (``ticket_category``)."""
        return "archived" if tk.id in self.archived else ticket_category(tk)

    def archive(self, tk: Ticket) -> None:
        """Take one ticket out of every listing for good (Freshdesk never unarchives)."""
        if tk.id in self.archived:
            return
        cat = self.category(tk)
        _remove(self.by_updated[cat], (tk.updated_at, tk.id))
        _remove(self.by_created[cat], (tk.created_at, tk.id))
        self.archived.add(tk.id)

    def moved(self, tk: Ticket, old_key: tuple[int, int], old_category: str | None = None) -> None:
        """Re-key one ticket after its ``updated_at`` (and maybe its category) changed."""
        if tk.id in self.archived:
            return
        old_cat = old_category or ticket_category(tk)
        new_cat = ticket_category(tk)
        _remove(self.by_updated[old_cat], old_key)
        insort(self.by_updated[new_cat], (tk.updated_at, tk.id))
        if old_cat != new_cat:
            _remove(self.by_created[old_cat], (tk.created_at, tk.id))
            insort(self.by_created[new_cat], (tk.created_at, tk.id))

    def select(self, category: str, *, since: int | None, created_after: int | None, order_by: str,
               descending: bool, page: int, per_page: int, predicate: Callable[[Ticket], bool] | None = None,
               ) -> tuple[list[Ticket], bool]:
        """One page of a ticket listing, and whether more follow."""
        offset = (page - 1) * per_page
        keys = self.by_updated[category]
        start = 0 if since is None else bisect_left(keys, (since,))
        if order_by == "updated_at" and created_after is None and predicate is None:
            total = len(keys) - start
            if descending:
                hi = len(keys) - offset
                chosen = list(reversed(keys[max(start, hi - per_page):max(start, hi)]))
            else:
                chosen = keys[start + offset:start + offset + per_page]
            return [self._get(i) for _, i in chosen], total > offset + per_page
        if created_after is not None:
            created = self.by_created[category]
            candidates = [self._get(i) for _, i in created[bisect_left(created, (created_after,)):]]
            if since is not None:
                candidates = [t for t in candidates if t.updated_at >= since]
        else:
            candidates = [self._get(i) for _, i in keys[start:]]
        if predicate is not None:
            candidates = [t for t in candidates if predicate(t)]
        candidates.sort(key=_sort_key(order_by), reverse=descending)
        return candidates[offset:offset + per_page], len(candidates) > offset + per_page

    def _get(self, ticket_id: int) -> Ticket:
        tk = self.world.ticket(ticket_id)
        assert tk is not None
        return tk


def _remove(keys: list[tuple[int, int]], key: tuple[int, int]) -> None:
    i = bisect_left(keys, key)
    if i < len(keys) and keys[i] == key:
        del keys[i]


def custom_field_problem(world: World, custom: Any) -> tuple[str, str, str] | None:
    """(field, message, code) of the first invalid ``custom_fields`` entry of a ticket update, else None."""
    if not isinstance(custom, dict):
        return "custom_fields", "It should be a/an key/value pair", "datatype_mismatch"
    types = {f"cf_{f.key}": f.type for f in world.fields}
    for key, value in custom.items():
        if key not in types:
            return key, "Unexpected/invalid field in request", "invalid_field"
        if value is None:
            continue
        if types[key] in NUMBER_TYPES and (isinstance(value, bool) or not isinstance(value, int)):
            return f"custom_fields.{key}", "It should be a/an Integer", "datatype_mismatch"
        if types[key] not in NUMBER_TYPES and not isinstance(value, str):
            return f"custom_fields.{key}", "It should be a/an String", "datatype_mismatch"
    return None
