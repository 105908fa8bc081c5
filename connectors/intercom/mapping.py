"""Intercom payloads -> normalized store rows (API-NOTES.md section 3).

Pure functions, no I/O. A mapper raises ``ParseError`` (or lets ``KeyError`` /
``TypeError`` / ``ValueError`` escape) for a record it cannot store; the caller
quarantines that one record and keeps the rest of the page.

Choices that are not obvious from the payloads:

- State: ``open`` -> ``open``, ``snoozed`` -> ``pending`` (waiting, not on the
  team's plate), ``closed`` -> ``closed``. Intercom has no "solved" step; KPIS
  treats solved and closed alike, and the vendor word stays in ``vendor_status``.
- A conversation has no "new" state; one without an admin reply is ``open``.
- Priority stays Intercom's text (2.11: ``priority`` / ``not_priority``; 2.16:
  ``none``/``low``/``medium``/``high``/``urgent``, OAS 2.16 ``conversation.priority``),
  except that 2.16's ``none`` is stored as ``not_priority`` (the same meaning, so
  one severity-map entry serves both versions); the engine maps it to a severity.
  Priority changes are not visible as conversation parts, so Intercom gives no
  ``priority`` ticket events.
- Vendor timings come from the ``statistics`` *timestamps* minus ``created_at``
  (``first_admin_reply_at``, ``first_close_at``, ``last_close_at``): the
  ``time_to_*`` durations leave out time outside office hours and count from the
  customer's first message (OAS ``conversation_statistics``; API-NOTES 6.1), so
  they are not calendar seconds from creation. They stay in ``vendor_metrics``.
- Effort (AHT) is ``statistics.adjusted_handling_time`` (active time, OAS 2.16),
  never ``handling_time`` (wall clock from assignment to close). Versions before
  2.16 have no adjusted figure (2.11 has neither), so AHT is null there.
- A rating is dated when the customer answered: ``conversation_rating.updated_at``
  (2.16); without it (2.11) only ``created_at`` exists, which is when the rating was
  *requested* (OAS text), so 2.11 ratings are dated at the request.
- A merged-away conversation (one with a ``merged_secondary_conversation`` part) is
  ``is_merged`` = 1 and so left out of KPIs, like Zendesk's ``closed_by_merge``.
  The surviving primary carries a ``merged_primary_conversation`` part (OAS 2.16
  merge example: the part is on the primary the endpoint returns) and stays in.
- ``source`` (the opening message) is the ``description``; every part with a
  body is a message. Author ``admin``/``team`` -> agent, ``user``/``lead``/
  ``contact`` -> customer, ``bot`` -> bot (Fin, workflows, the "Operator" that
  records attribute updates: never an agent reply). ``note`` parts are private.
- Parts that change state (``open``/``close``/``snoozed``/...) or assignment
  become ``ticket_events`` (``status`` with normalized values, ``assignee_id``,
  ``group_id``), whether or not they also carry a body (a user reply to a closed
  conversation is an ``open`` part *with* a body: a message and a reopen).
- ``organization_id`` is the requester's company, resolved by the connector
  (the conversation payload does not carry it) and passed in.
- Intercom returns only the 500 most recent parts; when the payload says more
  exist, ``vendor_metrics.parts_truncated`` is true and the earliest parts are
  missing (whatever an earlier sync stored of them stays stored).
- HTML bodies become plain text with the stdlib parser (each block/paragraph
  one line, blank lines dropped, entities unescaped): sentiment and search need
  words, not markup.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.errors import ParseError
from connectors.mapping import Rows
from connectors.normalize import html_to_text, id_str, require, to_epoch, to_number

PARTS_CAP = 500  # "we will return the 500 most recent conversation parts" (API-NOTES 3.2)

STATE_MAP = {"open": "open", "snoozed": "pending", "closed": "closed"}
# Part types that move the conversation's state, and the normalized status they lead to.
STATUS_PARTS = {
    "open": "open", "close": "closed", "snoozed": "pending", "unsnoozed": "open", "timer_unsnooze": "open",
    "snooze": "pending", "assign_and_reopen": "open", "note_and_reopen": "open", "away_mode_reopen": "open",
}
ASSIGN_PARTS = frozenset({"assignment", "default_assignment", "away_mode_assignment", "assign_and_reopen",
                          "assign_and_unsnooze", "assignment_rule"})
#: Part on the merged-away (secondary) conversation; the primary gets ``merged_primary_conversation``.
MERGED_AWAY_PART = "merged_secondary_conversation"
#: 2.16's "no priority" in the 2.11 word the severity map knows.
PRIORITY_ALIASES = {"none": "not_priority"}
ATTRIBUTE_PARTS = frozenset({"conversation_attribute_updated_by_admin", "conversation_attribute_updated_by_workflow",
                             "conversation_attribute_updated_by_user"})
PRIVATE_PARTS = frozenset({"note", "note_and_reopen"})
AUTHOR_ROLES = {"admin": "agent", "team": "agent", "user": "customer", "lead": "customer", "contact": "customer",
                "bot": "bot"}
SOCIAL = frozenset({"facebook", "twitter", "instagram", "whatsapp", "sms"})


# -- helpers ------------------------------------------------------------------------------------------
def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int_or_none(value: Any) -> int | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    try:
        return int(float(str(value)))
    except ValueError:
        return None


def _assigned_id(value: Any) -> str | None:
    """``admin_assignee_id``/``team_assignee_id``: 0 and null both mean unassigned."""
    text = id_str(value)
    return None if text in (None, "0") else text


def author_role(author: Any) -> str:
    return AUTHOR_ROLES.get(str(_obj(author).get("type") or "").lower(), "system")


def channel_of(source: Mapping[str, Any]) -> str | None:
    """``source.type``/``delivered_as`` -> email, chat, phone, api (or the social network's name)."""
    kind = str(source.get("type") or "").lower()
    delivered = str(source.get("delivered_as") or "").lower()
    if kind == "email":
        return "email"
    if kind.startswith("phone"):
        return "phone"
    if kind in SOCIAL:
        return kind
    if delivered == "automated":
        return "api"
    if kind in ("conversation", "chat", "push", "messenger"):
        return "chat"
    return kind or None


def requester_of(conv: Mapping[str, Any]) -> str | None:
    """The first contact on the conversation (``contacts.contacts[0].id``)."""
    contacts = _obj(conv.get("contacts")).get("contacts") or []
    for contact in contacts:
        cid = id_str(_obj(contact).get("id"))
        if cid:
            return cid
    return None


def parse_list_item(item: Any) -> tuple[str, int]:
    """A search result's (id, updated_at): what the stream needs before deciding to fetch it."""
    if not isinstance(item, Mapping):
        raise ParseError(f"search item is not an object: {type(item).__name__}")
    cid = id_str(require(item, "id"))
    updated = to_epoch(require(item, "updated_at"))
    if cid is None or updated is None:
        raise ParseError("search item without id/updated_at")
    return cid, updated


# -- conversations ------------------------------------------------------------------------------------
def _since_created(stats: Mapping[str, Any], key: str, created: int) -> int | None:
    """A statistics timestamp as calendar seconds since creation (None when absent or before creation)."""
    at = _int_or_none(stats.get(key))
    return at - created if at is not None and at >= created else None


def _statistics_metrics(conv: Mapping[str, Any], created: int, closed: bool) -> dict[str, Any]:
    """Vendor timings from the timestamps, never from ``time_to_*`` (office hours only, from the customer's
    first message: OAS ``conversation_statistics``)."""
    stats = _obj(conv.get("statistics"))
    return {
        "vendor_first_reply_s": _since_created(stats, "first_admin_reply_at", created),
        "vendor_first_resolution_s": _since_created(stats, "first_close_at", created),
        "vendor_full_resolution_s": _since_created(stats, "last_close_at", created) if closed else None,
        "vendor_reopens": _int_or_none(stats.get("count_reopens")),
    }


def map_priority(value: Any) -> str | None:
    """Intercom's priority text; 2.16's ``none`` becomes 2.11's ``not_priority``."""
    text = id_str(value)
    return PRIORITY_ALIASES.get(text.lower(), text) if text is not None else None


def _parts(conv: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], bool, int | None]:
    """The parts in time order, whether Intercom cut older ones off, and the total it reports."""
    block = _obj(conv.get("conversation_parts"))
    raw_parts = block.get("conversation_parts") or []
    if not isinstance(raw_parts, list):
        raise ParseError("conversation_parts.conversation_parts is not a list")
    parts = [p for p in raw_parts if isinstance(p, Mapping)]
    total = _int_or_none(block.get("total_count"))
    counted = _int_or_none(_obj(conv.get("statistics")).get("count_conversation_parts"))
    truncated = len(parts) >= PARTS_CAP or (total is not None and total > len(parts)) or (
        counted is not None and counted > len(parts) and len(parts) >= PARTS_CAP)
    parts.sort(key=lambda p: (to_epoch(p.get("created_at")) or 0, _int_or_none(p.get("id")) or 0))
    return parts, truncated, total


