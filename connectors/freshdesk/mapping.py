"""Freshdesk v2 payloads -> normalized store rows (API-NOTES.md section 2).

Pure functions, no I/O: the Freshdesk quirks live here so the stream code in
``streams.py`` stays about paging and cursors. A mapper raises
``ParseError`` (or lets ``KeyError``/``TypeError``/``ValueError`` escape) for a
record it cannot store; the caller quarantines that record and keeps the rest.

Choices that are not obvious from the payloads:

- Status: 2 open, 3 pending, 4 resolved -> ``solved``, 5 closed. Any other number
  is an account-defined custom status (Freshdesk's defaults 6 "Waiting on
  Customer", 7 "Waiting on Third Party"); those count as ``open``, and the number
  stays in ``vendor_status`` so a report can still split them out.
- ``spam`` tickets and tickets from the ``filter=deleted`` listing are kept with
  ``status='deleted'`` (``is_spam=1`` for spam): KPIs exclude them, nothing is dropped.
- Priority is kept as the vendor number in text ("1".."4"); the sync engine turns
  it into a severity through the configurable map.
- ``solved_at`` comes from ``stats`` (``include=stats``): the latest of
  ``resolved_at``/``closed_at``, except that a close following a resolve with no
  reopen in between is Freshdesk's auto-close of an already solved ticket, so the
  resolve time is the solve time then (``KPIS.md``: full resolution ends at the
  latest *transition* to solved/closed, not at a solved -> closed step).
- The description is the first customer message (``desc-<ticket id>``). On an
  outbound email (source 10) an agent wrote it, so it is an agent message there.
- Merges: Freshdesk closes the merged-away (secondary) ticket and adds the note the agent chose,
  public or private (merge API ``note_in_secondary: {body, private}``), whose default text is
  localized ("This ticket is closed and merged into ticket #N" in English; freshconsult
  ``api/lib/ticket_merge.rb``; API-NOTES 6.3). No ticket field in the v2 payload says "merged", so
  ``is_merged`` is set by either signal: the English note (``is_merge_note``, any visibility), or,
  in any language, a closed ticket with an outgoing note or reply written at its close that points
  at another ticket (``#N`` or a ``/tickets/N`` link: ``looks_merged``).
- Conversation roles (``source``/``category``, API-NOTES 6.3): automation-rule notes and status/meta
  items are ``system``; a forwarded email is the agent's, but private (it is not a reply to the
  customer), and a third party's answer to it is ``system``; survey feedback is the customer's
  text, kept as ``kind='feedback'`` and out of the public conversation. See ``map_conversation``.
- CSAT (``ratings.default_question``): Freshdesk's custom-survey scale is 103
  (extremely happy), 102, 101, 100 (neutral), -101, -102, -103; 3-point surveys use
  103/100/-103, and classic accounts report 1 (awesome) / 2 (just okay) / 3 (not good).
  ``score_1_5`` is a monotone map that keeps ``KPIS.md``'s "satisfied" set (101..103,
  or classic 1) at >= 4, neutral at 3, unhappy at <= 2: see ``CSAT_1_5``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from connectors.errors import ParseError
from connectors.normalize import html_to_text, id_str, require, to_epoch

STATUS_MAP = {2: "open", 3: "pending", 4: "solved", 5: "closed"}
CHANNEL_MAP = {1: "email", 2: "web", 3: "phone", 7: "chat", 9: "web", 10: "email"}
OUTBOUND_EMAIL = 10

#: Freshdesk rating value -> 1..5. Custom surveys (7/5/3/2-point) share the +-101..103 values; classic 1/2/3.
CSAT_1_5: dict[int, float] = {
    103: 5.0, 102: 4.5, 101: 4.0, 100: 3.0, -101: 2.0, -102: 1.5, -103: 1.0,
    1: 5.0, 2: 3.0, 3: 1.0,
}

_MERGE_NOTE = re.compile(r"\bmerged into (ticket|request)\b", re.I)
_TICKET_REF = re.compile(r"(?:#|/tickets/)(\d+)\b")
MERGE_NOTE_WINDOW_S = 3600  # the secondary's note is written by a background job after the close

#: Conversation ``source`` codes: the order of Freshdesk's note sources (freshconsult
#: ``app/models/helpdesk/source/constants.rb`` NOTE_SOURCES: email 0, form 1, note 2, status 3, meta 4,
#: twitter 5, feedback 6, facebook 7, forward_email 8, phone 9, mobihelp 10, mobihelp_app_review 11,
#: ecommerce 12, summary 13, canned_form 14, automation_rule 15, automation_rule_forward 16; the public API
#: reference lists 0 reply, 2 note, 5 tweet, 6 survey feedback, 7 Facebook post, 8 forwarded email).
CONV_FEEDBACK = 6
CONV_FORWARD = 8
CONV_SYSTEM_SOURCES = frozenset({3, 4, 13, 15, 16})  # status, meta, summary, automation rule (+ its forward)
#: Conversation ``category`` (freshconsult ``app/models/helpdesk/note/constants.rb`` CATEGORIES):
#: 1 customer, 2 agent private, 3 agent public, 4 third party, 5 meta, 6 reply to a forward,
#: 7 customer feedback, 8 broadcast.
CAT_THIRD_PARTY = frozenset({4, 6})
CAT_META = 5
CAT_FEEDBACK = 7


def _ts(record: Mapping[str, Any], key: str) -> int:
    """A timestamp the record cannot be stored without."""
    raw = record.get(key)
    if raw is None:
        raise ParseError(f"missing required field '{key}'")
    try:
        value = to_epoch(raw)
    except ParseError as exc:
        raise ParseError(f"{key}: {exc}") from None
    if value is None:
        raise ParseError(f"empty timestamp '{key}'")
    return value


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise ParseError(f"{what} is not a number: {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ParseError(f"{what} is not a number: {value!r}") from None


def normalize_status(code: Any, *, spam: bool = False, deleted: bool = False) -> str:
    """Freshdesk status number -> normalized status (custom statuses count as ``open``)."""
    number = _int(code, "status")
    if spam or deleted:
        return "deleted"
    return STATUS_MAP.get(number, "open")


def channel(source_code: Any) -> str:
    """Freshdesk ``source`` code -> channel; codes we do not know become ``other``."""
    try:
        return CHANNEL_MAP.get(int(source_code), "other")
    except (TypeError, ValueError):
        return "other"


def solved_at(stats: Mapping[str, Any]) -> int | None:
    """The latest transition to solved/closed that the stats let us see (see the module docstring)."""
    resolved = to_epoch(stats.get("resolved_at"))
    closed = to_epoch(stats.get("closed_at"))
    reopened = to_epoch(stats.get("reopened_at"))
    if resolved is not None and closed is not None and closed > resolved and (reopened is None or reopened < resolved):
        return resolved
    candidates = [t for t in (resolved, closed) if t is not None]
    return max(candidates) if candidates else None


def map_ticket(ticket: Mapping[str, Any], *, deleted: bool = False, spam: bool = False) -> dict[str, Any]:
    """One listed ticket (``include=stats,requester,description``) -> a ``tickets`` row.

    ``deleted``/``spam``: the ticket came from the ``filter=deleted``/``filter=spam`` listing.
    """
    ticket_id = id_str(require(ticket, "id"))
    status_code = require(ticket, "status")
    spam = spam or bool(ticket.get("spam"))
    is_deleted = deleted or bool(ticket.get("deleted"))
    created = _ts(ticket, "created_at")
    updated = _ts(ticket, "updated_at")
    stats = ticket.get("stats")
    if stats is not None and not isinstance(stats, Mapping):
        raise ParseError("stats is not an object")
    stats = stats or {}
    first_responded = to_epoch(stats.get("first_responded_at"))
    tags = ticket.get("tags") or []
    if not isinstance(tags, list):
        raise ParseError("tags is not a list")
    custom = ticket.get("custom_fields") or {}
    if not isinstance(custom, Mapping):
        raise ParseError("custom_fields is not an object")
    priority = ticket.get("priority")
    return {
        "id": ticket_id,
        "subject": ticket.get("subject"),
        "status": normalize_status(status_code, spam=spam, deleted=is_deleted),
        "vendor_status": str(status_code),
        "priority": None if priority is None else str(priority),
        "channel": channel(ticket.get("source")),
        "requester_id": id_str(ticket.get("requester_id")),
        "organization_id": id_str(ticket.get("company_id")),
        "assignee_id": id_str(ticket.get("responder_id")),
        "group_id": id_str(ticket.get("group_id")),
        "tags": [str(t) for t in tags],
        "custom_fields": dict(custom),
        "created_at": created,
        "updated_at": updated,
        "solved_at": solved_at(stats),
        "is_spam": int(spam),
        "is_merged": 0,
        "vendor_first_reply_s": None if first_responded is None else first_responded - created,
        # Freshdesk keeps only the latest reopen: "reopened at least once" is exact for the reopen rate and a
        # lower bound for reopens_total (no status history exists to count more).
        "vendor_reopens": (1 if stats.get("reopened_at") else 0) if stats else None,
        "vendor_metrics": dict(stats) if stats else None,
        "raw": dict(ticket),
    }


def map_description(ticket: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ticket's description as its first message (None when the listing did not include it)."""
    body = ticket.get("description_text")
    if body is None:
        body = html_to_text(ticket.get("description"))
    if body is None:
        return None
    ticket_id = id_str(require(ticket, "id"))
    by_agent = ticket.get("source") == OUTBOUND_EMAIL
    return {
        "id": f"desc-{ticket_id}",
        "ticket_id": ticket_id,
        "author_id": id_str(ticket.get("responder_id")) if by_agent else id_str(ticket.get("requester_id")),
        "author_role": "agent" if by_agent else "customer",
        "public": 1,
        "kind": "description",
        "body": body,
        "created_at": _ts(ticket, "created_at"),
        "raw": {"ticket_id": ticket.get("id"), "source": ticket.get("source"),
                "description": ticket.get("description")},
    }


