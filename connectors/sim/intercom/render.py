"""World -> Intercom payloads (API-NOTES section 3): conversations, parts, statistics, contacts, companies.

Rendering rules (the neutral world has more states than Intercom; the
simulator speaks Intercom, not a superset of it):

- Status: new/open -> ``open``, pending/on_hold -> ``snoozed``, solved/closed ->
  ``closed``. A neutral change that stays inside one Intercom state (new->open,
  solved->closed, pending->on_hold) produces no part.
- Priority: urgent/high -> ``priority``, else ``not_priority``. Priority changes
  produce no part (Intercom exposes none in the conversation's parts).
- Channel: email -> source.type ``email``; phone -> ``phone_call``; chat and web
  -> ``conversation`` (Intercom has no web form); api -> ``conversation`` with
  ``delivered_as: automated``. Agent-created tickets are ``admin_initiated``.
- Messages: ``messages[0]`` is the conversation's ``source``; later public
  messages are ``comment`` parts, private ones ``note`` parts. Customers are
  ``user`` contacts, agents ``admin``s, bot/system messages the ``bot``. A status
  change to closed by the agent who replied at that second merges into a
  ``close`` part with body (reply-and-close); a reopen at the second a customer
  wrote merges into an ``open`` part with the customer's body (as in the
  fixture). Other state changes are body-less ``open``/``close``/``snoozed``
  parts; assignments are ``assignment`` parts with ``assigned_to`` admin/team.
- Part ids: messages 3n, changes 3n+1, write-back parts 3n+2 (stable, disjoint).
- Contact ids are 24-hex strings derived from the person id, company ids too;
  admins and teams keep the world's numeric ids.

API versions (the ``Intercom-Version`` request header; ``RENDERINGS``): the
simulator renders two shapes, each conforming to Intercom's OpenAPI description
of that version (``tests/test_intercom_openapi.py`` validates them): ``2.11``
(every version below 2.16) and ``2.16`` (2.16 and newer). What differs:

- Priority: 2.11 ``priority``/``not_priority``; 2.16 ``none``/``low``/``medium``/
  ``high``/``urgent`` (OAS 2.16 ``conversation.priority`` enum): urgent -> urgent,
  high -> high, normal -> none, low -> low.
- Unassigned: 2.11 ``admin_assignee_id: null``; 2.16 ``0`` (OAS 2.16: "If it's
  not assigned to an admin it will return 0").
- Statistics: 2.16 adds ``handling_time`` (wall clock from the first assignment
  to the last close, OAS 2.16 "Time from conversation assignment to conversation
  close") and ``adjusted_handling_time`` (active time: the world's effort);
  2.11 has neither (API-NOTES 6.1).
- Rating: 2.16 adds ``conversation_rating.updated_at`` (the answer); in both,
  ``created_at`` is when the rating was *requested* (OAS ``conversation_rating``:
  "The time the rating was requested"), which the simulator puts at the solve.

In every version the statistics' durations (``time_to_admin_reply``,
``time_to_first_close``, ``time_to_last_close``) count from the customer's first
message and leave out time outside the workspace's office hours (OAS
``conversation_statistics``: "Subtracts out of business hours"; API-NOTES 6.1);
the ``*_at`` timestamps are plain instants. Statistics with no value are left
out rather than null (the OAS types them non-nullable).

Merges (OAS 2.16 ``POST /conversations/{id}/merge``: "The secondary conversation
is closed and linked to the primary"): a merged-away ticket is served, closed,
with a body-less ``merged_secondary_conversation`` part by the Operator bot at
the merge, and the surviving primary gets a ``merged_primary_conversation`` part
(as in the OAS example, which returns the primary) when its ``updated_at`` is not
before the merge. The secondary's part name is UNCONFIRMED by the OAS (it comes
from public client code reading 2.16 payloads).
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

from connectors.sim.model import Message, Person, Ticket, World

CONTACT_BASE = 0x667D60E08A68186F43000000
COMPANY_BASE = 0x5F0C1A2B3C4D5E6F70000000
STATE_OF = {"new": "open", "open": "open", "pending": "snoozed", "on_hold": "snoozed", "solved": "closed",
            "closed": "closed"}
STATE_PART = {"closed": "close", "snoozed": "snoozed", "open": "open"}
OPERATOR = {"type": "bot", "id": "991267562", "name": "Operator",
            "email": "operator+sim@intercom.io"}
#: The shapes the simulator renders; a requested version renders as the newest of these not above it.
RENDERINGS = ("2.11", "2.16")
#: 2.16's priority levels for the world's priorities (OAS 2.16 ``conversation.priority``).
PRIORITY_216 = {"urgent": "urgent", "high": "high", "normal": "none", "low": "low"}
MERGE_SECONDARY_PART = "merged_secondary_conversation"
MERGE_PRIMARY_PART = "merged_primary_conversation"
#: Default office hours of the simulated workspace: weekdays, [start, end) hour in UTC.
OFFICE_HOURS = (9, 17)
DAY = 86400


def version_key(version: str) -> tuple[int, int] | None:
    """``"2.16"`` -> (2, 16); None for anything that is not ``major.minor``."""
    major, dot, minor = version.strip().partition(".")
    if not dot or not major.isdigit() or not minor.isdigit():
        return None
    return int(major), int(minor)


def rendering(version: str | None, default: str = RENDERINGS[-1]) -> str:
    """The shape a request for ``version`` gets: the newest rendering not above it (2.12-2.15 -> 2.11)."""
    key = version_key(version or "") or version_key(default)
    chosen = RENDERINGS[0]
    for name in RENDERINGS:
        named = version_key(name)
        if key is not None and named is not None and named <= key:
            chosen = name
    return chosen


def office_seconds(start: int, end: int, hours: tuple[int, int] | None) -> int:
    """Seconds of [start, end) inside office hours (weekdays, UTC); ``hours=None`` means always open."""
    if end <= start:
        return 0
    if hours is None:
        return end - start
    open_s, close_s = hours[0] * 3600, hours[1] * 3600
    total = 0
    day = start - start % DAY
    while day < end:
        if datetime.fromtimestamp(day, UTC).weekday() < 5:
            lo, hi = max(start, day + open_s), min(end, day + close_s)
            total += max(0, hi - lo)
        day += DAY
    return total


def contact_id(person_id: int) -> str:
    return f"{CONTACT_BASE + person_id:024x}"


def company_id(org_id: int) -> str:
    return f"{COMPANY_BASE + org_id:024x}"


def parse_hex_id(value: str, base: int) -> int | None:
    try:
        number = int(value, 16) - base
    except ValueError:
        return None
    return number if number > 0 else None


def intercom_state(status: str) -> str:
    return STATE_OF.get(status, "open")


def intercom_priority(priority: str, version: str = "2.11") -> str:
    if version == "2.16":
        return PRIORITY_216.get(priority, "none")
    return "priority" if priority in ("urgent", "high") else "not_priority"


def string_attributes(values: dict[str, Any]) -> dict[str, Any]:
    """Company custom attributes as the OAS types them (``additionalProperties: {type: string}``)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        out[key] = None if value is None else str(value)
    return out