def map_conversation(conv: Mapping[str, Any], *, organization_id: str | None = None,
                     synced_at: int | None = None) -> tuple[Rows, bool]:
    """A retrieved conversation (with parts) -> tickets, messages, ticket_events, ratings; and the cap flag."""
    cid = id_str(require(conv, "id"))
    if cid is None:
        raise ParseError("conversation without id")
    created = to_epoch(require(conv, "created_at"))
    updated = to_epoch(require(conv, "updated_at"))
    if created is None or updated is None:
        raise ParseError("conversation without created_at/updated_at")
    state = str(conv.get("state") or ("open" if conv.get("open") else "closed")).lower()
    status = STATE_MAP.get(state, state)
    closed = status == "closed"
    parts, truncated, total = _parts(conv)
    source = _obj(conv.get("source"))
    requester = requester_of(conv)
    tags = [str(_obj(t).get("name")) for t in _obj(conv.get("tags")).get("tags") or [] if _obj(t).get("name")]
    custom = conv.get("custom_attributes")
    stats = conv.get("statistics")
    messages: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    body = html_to_text(source.get("body"))
    if body:
        messages.append({
            "id": f"src-{cid}", "ticket_id": cid, "author_id": id_str(_obj(source.get("author")).get("id")),
            "author_role": author_role(source.get("author")), "public": 1, "kind": "description", "body": body,
            "created_at": created, "raw": dict(source),
        })
    last_close = None
    prev: dict[str, str | None] = {"status": None if truncated else "open", "assignee_id": None, "group_id": None}
    for part in parts:
        rows_msg, rows_evt = _map_part(cid, part, prev)
        messages.extend(rows_msg)
        events.extend(rows_evt)
        for evt in rows_evt:
            if evt["field"] == "status" and evt["new_value"] == "closed":
                last_close = evt["created_at"]
    stats_obj = _obj(stats)
    solved_at = None
    if closed:
        solved_at = (_int_or_none(stats_obj.get("last_close_at")) or last_close
                     or _int_or_none(stats_obj.get("first_close_at")))
    metrics: dict[str, Any] = dict(stats_obj)
    metrics.pop("type", None)
    metrics["parts_returned"] = len(parts)
    if total is not None:
        metrics["parts_total"] = total
    if truncated:
        metrics["parts_truncated"] = True
    raw = {k: v for k, v in conv.items() if k != "conversation_parts"}
    subject = html_to_text(conv.get("title")) or html_to_text(source.get("subject")) or None
    ticket = {
        "id": cid, "subject": subject, "status": status, "vendor_status": state,
        "priority": map_priority(conv.get("priority")), "channel": channel_of(source),
        "requester_id": requester, "organization_id": organization_id,
        "assignee_id": _assigned_id(conv.get("admin_assignee_id")),
        "group_id": _assigned_id(conv.get("team_assignee_id")), "tags": tags,
        "custom_fields": dict(custom) if isinstance(custom, Mapping) else {},
        "created_at": created, "updated_at": updated, "solved_at": solved_at, "is_spam": 0,
        "is_merged": int(any(str(p.get("part_type") or "").lower() == MERGED_AWAY_PART for p in parts)),
        **_statistics_metrics(conv, created, closed), "vendor_metrics": metrics, "raw": raw,
    }
    if synced_at is not None:
        ticket["synced_at"] = synced_at
    ratings = []
    rating = map_rating(cid, conv.get("conversation_rating"), requester, ticket["assignee_id"])
    if rating is not None:
        ratings.append(rating)
    effort = []
    # Intercom's active handling time (2.16): the effort aht_mean_s needs. Not handling_time (wall clock).
    handling = _int_or_none(stats_obj.get("adjusted_handling_time"))
    if handling is not None and handling > 0:
        effort.append({"id": f"handling-{cid}", "ticket_id": cid, "agent_id": ticket["assignee_id"],
                       "seconds": handling, "created_at": solved_at or updated,
                       "raw": {"adjusted_handling_time": handling}})
    return {"tickets": [ticket], "messages": messages, "ticket_events": events, "ratings": ratings,
            "time_entries": effort}, truncated


