"""The neutral World rendered in Freshdesk v2 shapes (used by ``connectors/sim/freshdesk/sim.py``).

Shapes follow the fixtures (``freshdesk_tickets_list_page.json``,
``freshdesk_conversations_list.json``) and API-NOTES.md section 2. Rendering
choices where the World says more, or less, than Freshdesk would:

- Status: new/open -> 2, pending -> 3, on_hold -> 7 (Freshdesk's default custom
  status "Waiting on Third Party"), solved -> 4, closed -> 5.
- Channel -> ``source``: email 1 (10, outbound email, when an agent opened the
  ticket), web 2, phone 3, chat 7, api 2 (tickets created through the API default
  to Portal in Freshdesk).
- The description (messages[0]) is ``description``/``description_text``; the rest
  are conversations, except bot auto-replies and system events, which Freshdesk
  does not store as conversations. The merge event becomes the note the merging
  agent leaves on the merged-away ticket; Freshdesk lets it be public or private and
  its default text is localized (API-NOTES 6.3; freshconsult ``api/lib/ticket_merge.rb``
  ``note_in_secondary: {body, private}``): even ticket ids get a public German note
  linking the primary ticket, odd ids the private English one.
- Conversations the World does not model but a real account has (``vendor_conversations``),
  each with Freshdesk's ``source``/``category`` codes (API-NOTES 6.3; freshconsult
  ``app/models/helpdesk/source/constants.rb`` NOTE_SOURCES and ``app/models/helpdesk/note/constants.rb``
  CATEGORIES): an automation rule's public acknowledgement right after creation (source 15), a
  forward to a third party and that party's answer (source 8; category 6), and the customer's
  satisfaction-survey comment (source 6, category 7). Their visibility on a real account is
  UNCONFIRMED; they are rendered public, the reading that would break reply counts.
- CSAT: world scores 1..5 on a 5-point custom survey: 5 -> 103, 4 -> 101, 3 -> 100,
  2 -> -101, 1 -> -103.
- Time spent becomes one time entry per ticket, ``time_spent`` "hh:mm" (whole minutes).
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from connectors.sim.model import Group, Message, Org, Person, Ticket, World

STATUS_CODE = {"new": 2, "open": 2, "pending": 3, "on_hold": 7, "solved": 4, "closed": 5}
PRIORITY_CODE = {"low": 1, "normal": 2, "high": 3, "urgent": 4}
SOURCE_CODE = {"email": 1, "web": 2, "phone": 3, "chat": 7, "api": 2}
OUTBOUND_EMAIL = 10
CSAT_CODE = {5: 103, 4: 101, 3: 100, 2: -101, 1: -103}
TIME_ENTRY_ID_BASE = 7_000_000_000
EPOCH_2020 = 1_577_836_800
SUPPORT_EMAIL = "support@deskpulse-sim.freshdesk.com"
MERGE_TEXT = "This ticket is closed and merged into ticket #{target}"
MERGE_TEXT_DE = ("Dieses Ticket wurde geschlossen und mit Ticket "
                 '<a href="https://sim.freshdesk.com/helpdesk/tickets/{target}">#{target}</a> zusammengeführt.')
#: Conversation ``source`` / ``category`` codes (see the module docstring).
SRC_REPLY, SRC_NOTE, SRC_FEEDBACK, SRC_FORWARD, SRC_AUTOMATION = 0, 2, 6, 8, 15
CAT_CUSTOMER, CAT_AGENT_PRIVATE, CAT_AGENT_PUBLIC, CAT_REPLY_TO_FORWARD, CAT_FEEDBACK = 1, 2, 3, 6, 7
VENDOR_CONV_ID_BASE = 8_000_000_000
THIRD_PARTY_EMAIL = "billing-partner@vendor.example"


def iso(ts: int | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _html(text: str) -> str:
    return "<div>" + html.escape(text).replace("\n", "<br>") + "</div>"


def source_code(ticket: Ticket) -> int:
    if ticket.created_by_agent and ticket.channel == "email":
        return OUTBOUND_EMAIL
    return SOURCE_CODE.get(ticket.channel, 2)


def stats(ticket: Ticket) -> dict[str, Any]:
    """``include=stats``: derived from the ticket's status history and messages."""
    resolved = closed = reopened = pending = status_at = None
    for change in ticket.changes:
        if change.field != "status":
            continue
        status_at = change.at
        if change.new == "solved":
            resolved = change.at
        elif change.new == "closed":
            closed = change.at
        if change.old in ("solved", "closed") and change.new not in ("solved", "closed"):
            reopened = change.at
        if change.new == "pending":
            pending = change.at
    if resolved is None and closed is None and ticket.solved_at is not None:
        if ticket.status == "solved":
            resolved = ticket.solved_at
        elif ticket.status == "closed":
            closed = ticket.solved_at
    first_agent = last_agent = last_customer = None
    for message in ticket.messages[1:]:
        if message.role == "agent" and message.public:
            first_agent = message.created_at if first_agent is None else first_agent
            last_agent = message.created_at
        elif message.role == "customer":
            last_customer = message.created_at
    return {
        "agent_responded_at": iso(last_agent),
        "requester_responded_at": iso(last_customer),
        "first_responded_at": iso(first_agent),
        "status_updated_at": iso(status_at or ticket.created_at),
        "reopened_at": iso(reopened),
        "resolved_at": iso(resolved),
        "closed_at": iso(closed),
        "pending_since": iso(pending) if ticket.status == "pending" else None,
    }


