"""The Deskette simulator: renders deskpulse's vendor-neutral ``World`` in Deskette's (imaginary) API.

Built on ``connectors.sim.base.Simulator`` (routing, auth hook, injected faults, counters, clock), with the
conventional test hooks the contract kit uses: ``touch``, ``add_message``, ``delete``, ``ground_truth``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from connectors.sim.base import SimRequest, SimResponse, Simulator
from connectors.sim.model import Message, Ticket, World


class DesketteSim(Simulator):
    kind = "deskette"

    def __init__(self, world: World, *, api_key: str, clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock=clock)
        self.world = world
        self.api_key = api_key
        self.route("GET", r"/api/organizations", self._organizations)
        self.route("GET", r"/api/people", self._people)
        self.route("GET", r"/api/tickets", self._tickets)
        self.route("POST", r"/api/tickets/(?P<tid>[^/]+)/tags", self._tags)

    # -- the API ------------------------------------------------------------------------------------
    def authorize(self, req: SimRequest) -> SimResponse | None:
        if req.header("Authorization") != f"Bearer {self.api_key}":
            return self.error(401, "unauthorized")
        return None

    @staticmethod
    def _int(req: SimRequest, name: str, default: int) -> int:
        value = req.arg(name)
        return int(value) if value is not None and value.lstrip("-").isdigit() else default

    def _listing(self, req: SimRequest, key: str, records: list[dict[str, Any]]) -> SimResponse:
        page, limit = max(1, self._int(req, "page", 1)), min(100, max(1, self._int(req, "limit", 100)))
        chunk = records[(page - 1) * limit: page * limit]
        return SimResponse.json({key: chunk, "has_more": page * limit < len(records)})

    def _organizations(self, req: SimRequest) -> SimResponse:
        with self.lock:
            orgs = [{"id": o.id, "name": o.name, "value": o.value, "created_at": o.created_at,
                     "updated_at": o.updated_at or o.created_at} for o in self.world.orgs]
        return self._listing(req, "organizations", orgs)

    def _people(self, req: SimRequest) -> SimResponse:
        with self.lock:
            people = [{"id": p.id, "name": p.name, "email": p.email, "role": p.role, "organization_id": p.org_id,
                       "created_at": p.created_at, "updated_at": p.updated_at} for p in self.world.people]
        return self._listing(req, "people", people)

    def _tickets(self, req: SimRequest) -> SimResponse:
        since, after = self._int(req, "since", 0), self._int(req, "after", 0)
        limit = min(100, max(1, self._int(req, "limit", 100)))
        with self.lock:
            ordered = sorted(self.world.tickets, key=lambda t: (t.updated_at, t.id))
            after_key = [t for t in ordered if (t.updated_at, t.id) > (since, after)]
            rendered = [self._render(t) for t in after_key[:limit]]
            corrupt = self._take_malformed(req.path)
        for k in range(min(corrupt, len(rendered))):
            rendered[k]["created_at"] = "not-a-date"  # a bad upstream record: the connector quarantines it
        return SimResponse.json({"tickets": rendered, "has_more": len(after_key) > limit})

    def _take_malformed(self, path: str) -> int:
        """A pending ``malformed`` fault for ``path``, consumed whole: how many records of this page to break."""
        with self.lock:
            for fault in self.faults:
                if fault.kind == "malformed" and path.startswith(fault.path):
                    self.faults.remove(fault)
                    return fault.count
        return 0

    def _render(self, t: Ticket) -> dict[str, Any]:
        status = "spam" if t.spam else "deleted" if t.deleted else t.status
        return {"id": t.id, "subject": t.subject, "status": status, "priority": t.priority, "channel": t.channel,
                "requester_id": t.requester_id, "organization_id": t.org_id, "assignee_id": t.assignee_id,
                "group_id": t.group_id, "tags": list(t.tags), "fields": dict(t.custom_fields),
                "created_at": t.created_at, "updated_at": t.updated_at, "solved_at": t.solved_at,
                "messages": [{"id": m.id, "author_id": m.author_id, "role": m.role, "public": m.public,
                              "body": m.body, "created_at": m.created_at} for m in t.messages],
                "rating": None if t.rating is None else {"id": t.rating.id, "score": t.rating.score,
                                                         "comment": t.rating.comment,
                                                         "created_at": t.rating.created_at}}

    def _tags(self, req: SimRequest, tid: str) -> SimResponse:
        body = req.json() or {}
        with self.lock:
            t = self.world.ticket(int(tid)) if tid.isdigit() else None
            if t is None or t.deleted or t.spam:
                return self.error(404, "ticket not found")
            before = list(t.tags)
            t.tags = [x for x in t.tags if x not in set(body.get("remove") or [])]
            t.tags += [x for x in dict.fromkeys(body.get("add") or []) if x not in t.tags]
            if t.tags != before:
                t.updated_at = max(int(self.clock()), t.updated_at)
            return SimResponse.json({"tags": t.tags})

    # -- test hooks ---------------------------------------------------------------------------------
    def touch(self, tid: int) -> None:
        """An edit at the simulator clock (every touch in one clock second lands on that second)."""
        with self.lock:
            self.world.ticket(tid).updated_at = int(self.clock())  # type: ignore[union-attr]

    def add_message(self, tid: int, body: str) -> None:
        """A customer reply, which updates the ticket."""
        with self.lock:
            t = self.world.ticket(tid)
            assert t is not None
            next_id = 1 + max((m.id for x in self.world.tickets for m in x.messages), default=0)
            t.messages.append(Message(next_id, t.requester_id, "customer", True, body, int(self.clock())))
            t.updated_at = int(self.clock())

    def delete(self, tid: int, *, spam: bool = False) -> None:
        """Delete (or mark as spam): Deskette keeps listing the ticket with that status."""
        with self.lock:
            t = self.world.ticket(tid)
            assert t is not None
            if spam:
                t.spam = True
            else:
                t.deleted = True
            t.updated_at = int(self.clock())

    def ground_truth(self) -> dict[str, int]:
        """What a complete sync must hold."""
        with self.lock:
            return {"tickets": len(self.world.tickets), "people": len(self.world.people),
                    "organizations": len(self.world.orgs),
                    "messages": sum(len(t.messages) for t in self.world.tickets),
                    "ratings": sum(1 for t in self.world.tickets if t.rating is not None)}