def _map_part(cid: str, part: Mapping[str, Any], prev: dict[str, str | None]) -> tuple[list[dict], list[dict]]:
    """One part -> (messages, ticket_events); ``prev`` tracks old values across the ordered parts."""
    pid = id_str(require(part, "id"))
    part_type = str(part.get("part_type") or "").lower()
    at = to_epoch(require(part, "created_at"))
    author = _obj(part.get("author"))
    actor = id_str(author.get("id"))
    messages: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    text = html_to_text(part.get("body")) if not part.get("redacted") else None
    if text:
        messages.append({
            "id": pid, "ticket_id": cid, "author_id": actor, "author_role": author_role(author),
            "public": 0 if part_type in PRIVATE_PARTS else 1, "kind": "comment", "body": text,
            "created_at": at, "raw": dict(part),
        })

    def event(field: str, new: str | None) -> None:
        events.append({"id": pid if field == "status" else f"{pid}:{field}", "ticket_id": cid, "created_at": at,
                       "actor_id": actor, "field": field, "old_value": prev.get(field), "new_value": new,
                       "raw": dict(part)})
        prev[field] = new

    if part_type in STATUS_PARTS:
        event("status", STATUS_PARTS[part_type])
    if part_type in ASSIGN_PARTS:
        target = _obj(part.get("assigned_to"))
        kind = str(target.get("type") or "").lower()
        if kind == "team":
            event("group_id", _assigned_id(target.get("id")))
        elif kind in ("admin", "nobody_admin"):
            event("assignee_id", None if kind == "nobody_admin" else _assigned_id(target.get("id")))
    if part_type in ATTRIBUTE_PARTS and not text:
        event("custom_attributes", None)
    return messages, events