def ticket(world: World, tk: Ticket, includes: Iterable[str] = (), *, description: bool = False) -> dict[str, Any]:
    """One ticket as the list (or show) endpoint returns it; ``includes`` from ``include=``."""
    includes = set(includes)
    out: dict[str, Any] = {
        "cc_emails": [], "fwd_emails": [], "reply_cc_emails": [], "ticket_cc_emails": [], "ticket_bcc_emails": [],
        "fr_escalated": False, "spam": tk.spam, "email_config_id": None, "group_id": tk.group_id,
        "priority": PRIORITY_CODE.get(tk.priority, 2), "requester_id": tk.requester_id, "responder_id": tk.assignee_id,
        "source": source_code(tk), "company_id": tk.org_id, "status": STATUS_CODE.get(tk.status, 2),
        "subject": tk.subject, "association_type": None, "support_email": SUPPORT_EMAIL, "to_emails": [SUPPORT_EMAIL],
        "product_id": None, "id": tk.id, "type": None,
        "due_by": iso(tk.created_at + 3 * 86400), "fr_due_by": iso(tk.created_at + 86400), "is_escalated": False,
        "custom_fields": {f"cf_{key}": value for key, value in tk.custom_fields.items()},
        "created_at": iso(tk.created_at), "updated_at": iso(tk.updated_at), "associated_tickets_count": None,
        "tags": list(tk.tags), "structured_description": None, "nr_due_by": None, "nr_escalated": False,
    }
    if tk.deleted:
        out["deleted"] = True
    if description or "description" in includes:
        text = tk.messages[0].body if tk.messages else ""
        out["description"] = _html(text)
        out["description_text"] = text
    if "requester" in includes:
        person = world.person(tk.requester_id)
        out["requester"] = {"id": tk.requester_id, "name": person.name if person else None,
                            "email": person.email if person else None, "mobile": None, "phone": None}
    if "stats" in includes:
        out["stats"] = stats(tk)
    return out


def conversations(world: World, tk: Ticket, *, vendor_extras: bool = True) -> list[dict[str, Any]]:
    """Every conversation after the description, oldest first (``vendor_extras``: see the module docstring)."""
    out = []
    for message in tk.messages[1:]:
        rendered = conversation(world, tk, message)
        if rendered is not None:
            out.append(rendered)
    if vendor_extras:
        out.extend(vendor_conversations(world, tk))
        out.sort(key=lambda c: (c["created_at"], c["id"]))
    return out