def _opt_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def conversation_role(conv: Mapping[str, Any], *, requester_id: str | None,
                      agent_ids: Collection[str]) -> tuple[str, str, bool]:
    """(author_role, kind, public) of one conversation, from ``source``/``category`` first.

    Automation notes, status/meta items and third-party answers to a forward are ``system``; a forward
    is the agent's but private (not a reply to the customer); survey feedback is the customer's text
    (``kind='feedback'``), not part of the public conversation, so it never counts as an interaction or
    an unanswered customer message. Otherwise ``incoming`` is the primary signal (true: the customer
    wrote it). An outgoing, public item whose author is the requester and not a known agent is also the
    customer's (e.g. a reply an agent forwarded on the customer's behalf shows as outgoing but keeps the
    contact as user); everything else outgoing is an agent's.
    """
    private = bool(conv.get("private"))
    source = _opt_int(conv.get("source"))
    category = _opt_int(conv.get("category"))
    if source in CONV_SYSTEM_SOURCES or category == CAT_META:
        return "system", "automation" if source in (15, 16) else "system", not private
    if source == CONV_FEEDBACK or category == CAT_FEEDBACK:
        return "customer", "feedback", False
    if category in CAT_THIRD_PARTY:
        return "system", "third_party", False
    if source == CONV_FORWARD:
        return "agent", "forward", False
    user_id = id_str(conv.get("user_id"))
    kind = "note" if private else "comment"
    if conv.get("incoming"):
        return "customer", kind, not private
    if not private and user_id is not None and user_id == requester_id and agent_ids and user_id not in agent_ids:
        return "customer", kind, True
    return "agent", kind, not private


