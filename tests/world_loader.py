"""Load a generated ``World`` straight into a Store, as the connectors would have normalized it.

Why not sync through a simulator: the CDI evaluation measures the distress model against the
world's ground truth (``Org.distressed``); the HTTP path is the connectors' tests' business and
would only make this test slower. The mapping follows DESIGN.md's normalized schema: text ids,
unix-second timestamps, normalized statuses, deleted/spam/merged flagged, status history as
``ticket_events`` (field ``status``), CSAT ratings on a 1–5 scale.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from connectors.sim.model import World
from sync.store import Store

SEVERITY = {"urgent": 3, "high": 2, "normal": 1, "low": 1}


def _tickets(world: World, source: str) -> Iterator[dict[str, Any]]:
    for t in world.tickets:
        yield {
            "source": source, "id": str(t.id), "subject": t.subject,
            "status": "deleted" if t.deleted else t.status, "vendor_status": t.status,
            "priority": t.priority, "severity": SEVERITY.get(t.priority, 1), "channel": t.channel,
            "requester_id": str(t.requester_id), "organization_id": None if t.org_id is None else str(t.org_id),
            "assignee_id": None if t.assignee_id is None else str(t.assignee_id),
            "group_id": None if t.group_id is None else str(t.group_id), "tags": list(t.tags),
            "created_at": t.created_at, "updated_at": t.updated_at, "solved_at": t.solved_at,
            "is_spam": int(t.spam), "is_merged": int(t.merged_into is not None),
        }


def _messages(world: World, source: str) -> Iterator[dict[str, Any]]:
    for t in world.tickets:
        for m in t.messages:
            yield {"source": source, "id": str(m.id), "ticket_id": str(t.id), "author_id": str(m.author_id),
                   "author_role": m.role, "public": int(m.public), "kind": "comment", "body": m.body,
                   "created_at": m.created_at}


def _events(world: World, source: str) -> Iterator[dict[str, Any]]:
    for t in world.tickets:
        for c in t.changes:
            yield {"source": source, "id": str(c.id), "ticket_id": str(t.id), "created_at": c.at,
                   "actor_id": None if c.actor_id is None else str(c.actor_id), "field": c.field,
                   "old_value": c.old, "new_value": c.new}


def _ratings(world: World, source: str) -> Iterator[dict[str, Any]]:
    for t in world.tickets:
        r = t.rating
        if r is not None:
            yield {"source": source, "id": str(r.id), "ticket_id": str(t.id), "requester_id": str(t.requester_id),
                   "kind": "csat", "score_raw": str(r.score), "score_1_5": float(r.score), "score": float(r.score),
                   "comment": r.comment, "created_at": r.created_at}


def load_world(store: Store, world: World, source: str = "sim") -> None:
    """Write every record of ``world`` into ``store`` under ``source`` in one transaction."""
    with store.transaction():
        store.upsert("organizations", ({"source": source, "id": str(o.id), "name": o.name, "value": o.value,
                                        "created_at": o.created_at, "updated_at": o.updated_at}
                                       for o in world.orgs))
        store.upsert("people", ({"source": source, "id": str(p.id), "name": p.name, "email": p.email,
                                 "role": p.role, "organization_id": None if p.org_id is None else str(p.org_id),
                                 "created_at": p.created_at, "updated_at": p.updated_at} for p in world.people))
        store.upsert("tickets", _tickets(world, source))
        store.upsert("messages", _messages(world, source))
        store.upsert("ticket_events", _events(world, source))
        store.upsert("ratings", _ratings(world, source))