def conversation(world: World, tk: Ticket, message: Message) -> dict[str, Any] | None:
    if message.role == "bot":
        return None
    body, private = message.body, not message.public
    user_id: int | None = message.author_id
    html_body: str | None = None
    if message.role == "system":
        if tk.merged_into is None or "merged into" not in message.body:
            return None
        user_id = tk.assignee_id
        if tk.id % 2 == 0:  # public, localized (API-NOTES 6.3)
            html_body = "<div>" + MERGE_TEXT_DE.format(target=tk.merged_into) + "</div>"
            body = f"Dieses Ticket wurde geschlossen und mit Ticket #{tk.merged_into} zusammengeführt."
            private = False
        else:
            body, private = MERGE_TEXT.format(target=tk.merged_into), True
    incoming = message.role == "customer"
    author = world.person(user_id) if user_id is not None else None
    requester = world.person(tk.requester_id)
    category = CAT_CUSTOMER if incoming else (CAT_AGENT_PRIVATE if private else CAT_AGENT_PUBLIC)
    return {
        "body": html_body or _html(body), "body_text": body, "id": message.id, "incoming": incoming,
        "private": private, "user_id": user_id, "support_email": None if incoming else SUPPORT_EMAIL,
        "source": SRC_NOTE if private else SRC_REPLY, "category": category, "ticket_id": tk.id,
        "to_emails": [] if private else ([SUPPORT_EMAIL] if incoming else [requester.email if requester else None]),
        "from_email": (author.email if author else None) if not private else None,
        "cc_emails": [], "bcc_emails": [],
        "created_at": iso(message.created_at), "updated_at": iso(message.created_at), "attachments": [],
    }


def _extra(tk: Ticket, k: int, at: int, body: str, *, source: int, category: int, incoming: bool,
           user_id: int | None, from_email: str | None, to_emails: list[str | None]) -> dict[str, Any]:
    return {
        "body": _html(body), "body_text": body, "id": VENDOR_CONV_ID_BASE + tk.id * 10 + k, "incoming": incoming,
        "private": False, "user_id": user_id, "support_email": None if incoming else SUPPORT_EMAIL,
        "source": source, "category": category, "ticket_id": tk.id, "to_emails": to_emails,
        "from_email": from_email, "cc_emails": [], "bcc_emails": [], "created_at": iso(at), "updated_at": iso(at),
        "attachments": [],
    }


def vendor_conversations(world: World, tk: Ticket) -> list[dict[str, Any]]:
    """Automation notes, forwards (+ the third party's answer) and survey comments, for some tickets.

    Deterministic by ticket id, timed inside the ticket's life (never after ``updated_at``), with ids of
    their own (``VENDOR_CONV_ID_BASE``) so they never collide with the World's messages.
    """
    if tk.deleted or tk.spam or not tk.messages:
        return []
    out: list[dict[str, Any]] = []
    requester = world.person(tk.requester_id)
    requester_email = requester.email if requester else None
    agent = world.person(tk.assignee_id) if tk.assignee_id is not None else None
    last = tk.updated_at
    if tk.id % 5 == 1 and tk.created_at + 30 <= last:
        # An automation rule ("acknowledge new tickets") replies publicly within seconds: not an agent's reply.
        out.append(_extra(tk, 1, tk.created_at + 30, "We have received your request and will be in touch soon.",
                          source=SRC_AUTOMATION, category=CAT_AGENT_PUBLIC, incoming=False, user_id=tk.assignee_id,
                          from_email=SUPPORT_EMAIL, to_emails=[requester_email]))
    agent_times = [m.created_at for m in tk.messages[1:] if m.role == "agent" and m.public]
    if tk.id % 5 == 2 and agent_times and agent_times[0] + 400 <= last:
        at = agent_times[0] + 60
        out.append(_extra(tk, 2, at, "Forwarding this to our billing partner for a second look.",
                          source=SRC_FORWARD, category=CAT_AGENT_PUBLIC, incoming=False, user_id=tk.assignee_id,
                          from_email=agent.email if agent else SUPPORT_EMAIL, to_emails=[THIRD_PARTY_EMAIL]))
        out.append(_extra(tk, 3, at + 300, "Checked on our side: the invoice was issued correctly.",
                          source=SRC_REPLY, category=CAT_REPLY_TO_FORWARD, incoming=True, user_id=None,
                          from_email=THIRD_PARTY_EMAIL, to_emails=[SUPPORT_EMAIL]))
    if tk.rating is not None and tk.rating.comment:
        # The survey comment arrives as a conversation of its own (source "feedback").
        out.append(_extra(tk, 4, tk.rating.created_at, tk.rating.comment, source=SRC_FEEDBACK,
                          category=CAT_FEEDBACK, incoming=True, user_id=tk.requester_id, from_email=requester_email,
                          to_emails=[SUPPORT_EMAIL]))
    return out