def map_conversation(conv: Mapping[str, Any], *, ticket_id: str, requester_id: str | None,
                     agent_ids: Collection[str]) -> dict[str, Any]:
    """One conversation -> a ``messages`` row (role, kind and visibility: ``conversation_role``)."""
    conv_id = id_str(require(conv, "id"))
    role, kind, public = conversation_role(conv, requester_id=requester_id, agent_ids=agent_ids)
    body = conv.get("body_text")
    if body is None:
        body = html_to_text(conv.get("body"))
    return {
        "id": conv_id,
        "ticket_id": id_str(conv.get("ticket_id")) or ticket_id,
        "author_id": id_str(conv.get("user_id")),
        "author_role": role,
        "public": int(public),
        "kind": kind,
        "body": body,
        "created_at": _ts(conv, "created_at"),
        "raw": dict(conv),
    }


def is_merge_note(message: Mapping[str, Any]) -> bool:
    """A note or reply, public or private, saying in English that the ticket was merged into another one."""
    return message.get("author_role") != "customer" and bool(_MERGE_NOTE.search(message.get("body") or ""))


def looks_merged(ticket: Mapping[str, Any], messages: Collection[Mapping[str, Any]]) -> bool:
    """A merge in any language: the ticket is closed (5) and an outgoing note or reply written at its close
    (``stats.closed_at`` up to ``MERGE_NOTE_WINDOW_S`` later) points at another ticket (``#N``, ``/tickets/N``).

    The merge closes the secondary ticket and then adds the agent's note (freshconsult
    ``api/lib/ticket_merge.rb``: ``close_source_ticket``, then the ``MergeTickets`` job); the note's text
    is whatever the agent's language made of the default, but it names the primary ticket.
    """
    if str(ticket.get("vendor_status")) != "5":
        return False
    closed = to_epoch((ticket.get("vendor_metrics") or {}).get("closed_at"))
    if closed is None:
        return False
    own = str(ticket.get("id"))
    for message in messages:
        raw = message.get("raw") or {}
        if message.get("author_role") == "customer" or (isinstance(raw, Mapping) and raw.get("incoming")):
            continue
        if not closed - 60 <= int(message.get("created_at") or 0) <= closed + MERGE_NOTE_WINDOW_S:
            continue
        text = f"{raw.get('body') or ''} {message.get('body') or ''}" if isinstance(raw, Mapping) else \
            str(message.get("body") or "")
        if any(ref != own for ref in _TICKET_REF.findall(text)):
            return True
    return False