def map_rating(cid: str, rating: Any, requester: str | None, assignee: str | None) -> dict[str, Any] | None:
    """``conversation_rating`` (1-5) -> a csat ``ratings`` row with id ``conv-<id>``; no rating -> None.

    Dated at ``updated_at`` (2.16: the customer's answer) when present, else at ``created_at`` (2.11: only
    when the rating was requested)."""
    obj = _obj(rating)
    score = _int_or_none(obj.get("rating"))
    if score is None:
        return None
    if not 1 <= score <= 5:
        raise ParseError(f"conversation_rating.rating out of range: {score}")
    return {
        "id": f"conv-{cid}", "ticket_id": cid,
        "requester_id": id_str(_obj(obj.get("contact")).get("id")) or requester,
        "assignee_id": id_str(_obj(obj.get("teammate")).get("id")) or assignee,
        "kind": "csat", "score_raw": str(score), "score_1_5": float(score), "score": float(score),
        "comment": obj.get("remark") or None,
        "created_at": to_epoch(obj.get("updated_at")) or to_epoch(obj.get("created_at")), "raw": dict(obj),
    }


# -- people, companies, teams -------------------------------------------------------------------------
def contact_company(contact: Mapping[str, Any]) -> str | None:
    """The first company a contact belongs to (``companies.data[0].id``; older payloads: ``companies[0]``)."""
    companies = contact.get("companies")
    items: Any = companies.get("data") or companies.get("companies") if isinstance(companies, Mapping) else companies
    for item in items or []:
        cid = id_str(_obj(item).get("id"))
        if cid:
            return cid
    return None


def map_contact(contact: Mapping[str, Any]) -> dict[str, Any]:
    """A contact (role ``user`` or ``lead``) -> a customer ``people`` row."""
    return {
        "id": id_str(require(contact, "id")), "name": contact.get("name"), "email": contact.get("email"),
        "role": "customer", "organization_id": contact_company(contact),
        "external_id": id_str(contact.get("external_id")),
        "created_at": to_epoch(contact.get("created_at")), "updated_at": to_epoch(contact.get("updated_at")),
        "raw": dict(contact),
    }


def map_admin(admin: Mapping[str, Any]) -> dict[str, Any]:
    """An admin (teammate) -> an agent ``people`` row."""
    return {
        "id": id_str(require(admin, "id")), "name": admin.get("name"), "email": admin.get("email"),
        "role": "agent", "organization_id": None, "external_id": None, "raw": dict(admin),
    }


def map_team(team: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": id_str(require(team, "id")), "name": team.get("name"), "raw": dict(team)}


def map_company(company: Mapping[str, Any], value_attribute: str) -> dict[str, Any]:
    """A company -> an ``organizations`` row; value from ``custom_attributes[attr]`` or a top-level field
    of that name (e.g. ``monthly_spend``); created_at prefers ``remote_created_at`` (when the customer
    really started) over when Intercom first saw the company."""
    attrs = _obj(company.get("custom_attributes"))
    raw_value = attrs.get(value_attribute) if value_attribute in attrs else company.get(value_attribute)
    return {
        "id": id_str(require(company, "id")), "name": company.get("name"), "value": to_number(raw_value),
        "created_at": to_epoch(company.get("remote_created_at")) or to_epoch(company.get("created_at")),
        "updated_at": to_epoch(company.get("updated_at")), "raw": dict(company),
    }
