"""Writes, test helpers and ground truth of the Zendesk simulator (mixed into ``ZendeskSim``).

Write contract (API-NOTES.md 1.5): ``PUT .../tags`` adds, ``POST`` replaces,
``DELETE`` removes, all three answer ``{"tags": [...]}`` and refuse closed
tickets with 422 ``RecordInvalid``; ``PUT /tickets/{id}`` sets the listed
custom fields (unknown field ids are ignored, as Zendesk does) and replaces
``tags`` (``additional_tags``/``remove_tags`` also work); unknown, deleted or
spam tickets are 404 ``RecordNotFound``. A closed ticket refuses the ticket
update too ("Status: closed prevents ticket update").

A write that changes something appends an audit (ticket event with one
Change child per changed field) and moves ``updated_at`` and
``generated_timestamp`` to the simulator clock, so the ticket comes back in
the next export. A write that changes nothing (adding a tag the ticket
already has) answers 200 but leaves the ticket alone, like Zendesk, which
creates no empty audits; it is still listed in ``writes`` (``changed=False``).
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from typing import Any

from connectors.sim.base import SimRequest, SimResponse
from connectors.sim.model import Change, Message, Ticket, World
from connectors.sim.zendesk.events import WRITE_K, EventIndex
from connectors.sim.zendesk.export import KeyIndex
from connectors.sim.zendesk.render import AUDIT_ID_BASE, TIME_FIELD_ID, change_child, iso

SIM_CHILD_ID_BASE = 4 * 10**12
SIM_MESSAGE_ID_BASE = 8_000_000_000
SIM_CHANGE_ID_BASE = 8_500_000_000
_CLOSED = {"error": "RecordInvalid", "description": "Record validation errors",
           "details": {"status": [{"description": "Status: closed prevents ticket update", "error": "InvalidValue"}]}}


def normalize_tags(values: Any) -> list[str]:
    """Zendesk tags are lowercase and whitespace separates tags; order kept, duplicates dropped."""
    out: list[str] = []
    for value in values:
        for tag in str(value).lower().split():
            if tag not in out:
                out.append(tag)
    return out


class ZendeskWrites:
    """The mutating half of the simulator; ``ZendeskSim`` provides the state declared here."""

    world: World
    lock: threading.RLock
    clock: Callable[[], float]
    gen_ts: dict[int, int]
    tickets_idx: KeyIndex
    writes: list[dict[str, Any]]
    admin_id: int | None
    field_ids: dict[str, int]
    _ticket_json: dict[int, bytes]
    _metric_json: dict[int, bytes]
    _events: EventIndex | None
    _write_audits: dict[int, list[dict[str, Any]]]

    def _init_writes(self) -> None:
        self._child_ids = itertools.count(SIM_CHILD_ID_BASE + 1)
        self._message_ids = itertools.count(SIM_MESSAGE_ID_BASE + 1)
        self._change_ids = itertools.count(SIM_CHANGE_ID_BASE + 1)
        self._field_keys = {fid: key for key, fid in self.field_ids.items()}

    # -- endpoints -----------------------------------------------------------------------------------------
    def _target(self, req: SimRequest, tid: str) -> tuple[Ticket | None, dict[str, Any] | None, SimResponse | None]:
        ticket = self.world.ticket(int(tid))
        if ticket is None or ticket.deleted or ticket.spam:
            return None, None, SimResponse.json({"error": "RecordNotFound", "description": "Not found"}, 404)
        try:
            body = req.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return None, None, SimResponse.json({"error": "InvalidValue", "description": "Invalid JSON body"}, 400)
        if ticket.status == "closed":
            return None, None, SimResponse.json(_CLOSED, 422)
        return ticket, body, None

    def _tags_write(self, req: SimRequest, tid: str) -> SimResponse:
        with self.lock:
            ticket, body, refused = self._target(req, tid)
            if refused is not None:
                return refused
            assert ticket is not None and body is not None
            if not isinstance(body.get("tags"), list):
                return SimResponse.json({"error": "InvalidValue", "description": "tags must be a list"}, 400)
            given, old = normalize_tags(body["tags"]), list(ticket.tags)
            if req.method == "PUT":
                new = old + [tag for tag in given if tag not in old]
            elif req.method == "POST":
                new = given
            else:
                new = [tag for tag in old if tag not in given]
            ticket.tags = new
            self._record(req, ticket, body, [("tags", old, new)] if new != old else [])
            return SimResponse.json({"tags": list(ticket.tags)})

    def _ticket_update(self, req: SimRequest, tid: str) -> SimResponse:
        with self.lock:
            ticket, body, refused = self._target(req, tid)
            if refused is not None:
                return refused
            assert ticket is not None and body is not None
            update = body.get("ticket")
            if not isinstance(update, dict):
                return SimResponse.json({"error": "InvalidValue", "description": "expected {\"ticket\": {...}}"}, 400)
            changes: list[tuple[str, Any, Any]] = []
            for item in update.get("custom_fields", update.get("fields")) or []:
                changes += self._set_field(ticket, item)
            old_tags = list(ticket.tags)
            tags = list(ticket.tags)
            if isinstance(update.get("tags"), list):
                tags = normalize_tags(update["tags"])
            if isinstance(update.get("additional_tags"), list):
                tags += [tag for tag in normalize_tags(update["additional_tags"]) if tag not in tags]
            if isinstance(update.get("remove_tags"), list):
                removed = normalize_tags(update["remove_tags"])
                tags = [tag for tag in tags if tag not in removed]
            if tags != old_tags:
                ticket.tags = tags
                changes.append(("tags", old_tags, tags))
            audit = self._record(req, ticket, body, changes)
            return SimResponse.json({"ticket": json.loads(self.ticket_json(ticket.id)),
                                     "audit": audit})

    def _set_field(self, ticket: Ticket, item: Any) -> list[tuple[str, Any, Any]]:
        if not isinstance(item, dict) or item.get("id") is None:
            return []
        try:
            fid = int(item["id"])
        except (TypeError, ValueError):
            return []
        value = item.get("value")
        if fid == TIME_FIELD_ID:
            new_time = None if value is None or value == "" else int(float(value))
            if new_time == ticket.time_spent_s:
                return []
            old_time, ticket.time_spent_s = ticket.time_spent_s, new_time
            return [(str(fid), old_time, new_time)]
        key = self._field_keys.get(fid)
        new = None if value is None else str(value)
        if key is None or ticket.custom_fields.get(key) == new:
            return []
        old = ticket.custom_fields.get(key)
        ticket.custom_fields[key] = new
        return [(str(fid), old, new)]

    def ticket_json(self, tid: int) -> bytes:  # provided by ZendeskSim
        raise NotImplementedError

    # -- bookkeeping ---------------------------------------------------------------------------------------
    def _record(self, req: SimRequest, ticket: Ticket, body: Any, changes: list[tuple[str, Any, Any]]
                ) -> dict[str, Any] | None:
        at = int(self.clock())
        self.writes.append({"method": req.method, "path": req.path, "ticket_id": ticket.id, "body": body,
                            "changed": bool(changes), "at": at})
        if not changes:
            return None
        children = [change_child(next(self._child_ids), "Change", name, new, old) for name, old, new in changes]
        return self._audit(ticket, at, children, self.admin_id, "api")

    def _audit(self, ticket: Ticket, at: int, children: list[dict[str, Any]], updater: int | None,
               via: str) -> dict[str, Any]:
        """Append a simulator-made audit and bump the ticket so the next export returns it."""
        at = max(at, self.gen_ts[ticket.id])
        audits = self._write_audits.setdefault(ticket.id, [])
        j = len(audits)
        audit = {"id": AUDIT_ID_BASE + (ticket.id << 12) + WRITE_K + j, "ticket_id": ticket.id, "timestamp": at,
                 "created_at": iso(at), "updater_id": updater if updater is not None else -1, "via": via,
                 "via_reference_id": None, "system": {"client": "deskpulse-sim", "ip_address": None},
                 "event_type": "Audit", "child_events": children}
        audits.append(audit)
        if self._events is not None:
            self._events.add_extra(ticket.id, j, at)
        self._bump(ticket, at)
        return audit

    def _bump(self, ticket: Ticket, at: int) -> None:
        old = self.gen_ts[ticket.id]
        new = max(at, old)
        ticket.updated_at = max(ticket.updated_at, new)
        self.gen_ts[ticket.id] = new
        self.tickets_idx.move((old << 32) | ticket.id, (new << 32) | ticket.id)
        self._ticket_json.pop(ticket.id, None)
        self._metric_json.pop(ticket.id, None)

    # -- helpers for tests: new activity between syncs -----------------------------------------------------
    def touch(self, ticket_id: int, at: int | None = None) -> int:
        """An agent edit that changes nothing visible: an audit, a new ``updated_at``; returns it."""
        with self.lock:
            ticket = self.world.ticket(ticket_id)
            if ticket is None:
                raise KeyError(ticket_id)
            when = int(self.clock()) if at is None else int(at)
            child = change_child(next(self._child_ids), "Change", "tags", list(ticket.tags), list(ticket.tags))
            self._audit(ticket, when, [child], self.admin_id, "web")
            return self.gen_ts[ticket_id]

    def add_ticket(self, *, requester_id: int | None = None, subject: str = "Something is broken",
                   body: str = "Hi, something stopped working for us. Can you help?", at: int | None = None,
                   priority: str = "normal", channel: str = "web") -> Ticket:
        """A new ticket (customer description, status new) created at ``at`` (default: the sim clock)."""
        with self.lock:
            when = int(self.clock()) if at is None else int(at)
            requester = (self.world.person(requester_id) if requester_id is not None
                         else next(p for p in self.world.people if p.role == "customer"))
            if requester is None:
                raise KeyError(requester_id)
            tid = max((t.id for t in self.world.tickets), default=0) + 1
            message = Message(next(self._message_ids), requester.id, "customer", True, body, when)
            ticket = Ticket(tid, subject, requester.id, requester.org_id, None, None, channel, priority, "new", when,
                            when, messages=[message], custom_fields={key: None for key in self.field_ids})
            self.world.tickets.append(ticket)
            self.gen_ts[tid] = when
            self.tickets_idx.add((when << 32) | tid)
            if self._events is not None:
                self._events.reindex(ticket, [])
            return ticket

    def add_message(self, ticket_id: int, body: str, *, role: str = "customer", public: bool = True,
                    at: int | None = None, author_id: int | None = None) -> Message:
        """A new comment, with the status move Zendesk makes (customer reply reopens, agent reply -> pending)."""
        with self.lock:
            ticket = self.world.ticket(ticket_id)
            if ticket is None:
                raise KeyError(ticket_id)
            old_keys = self._events.world_keys(ticket) if self._events is not None else []
            when = max(int(self.clock()) if at is None else int(at), ticket.updated_at)
            author = author_id or (ticket.requester_id if role == "customer" else (ticket.assignee_id or self.admin_id))
            message = Message(next(self._message_ids), author or -1, role, public, body, when)
            ticket.messages.append(message)
            new_status = None
            if role == "customer" and ticket.status in ("pending", "solved", "on_hold"):
                new_status = "open"
            elif role == "agent" and public and ticket.status in ("new", "open"):
                new_status = "pending"
            if new_status is not None:
                ticket.changes.append(Change(next(self._change_ids), when, "status", ticket.status, new_status,
                                             author if role == "agent" else None))
                ticket.status = new_status
            if self._events is not None:
                self._events.reindex(ticket, old_keys)
            self._bump(ticket, when)
            return message

    def ground_truth(self) -> dict[str, int]:
        """What a complete sync of this account must have stored (the connector's reference counts)."""
        with self.lock:
            tickets = self.world.tickets
            messages = [m for t in tickets for m in t.messages]
            public = sum(m.public for m in messages)
            return {
                "tickets": len(tickets),
                "tickets_deleted": sum(t.deleted or t.spam for t in tickets),
                "tickets_merged": sum(t.merged_into is not None for t in tickets),
                "messages": len(messages), "messages_public": public, "messages_private": len(messages) - public,
                "people": len(self.world.people), "organizations": len(self.world.orgs),
                "ratings": sum(t.rating is not None for t in tickets),
                "groups": len(self.world.groups),
                "status_changes": sum(c.field == "status" for t in tickets for c in t.changes),
            }