def map_requester(requester: Any) -> dict[str, Any] | None:
    """The side-loaded requester -> a partial ``people`` row (no role: contacts/agents streams own it)."""
    if not isinstance(requester, Mapping) or requester.get("id") is None:
        return None
    return {"id": id_str(requester["id"]), "name": requester.get("name"), "email": requester.get("email")}


def map_contact(contact: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": id_str(require(contact, "id")),
        "name": contact.get("name"),
        "email": contact.get("email"),
        "role": "customer",
        "organization_id": id_str(contact.get("company_id")),
        "external_id": id_str(contact.get("unique_external_id")),
        "created_at": to_epoch(contact.get("created_at")),
        "updated_at": to_epoch(contact.get("updated_at")),
        "raw": dict(contact),
    }


def map_agent(agent: Mapping[str, Any]) -> dict[str, Any]:
    """Agents nest their name and email in ``contact``."""
    contact = agent.get("contact") or {}
    if not isinstance(contact, Mapping):
        raise ParseError("agent contact is not an object")
    return {
        "id": id_str(require(agent, "id")),
        "name": contact.get("name"),
        "email": contact.get("email"),
        "role": "agent",
        "created_at": to_epoch(agent.get("created_at")),
        "updated_at": to_epoch(agent.get("updated_at")),
        "raw": dict(agent),
    }


def map_company(company: Mapping[str, Any], value_field: str) -> dict[str, Any]:
    """Customer value sits in a company custom field (unprefixed name, e.g. ``arr``)."""
    custom = company.get("custom_fields") or {}
    if not isinstance(custom, Mapping):
        raise ParseError("custom_fields is not an object")
    raw_value = custom.get(value_field)
    try:
        value = None if raw_value is None or raw_value == "" else float(raw_value)
    except (TypeError, ValueError):
        value = None  # a non-numeric value field is the account's data, not a broken record
    return {
        "id": id_str(require(company, "id")),
        "name": company.get("name"),
        "value": value,
        "created_at": to_epoch(company.get("created_at")),
        "updated_at": to_epoch(company.get("updated_at")),
        "raw": dict(company),
    }


def map_group(group: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": id_str(require(group, "id")), "name": group.get("name"), "raw": dict(group)}


def csat_value(rating: Mapping[str, Any]) -> int:
    """The rating's ``ratings.default_question`` value (the overall satisfaction question)."""
    ratings = rating.get("ratings")
    if not isinstance(ratings, Mapping) or ratings.get("default_question") is None:
        raise ParseError("rating has no ratings.default_question")
    return _int(ratings["default_question"], "ratings.default_question")


def map_rating(rating: Mapping[str, Any]) -> dict[str, Any]:
    value = csat_value(rating)
    score = CSAT_1_5.get(value)
    if score is None:
        raise ParseError(f"unknown satisfaction value {value}")
    return {
        "id": id_str(require(rating, "id")),
        "ticket_id": id_str(rating.get("ticket_id")),
        "requester_id": id_str(rating.get("user_id")),
        "assignee_id": id_str(rating.get("agent_id")),
        "kind": "csat",
        "score_raw": str(value),
        "score_1_5": score,
        "score": float(value),
        "comment": rating.get("feedback"),
        "created_at": _ts(rating, "created_at"),
        "raw": dict(rating),
    }


def hhmm_seconds(value: Any) -> int:
    """Freshdesk ``time_spent`` ``"hh:mm"`` -> seconds."""
    match = re.fullmatch(r"\s*(\d+):(\d{1,2})\s*", str(value or ""))
    if not match:
        raise ParseError(f"time_spent is not hh:mm: {value!r}")
    return int(match.group(1)) * 3600 + int(match.group(2)) * 60


def map_time_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    """``created_at`` is when the work was done (``executed_at``), the time AHT attributes it to."""
    return {
        "id": id_str(require(entry, "id")),
        "ticket_id": id_str(entry.get("ticket_id")),
        "agent_id": id_str(entry.get("agent_id")),
        "seconds": hhmm_seconds(entry.get("time_spent")),
        "created_at": to_epoch(entry.get("executed_at") or require(entry, "created_at")),
        "raw": dict(entry),
    }