def contact(person: Person) -> dict[str, Any]:
    return {
        "active": True, "address": None, "company_id": person.org_id, "description": None, "email": person.email,
        "id": person.id, "job_title": None, "language": "en", "mobile": None, "name": person.name, "phone": None,
        "time_zone": "UTC", "twitter_id": None, "unique_external_id": None, "other_emails": [], "custom_fields": {},
        "created_at": iso(person.created_at), "updated_at": iso(person.updated_at),
    }


def agent(person: Person) -> dict[str, Any]:
    return {
        "available": True, "occasional": False, "id": person.id, "signature": None, "ticket_scope": 1,
        "type": "support_agent", "created_at": iso(person.created_at), "updated_at": iso(person.updated_at),
        "last_active_at": iso(person.updated_at),
        "contact": {"active": True, "email": person.email, "job_title": None, "language": "en",
                    "last_login_at": iso(person.updated_at), "mobile": None, "name": person.name, "phone": None,
                    "time_zone": "UTC", "created_at": iso(person.created_at), "updated_at": iso(person.updated_at)},
    }


def company(org: Org) -> dict[str, Any]:
    return {
        "id": org.id, "name": org.name, "description": None, "domains": [org.domain], "note": None,
        "health_score": None, "account_tier": None, "renewal_date": None, "industry": None,
        "custom_fields": {"arr": org.value}, "created_at": iso(org.created_at),
        "updated_at": iso(org.updated_at or org.created_at),
    }


def group(grp: Group) -> dict[str, Any]:
    return {
        "id": grp.id, "name": grp.name, "description": None, "escalate_to": None, "unassigned_for": None,
        "business_hour_id": None, "group_type": "support_agent_group", "agent_ids": [],
        "created_at": iso(EPOCH_2020), "updated_at": iso(EPOCH_2020),
    }


def rating(tk: Ticket) -> dict[str, Any]:
    assert tk.rating is not None
    return {
        "id": tk.rating.id, "survey_id": 1, "user_id": tk.requester_id, "agent_id": tk.assignee_id,
        "feedback": tk.rating.comment, "group_id": tk.group_id, "ticket_id": tk.id,
        "ratings": {"default_question": CSAT_CODE[tk.rating.score]},
        "created_at": iso(tk.rating.created_at), "updated_at": iso(tk.rating.created_at),
    }


def time_entry_at(tk: Ticket) -> int:
    return tk.solved_at or tk.updated_at


def time_entry(tk: Ticket) -> dict[str, Any]:
    minutes = max(1, round((tk.time_spent_s or 0) / 60))
    at = iso(time_entry_at(tk))
    return {
        "id": TIME_ENTRY_ID_BASE + tk.id, "billable": True, "note": "", "timer_running": False,
        "agent_id": tk.assignee_id, "ticket_id": tk.id, "time_spent": f"{minutes // 60:02d}:{minutes % 60:02d}",
        "executed_at": at, "start_time": at, "created_at": at, "updated_at": at,
    }