def to_html(text: str | None, plaintext: bool = False) -> str | None:
    if text is None:
        return None
    if plaintext:
        return text
    paragraphs = [p for p in text.split("\n") if p.strip()]
    return "".join(f"<p>{html.escape(p, quote=False)}</p>" for p in paragraphs) or "<p></p>"


class Renderer:
    """Turns the world into Intercom JSON; holds the simulator-side extras (tags, write-back parts)."""

    def __init__(self, world: World, office_hours: tuple[int, int] | None = OFFICE_HOURS) -> None:
        self.world = world
        self.office_hours = office_hours
        self.tag_ids: dict[str, str] = {}
        self.tag_names: dict[str, str] = {}
        self.extra_parts: dict[int, list[dict[str, Any]]] = {}
        self._extra_seq = 0
        self.bot_ids = {m.author_id for t in world.tickets for m in t.messages if m.role in ("bot", "system")}
        self.bot_ids |= {p.id for p in world.people if p.email.startswith("bot@")}
        #: primary id -> [(merge time, secondary id)]: the survivor's side of each merge
        self.merged_in: dict[int, list[tuple[int, int]]] = {}
        for t in world.tickets:
            if t.merged_into is not None and t.solved_at is not None:
                self.merged_in.setdefault(t.merged_into, []).append((t.solved_at, t.id))

    # -- ids and references ---------------------------------------------------------------------------
    def tag_id(self, name: str) -> str:
        if name not in self.tag_ids:
            tid = str(7_000_000 + len(self.tag_ids) + 1)
            self.tag_ids[name], self.tag_names[tid] = tid, name
        return self.tag_ids[name]

    def next_extra_id(self) -> str:
        self._extra_seq += 1
        return str(3 * self._extra_seq + 2)

    def is_admin(self, person: Person) -> bool:
        return person.role == "agent" and person.id not in self.bot_ids

    def author(self, person_id: int | None, role: str) -> dict[str, Any]:
        person = self.world.person(person_id) if person_id is not None else None
        if role in ("bot", "system") or person_id is None:
            if person is None:
                return dict(OPERATOR)
            return {"type": "bot", "id": str(person.id), "name": person.name, "email": person.email}
        if person is None:
            kind = "admin" if role == "agent" else "user"
            return {"type": kind, "id": str(person_id) if kind == "admin" else contact_id(person_id),
                    "name": None, "email": None}
        if role == "agent" or self.is_admin(person):
            return {"type": "admin", "id": str(person.id), "name": person.name, "email": person.email}
        return {"type": "user", "id": contact_id(person.id), "name": person.name, "email": person.email}

    def role_of(self, actor_id: int | None) -> str:
        person = self.world.person(actor_id) if actor_id is not None else None
        if person is None or person.id in self.bot_ids:
            return "bot"
        return "agent" if person.role == "agent" else "customer"

    # -- parts ----------------------------------------------------------------------------------------
    def _part(self, pid: str, part_type: str, body: str | None, at: int, author: dict[str, Any],
              assigned_to: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"type": "conversation_part", "id": pid, "part_type": part_type, "body": body, "created_at": at,
                "updated_at": at, "notified_at": at, "assigned_to": assigned_to, "author": author,
                "attachments": [], "external_id": None, "redacted": False}

    def initial_state(self, t: Ticket) -> str:
        for change in t.changes:
            if change.field == "status":
                return intercom_state(change.old or "new")
        return intercom_state(t.status)

    def parts(self, t: Ticket, plaintext: bool = False) -> list[dict[str, Any]]:
        """Every part of the conversation in time order (the simulator caps the list it returns)."""
        parts: list[tuple[int, int, dict[str, Any]]] = []
        merge_slots: dict[tuple[int, str], dict[str, Any]] = {}
        for m in t.messages[1:]:
            part = self._part(str(3 * m.id), "comment" if m.public else "note", to_html(m.body, plaintext),
                              m.created_at, self.author(m.author_id, m.role))
            parts.append((m.created_at, 0, part))
            if m.public and m.role in ("agent", "customer"):
                merge_slots.setdefault((m.created_at, m.role), part)
                merge_slots.setdefault((m.created_at, f"id:{m.author_id}"), part)
        state = self.initial_state(t)
        for c in sorted(t.changes, key=lambda c: (c.at, c.id)):
            pid = str(3 * c.id + 1)
            if c.field == "status":
                new_state = intercom_state(c.new or "open")
                if new_state == state:
                    continue
                old_state, state = state, new_state
                slot = None
                if new_state == "closed" and c.actor_id is not None:
                    slot = merge_slots.get((c.at, f"id:{c.actor_id}"))
                elif new_state == "open" and old_state != "open":
                    slot = merge_slots.get((c.at, "customer"))
                if slot is not None and slot["part_type"] == "comment":
                    slot["part_type"] = STATE_PART[new_state]
                    continue
                part = self._part(pid, STATE_PART[new_state], None, c.at, self.author(c.actor_id, self.role_of(
                    c.actor_id)))
                parts.append((c.at, 1, part))
            elif c.field in ("assignee_id", "assignee", "group_id", "group"):
                team = c.field.startswith("group")
                if c.new:
                    target: dict[str, Any] = {"type": "team" if team else "admin", "id": str(c.new)}
                else:
                    target = {"type": "team", "id": None} if team else {"type": "nobody_admin", "id": None}
                part = self._part(pid, "assignment", None, c.at, self.author(c.actor_id, self.role_of(c.actor_id)),
                                  target)
                parts.append((c.at, 1, part))
        if t.merged_into is not None and t.solved_at is not None:  # see "Merges" in the module docstring
            parts.append((t.solved_at, 1, self._part(str(3 * (10**9 + t.id) + 2), MERGE_SECONDARY_PART, None,
                                                     t.solved_at, dict(OPERATOR))))
        for at, secondary in self.merged_in.get(t.id, ()):
            if at <= t.updated_at:  # a merge the primary's updated_at has seen (the world may end before it)
                parts.append((at, 1, self._part(str(3 * (2 * 10**9 + secondary) + 2), MERGE_PRIMARY_PART, None,
                                                at, dict(OPERATOR))))
        for part in self.extra_parts.get(t.id, ()):
            parts.append((part["created_at"], 2, part))
        parts.sort(key=lambda item: (item[0], item[1]))
        return [p for _, _, p in parts]

    # -- statistics -----------------------------------------------------------------------------------
    def statistics(self, t: Ticket, part_count: int, version: str = RENDERINGS[-1]) -> dict[str, Any]:
        """Intercom's conversation statistics, computed from the neutral history (see the module docstring)."""
        msgs = t.messages
        replies = [m.created_at for m in msgs[1:] if m.role == "agent" and m.public]
        contact = [m.created_at for m in msgs[1:] if m.role == "customer" and m.public]
        customer_first = next((m.created_at for m in msgs if m.role == "customer" and m.public), None)
        closes: list[tuple[int, int | None]] = []
        reopens = 0
        state = self.initial_state(t)
        for c in sorted((c for c in t.changes if c.field == "status"), key=lambda c: (c.at, c.id)):
            new = intercom_state(c.new or "open")
            if new == "closed" and state != "closed":
                closes.append((c.at, c.actor_id))
            elif state == "closed" and new != "closed":
                reopens += 1
            state = new
        if not closes and intercom_state(t.status) == "closed" and t.solved_at is not None:
            closes.append((t.solved_at, t.assignee_id))
        assigns = sorted(c.at for c in t.changes if c.field in ("assignee_id", "assignee") and c.new)
        first_reply = replies[0] if replies else None
        last_assign = assigns[-1] if assigns else None
        after_assign = [r for r in replies if last_assign is not None and r >= last_assign]

        def since_customer(at: int | None) -> int | None:
            """OAS conversation_statistics: from the customer's first message, out-of-office time left out."""
            if at is None or customer_first is None or at < customer_first:
                return None
            return office_seconds(customer_first, at, self.office_hours)

        stats: dict[str, Any] = {
            "type": "conversation_statistics",
            "time_to_assignment": assigns[0] - t.created_at if assigns else None,
            "time_to_admin_reply": since_customer(first_reply),
            "time_to_first_close": since_customer(closes[0][0] if closes else None),
            "time_to_last_close": since_customer(closes[-1][0] if closes else None),
            "first_contact_reply_at": contact[0] if contact else None,
            "first_assignment_at": assigns[0] if assigns else None,
            "first_admin_reply_at": first_reply,
            "first_close_at": closes[0][0] if closes else None,
            "last_assignment_at": last_assign,
            "last_assignment_admin_reply_at": after_assign[0] if after_assign else None,
            "last_contact_reply_at": contact[-1] if contact else None,
            "last_admin_reply_at": replies[-1] if replies else None,
            "last_close_at": closes[-1][0] if closes else None,
            "last_closed_by_id": str(closes[-1][1]) if closes and closes[-1][1] is not None else None,
            "count_reopens": reopens,
            "count_assignments": len(assigns),
            "count_conversation_parts": part_count,
        }
        if version == "2.16":
            # wall clock from the first assignment to the last close; the active time is the world's effort
            if assigns and closes and closes[-1][0] >= assigns[0]:
                stats["handling_time"] = closes[-1][0] - assigns[0]
            stats["adjusted_handling_time"] = t.time_spent_s  # nullable in the OAS
        return {k: v for k, v in stats.items() if v is not None or k == "adjusted_handling_time"}

    # -- conversation ---------------------------------------------------------------------------------
    def conversation(self, t: Ticket, *, parts_cap: int | None = None, with_parts: bool = False,
                     plaintext: bool = False, version: str = RENDERINGS[-1]) -> dict[str, Any]:
        """The Conversation model in ``version``'s shape (one of ``RENDERINGS``); parts (the ``parts_cap``
        most recent) only when ``with_parts``."""
        state = intercom_state(t.status)
        desc: Message | None = t.messages[0] if t.messages else None
        kind = {"email": "email", "phone": "phone_call"}.get(t.channel, "conversation")
        delivered = "admin_initiated" if t.created_by_agent else (
            "automated" if t.channel == "api" else "customer_initiated")
        src_author = self.author(desc.author_id, desc.role) if desc else self.author(t.requester_id, "customer")
        # OAS conversation.first_contact_reply: "For a contact initiated message this will represent the users
        # original message" (the source); otherwise the contact's first reply
        customer_msgs = [m for m in t.messages if m.role == "customer" and m.public]
        public = [m for m in t.messages if m.public and m.role in ("agent", "customer")]
        waiting = public[-1].created_at if state == "open" and public and public[-1].role == "customer" else None
        all_parts = self.parts(t, plaintext)
        count = len(all_parts)
        rating = None
        if t.rating is not None:
            # created_at: when Intercom asked (at the solve); 2.16's updated_at: when the customer answered
            asked = min(t.solved_at, t.rating.created_at) if t.solved_at is not None else t.rating.created_at
            rating = {"rating": t.rating.score, "remark": t.rating.comment or "", "created_at": asked,
                      "contact": {"type": "contact", "id": contact_id(t.requester_id),
                                  "external_id": str(t.requester_id)},
                      "teammate": {"type": "admin", "id": str(t.assignee_id) if t.assignee_id else None}}
            if version == "2.16":
                rating["updated_at"] = t.rating.created_at
        unassigned = 0 if version == "2.16" else None  # OAS 2.16: "If it's not assigned ... it will return 0"
        conv: dict[str, Any] = {
            "type": "conversation", "id": str(t.id), "created_at": t.created_at, "updated_at": t.updated_at,
            "waiting_since": waiting, "snoozed_until": t.updated_at + 86400 if state == "snoozed" else None,
            "source": {"type": kind, "id": str(desc.id if desc else t.id), "delivered_as": delivered,
                       "subject": t.subject, "body": to_html(desc.body if desc else "", plaintext),
                       "author": src_author, "attachments": [], "url": None, "redacted": False},
            "contacts": {"type": "contact.list", "contacts": [
                {"type": "contact", "id": contact_id(t.requester_id), "external_id": str(t.requester_id)}]},
            "first_contact_reply": {"created_at": customer_msgs[0].created_at, "type": "conversation", "url": None}
            if customer_msgs else None,
            "admin_assignee_id": t.assignee_id or unassigned, "team_assignee_id": t.group_id or unassigned,
            "open": state != "closed", "state": state, "read": True,
            "tags": {"type": "tag.list", "tags": [
                {"type": "tag", "id": self.tag_id(name), "name": name, "applied_at": t.created_at,
                 "applied_by": {"type": "admin", "id": str(t.assignee_id) if t.assignee_id else None}}
                for name in t.tags]},
            "priority": intercom_priority(t.priority, version), "sla_applied": None,
            "statistics": self.statistics(t, count, version), "conversation_rating": rating, "teammates": None,
            "title": None, "topics": {}, "ticket": None,
            # unset attributes are absent (OAS 2.16 types their values non-nullable)
            "custom_attributes": {k: v for k, v in t.custom_fields.items() if v is not None},
            "linked_objects": {"type": "list", "data": [], "total_count": 0, "has_more": False},
            "ai_agent": None, "ai_agent_participated": False,
        }
        if with_parts:
            shown = all_parts[-parts_cap:] if parts_cap is not None and parts_cap > 0 else all_parts
            conv["conversation_parts"] = {"type": "conversation_part.list", "conversation_parts": shown,
                                          "total_count": len(all_parts)}
        return conv

    # -- contacts, companies, admins, teams -----------------------------------------------------------
    def contact(self, p: Person) -> dict[str, Any]:
        org = p.org_id
        data = [{"type": "company", "id": company_id(org), "url": f"/companies/{company_id(org)}"}] if org else []
        cid = contact_id(p.id)
        return {
            "type": "contact", "id": cid, "workspace_id": "sim", "external_id": str(p.id),
            "role": "user" if org else "lead", "email": p.email, "phone": None, "name": p.name, "avatar": None,
            "owner_id": None, "has_hard_bounced": False, "marked_email_as_spam": False,
            "unsubscribed_from_emails": False, "created_at": p.created_at, "updated_at": p.updated_at,
            "signed_up_at": p.created_at, "last_seen_at": p.updated_at, "last_replied_at": None,
            "last_contacted_at": None, "last_email_opened_at": None, "last_email_clicked_at": None,
            "language_override": None, "browser": None, "browser_version": None, "browser_language": None,
            "os": None, "location": {"type": "location", "country": None, "region": None, "city": None},
            "android_app_name": None, "android_app_version": None, "android_device": None,
            "android_os_version": None, "android_sdk_version": None, "android_last_seen_at": None,
            "ios_app_name": None, "ios_app_version": None, "ios_device": None, "ios_os_version": None,
            "ios_sdk_version": None, "ios_last_seen_at": None, "custom_attributes": {},
            "tags": {"type": "list", "data": [], "url": f"/contacts/{cid}/tags", "total_count": 0, "has_more": False},
            "companies": {"type": "list", "data": data, "url": f"/contacts/{cid}/companies",
                          "total_count": len(data), "has_more": False},
            "notes": {"type": "list", "data": [], "url": f"/contacts/{cid}/notes", "total_count": 0,
                      "has_more": False},
            "social_profiles": {"type": "list", "data": []},
        }

    def company(self, org: Any, user_count: int = 0) -> dict[str, Any]:
        cid = company_id(org.id)
        return {
            "type": "company", "id": cid, "name": org.name, "app_id": "sim", "company_id": str(org.id),
            "remote_created_at": org.created_at, "created_at": org.created_at,
            "updated_at": org.updated_at or org.created_at, "last_request_at": org.updated_at or None,
            "monthly_spend": int(org.value // 12), "session_count": 0, "user_count": user_count,
            "website": f"https://{org.domain}", "plan": {},  # size, industry: unknown, so absent (not null)
            "custom_attributes": string_attributes({"arr": org.value}),
            "tags": {"type": "tag.list", "tags": []}, "segments": {"type": "segment.list", "segments": []},
        }

    @staticmethod
    def admin(p: Person) -> dict[str, Any]:
        return {"type": "admin", "id": str(p.id), "name": p.name, "email": p.email, "job_title": "Support agent",
                "away_mode_enabled": False, "away_mode_reassign": False, "has_inbox_seat": True, "team_ids": [],
                "avatar": None, "email_verified": True}

    @staticmethod
    def team(g: Any) -> dict[str, Any]:
        return {"type": "team", "id": str(g.id), "name": g.name, "admin_ids": []}
