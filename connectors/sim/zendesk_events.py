"""The incremental ticket-events index: every audit of every ticket, ordered by time.

Built lazily on the first ``ticket_events`` request (a tickets-only benchmark
never pays for it) from ``audit_groups`` timestamps only; the audits on a page
are rendered on demand, with a bounded per-ticket cache. Keys are
``timestamp << 44 | ticket_id << 12 | k``: ``k < 2048`` is the k-th audit of the
world's history, ``k >= 2048`` the (k-2048)-th audit the simulator itself
appended (write-backs, ``touch``).
"""

from __future__ import annotations

from typing import Any

from connectors.sim.model import Ticket, World
from connectors.sim.zendesk_export import KeyIndex
from connectors.sim.zendesk_render import Item, audit_groups, render_audit

SHIFT = 44
WRITE_K = 2048
_LOW = (1 << SHIFT) - 1
_CACHE_MAX = 20_000


class EventIndex:
    """Sorted audit keys plus the renderer for one time-based page."""

    def __init__(self, world: World, extra: dict[int, list[dict[str, Any]]]) -> None:
        keys: list[int] = []
        for t in world.tickets:
            keys.extend(self._world_keys(t))
        for tid, events in extra.items():
            keys.extend(self.extra_key(tid, j, ev["timestamp"]) for j, ev in enumerate(events))
        self.index = KeyIndex(keys, shift=SHIFT)
        self._groups: dict[int, list[tuple[int, list[Item]]]] = {}

    @staticmethod
    def extra_key(ticket_id: int, j: int, ts: int) -> int:
        return (ts << SHIFT) | (ticket_id << 12) | (WRITE_K + j)

    @staticmethod
    def _world_keys(t: Ticket) -> list[int]:
        return [(ts << SHIFT) | (t.id << 12) | k for k, (ts, _) in enumerate(audit_groups(t))]

    def world_keys(self, t: Ticket) -> list[int]:
        """The keys of a ticket's world audits as they are now (call before and after mutating it)."""
        return self._world_keys(t)

    def reindex(self, t: Ticket, old_keys: list[int]) -> None:
        """The ticket's world history changed (a message or status was added): swap its keys."""
        for key in old_keys:
            self.index.remove(key)
        for key in self._world_keys(t):
            self.index.add(key)
        self._groups.pop(t.id, None)

    def add_extra(self, ticket_id: int, j: int, ts: int) -> None:
        self.index.add(self.extra_key(ticket_id, j, ts))

    def _ticket_groups(self, t: Ticket) -> list[tuple[int, list[Item]]]:
        groups = self._groups.get(t.id)
        if groups is None:
            if len(self._groups) >= _CACHE_MAX:
                self._groups.clear()
            groups = self._groups[t.id] = audit_groups(t)
        return groups

    def page(self, world: World, extra: dict[int, list[dict[str, Any]]], start: int, cutoff: int, limit: int,
             comments: bool) -> tuple[list[dict[str, Any]], bool]:
        """Events with timestamp >= ``start`` (and <= ``cutoff``): (events, end_of_stream)."""
        keys, done = self.index.time_slice(start, cutoff, limit)
        events: list[dict[str, Any]] = []
        for key in keys:
            ts, low = key >> SHIFT, key & _LOW
            tid, k = low >> 12, low & 0xFFF
            if k >= WRITE_K:
                event = extra[tid][k - WRITE_K]
                if not comments:
                    event = {**event, "child_events": [c for c in event["child_events"]
                                                        if c.get("event_type") != "Comment"]}
                events.append(event)
                continue
            ticket = world.ticket(tid)
            assert ticket is not None
            _, items = self._ticket_groups(ticket)[k]
            events.append(render_audit(ticket, k, ts, items, comments))
        return events, done
