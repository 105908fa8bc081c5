"""Zendesk payloads -> normalized store rows (API-NOTES.md section 1).

Pure functions, no I/O: every quirk of the Zendesk shapes lives here so the
stream machinery (``streams.py``) stays generic. A mapper raises
``ParseError`` (or lets ``KeyError``/``TypeError``/``ValueError`` escape) for a
record it cannot store; the caller quarantines that one record and keeps the
rest of the page.

Choices that are not obvious from the payloads:

- ``hold`` is Zendesk's name for the normalized ``on_hold``; the vendor word is
  kept in ``vendor_status``.
- Zendesk has no spam flag on exported tickets: spam is deleted, so it shows as
  ``status='deleted'`` (excluded from KPIs anyway). ``is_spam`` is 1 only when a
  marker exists (an ``is_spam`` attribute or a ``spam`` tag on a deleted ticket).
- A merged-away ticket is closed with the tag ``closed_by_merge``.
- Ratings come only from ``/api/v2/satisfaction_ratings`` (legacy CSAT); the
  rating embedded in a ticket has no timestamp, so it stays in ``raw`` and is not
  a second row. A rating record is created when the survey is *offered* and
  updated when the customer answers (API-NOTES 6.2; the OAS example is created
  2009, updated 2011), so a received score's time is its ``updated_at``:
  ``created_at`` is the offer. ``offered``/``unoffered`` records are no rating.
- Comment authors' roles are not in ticket events, so comment rows carry no
  ``author_role``; the stream adds it where the connector knows the user (see ``RoleBook``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.errors import ParseError
from connectors.mapping import Rows
from connectors.normalize import id_str, require, to_epoch, to_number

STATUS_MAP = {
    "new": "new", "open": "open", "pending": "pending", "hold": "on_hold", "on_hold": "on_hold",
    "solved": "solved", "closed": "closed", "deleted": "deleted",
}
TRACKED_FIELDS = ("status", "priority", "group_id", "assignee_id")
AGENT_ROLES = frozenset({"agent", "admin"})
CSAT_SCORES = {"good": 5.0, "bad": 1.0}
SYSTEM_USER_ID = "-1"  # Zendesk's updater_id for automations, triggers and other system changes


def normalize_status(value: Any) -> str:
    """Zendesk status -> normalized status; an unknown status is a parse error, never a guess."""
    status = STATUS_MAP.get(str(value).lower()) if value is not None else None
    if status is None:
        raise ParseError(f"unknown ticket status {value!r}")
    return status


def _minutes_to_s(metric: Mapping[str, Any], key: str) -> int | None:
    """``{"calendar": m, "business": m}`` -> calendar seconds (None when Zendesk has no value yet)."""
    value = metric.get(key)
    if not isinstance(value, Mapping):
        return None
    minutes = value.get("calendar")
    return None if minutes is None else int(round(float(minutes) * 60))


def _as_int(value: Any) -> int | None:
    return None if value is None else int(value)


def index_metric_sets(body: dict[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Side-loaded ``metric_sets`` of a ticket export page, by ticket id."""
    return {str(m["ticket_id"]): m for m in body.get("metric_sets") or () if isinstance(m, Mapping)
            and m.get("ticket_id") is not None}


def custom_fields(ticket: dict[str, Any]) -> dict[str, Any]:
    """``[{"id": 27642, "value": "745"}]`` -> ``{"27642": "745"}``; ``fields`` is the legacy alias."""
    items = ticket.get("custom_fields")
    if items is None:
        items = ticket.get("fields") or []
    return {str(item["id"]): item.get("value") for item in items}


def is_spam(ticket: dict[str, Any], tags: list[str]) -> int:
    if ticket.get("is_spam") is True:
        return 1
    return int(str(ticket.get("status")).lower() == "deleted" and "spam" in tags)


def map_ticket(ticket: dict[str, Any], metrics: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One exported ticket (plus its side-loaded metric set, if any) -> a ``tickets`` row."""
    ticket_id = id_str(require(ticket, "id"))
    vendor_status = require(ticket, "status")
    tags = [str(t) for t in ticket.get("tags") or []]
    metric = metrics.get(str(ticket_id))
    via = ticket.get("via") or {}
    priority = ticket.get("priority")
    return {
        "id": ticket_id,
        "subject": ticket.get("subject"),
        "status": normalize_status(vendor_status),
        "vendor_status": str(vendor_status),
        "priority": None if priority is None else str(priority),
        "channel": via.get("channel") if isinstance(via, Mapping) else None,
        "requester_id": id_str(ticket.get("requester_id")),
        "organization_id": id_str(ticket.get("organization_id")),
        "assignee_id": id_str(ticket.get("assignee_id")),
        "group_id": id_str(ticket.get("group_id")),
        "tags": tags,
        "custom_fields": custom_fields(ticket),
        "created_at": fast_epoch(require(ticket, "created_at")),
        "updated_at": fast_epoch(ticket.get("updated_at")),
        "solved_at": fast_epoch(metric.get("solved_at")) if metric else None,
        "is_spam": is_spam(ticket, tags),
        "is_merged": int("closed_by_merge" in tags),
        "vendor_first_reply_s": _minutes_to_s(metric, "reply_time_in_minutes") if metric else None,
        "vendor_first_resolution_s": _minutes_to_s(metric, "first_resolution_time_in_minutes") if metric else None,
        "vendor_full_resolution_s": _minutes_to_s(metric, "full_resolution_time_in_minutes") if metric else None,
        "vendor_reopens": _as_int(metric.get("reopens")) if metric else None,
        "vendor_replies": _as_int(metric.get("replies")) if metric else None,
        "vendor_metrics": metric,
        "raw": ticket,
    }


_DAY_EPOCH: dict[str, int] = {}  # "2024-01-31" -> unix seconds of that midnight UTC (bounded below)
_DIGITS = frozenset("0123456789")


def fast_epoch(value: Any) -> int | None:
    """``to_epoch`` with a fast path for Zendesk's own ``YYYY-MM-DDTHH:MM:SSZ`` (millions per full sync).

    The date part is parsed once per day (``to_epoch``, cached); the time of day is arithmetic on
    validated ASCII digits. Anything else, or any doubt, goes to ``to_epoch``: same result, same errors.
    """
    if value.__class__ is int:
        return value
    if (value.__class__ is str and len(value) == 20 and value[19] == "Z" and value[10] == "T"
            and value[13] == ":" and value[16] == ":"):
        hh, mm, ss = value[11:13], value[14:16], value[17:19]
        if _DIGITS.issuperset(hh + mm + ss):
            h, m, sec = int(hh), int(mm), int(ss)
            if h < 24 and m < 60 and sec < 60:
                day = _DAY_EPOCH.get(value[:10])
                if day is None:
                    try:
                        day = to_epoch(value[:10] + "T00:00:00Z")
                    except ParseError:
                        return to_epoch(value)
                    assert day is not None
                    if len(_DAY_EPOCH) >= 100_000:
                        _DAY_EPOCH.clear()
                    _DAY_EPOCH[value[:10]] = day
                return day + h * 3600 + m * 60 + sec
    return to_epoch(value)


def _event_time(event: dict[str, Any]) -> int:
    """Ticket events carry ``timestamp`` (int) and ``created_at`` (ISO); either will do."""
    value = event.get("timestamp")
    if value is None:
        value = require(event, "created_at")
    epoch = fast_epoch(value)
    assert epoch is not None
    return epoch


def _change_field(child: Mapping[str, Any]) -> str | None:
    """The tracked field a Change/Create child is about: ``field_name``, or the field as its own key."""
    name = child.get("field_name")
    if name is not None:
        return str(name) if name in TRACKED_FIELDS else None
    for candidate in TRACKED_FIELDS:
        if candidate in child:
            return candidate
    return None


def _field_value(field: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    text = str(value)
    if field == "status":  # a status we don't know stays visible rather than sinking the whole audit
        return STATUS_MAP.get(text.lower(), text)
    return text


_MISSING: Any = object()


def map_ticket_event(event: dict[str, Any]) -> Rows:
    """One audit with its child events -> ``messages`` (comments) and ``ticket_events`` (tracked changes).

    The comment of the audit that created the ticket (it has ``Create`` children) is the description.
    Written as one flat loop with the helpers inlined: this runs once per audit, ~10 per ticket, and
    was the largest item of a full sync's profile.
    """
    ticket_id = id_str(require(event, "ticket_id"))
    ts = event.get("timestamp")
    at = ts if ts.__class__ is int else _event_time(event)
    updater = event.get("updater_id")
    actor = None if updater is None or updater == "" else str(updater)
    creates = event.get("event_type") == "Create"
    messages: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    for child in event.get("child_events") or ():
        if child.__class__ is not dict and not isinstance(child, Mapping):
            continue
        kind = child.get("event_type")
        if kind == "Comment":
            child_id = child.get("id")
            if child_id is None:
                raise ParseError("missing required field 'id'")
            body = child.get("body")
            if body is None:
                body = child.get("plain_body", child.get("html_body"))
            public = child.get("public", _MISSING)
            if public is _MISSING:
                public = child.get("comment_public", True)
            author = child.get("author_id")
            created = child.get("created_at")
            messages.append({
                "id": None if child_id == "" else str(child_id),
                "ticket_id": ticket_id,
                "author_id": actor if author is None or author == "" else str(author),
                "public": 1 if public is None or public else 0,
                "kind": "comment",  # the description is marked after the loop (a Create may come later)
                "body": body,
                "created_at": fast_epoch(created) if created else at,
                "raw": child,
            })
        elif kind == "Change" or kind == "Create":
            if kind == "Create":
                creates = True
            name = child.get("field_name")
            if name is None:
                field = _change_field(child)
                if field is None:
                    continue
            elif name in TRACKED_FIELDS:
                field = str(name)
            else:
                continue
            child_id = child.get("id")
            if child_id is None:
                raise ParseError("missing required field 'id'")
            new = child.get("value", _MISSING)
            if new is _MISSING:
                new = child.get(field)
            changes.append({
                "id": None if child_id == "" else str(child_id),
                "ticket_id": ticket_id,
                "created_at": at,
                "actor_id": actor,
                "field": field,
                "old_value": _field_value(field, child.get("previous_value")),
                "new_value": _field_value(field, new),
                "raw": child,
            })
    if creates and messages:
        messages[0]["kind"] = "description"
    return {"messages": messages, "ticket_events": changes}


def map_user(user: dict[str, Any]) -> dict[str, Any]:
    """A Zendesk user -> a ``people`` row; agents and admins are ``agent``, end-users ``customer``."""
    return {
        "id": id_str(require(user, "id")),
        "name": user.get("name"),
        "email": user.get("email"),
        "role": "agent" if str(user.get("role")).lower() in AGENT_ROLES else "customer",
        "organization_id": id_str(user.get("organization_id")),
        "external_id": id_str(user.get("external_id")),
        "created_at": to_epoch(user.get("created_at")),
        "updated_at": to_epoch(user.get("updated_at")),
        "raw": user,
    }


def map_organization(org: dict[str, Any], value_field: str) -> dict[str, Any]:
    """An organization -> an ``organizations`` row; ``value`` from ``organization_fields[value_field]``."""
    fields = org.get("organization_fields") or {}
    return {
        "id": id_str(require(org, "id")),
        "name": org.get("name"),
        "value": to_number(fields.get(value_field)) if isinstance(fields, Mapping) else None,
        "created_at": to_epoch(org.get("created_at")),
        "updated_at": to_epoch(org.get("updated_at")),
        "raw": org,
    }


def map_rating(rating: dict[str, Any]) -> dict[str, Any] | None:
    """A satisfaction rating -> a ``ratings`` row, timed by the answer (``updated_at``).

    ``offered``/``unoffered`` are invitations, not ratings: no row (KPIs never see them as a score).
    """
    score = str(require(rating, "score")).lower()
    if score not in CSAT_SCORES:
        return None
    answered = to_epoch(rating.get("updated_at"))
    return {
        "id": id_str(require(rating, "id")),
        "ticket_id": id_str(rating.get("ticket_id")),
        "requester_id": id_str(rating.get("requester_id")),
        "assignee_id": id_str(rating.get("assignee_id")),
        "kind": "csat",
        "score_raw": score,
        "score_1_5": CSAT_SCORES[score],
        "score": None,  # Zendesk CSAT has no native number; score_raw/score_1_5 carry it
        "comment": rating.get("comment"),
        "created_at": answered if answered is not None else to_epoch(require(rating, "created_at")),
        "raw": rating,
    }


def map_ticket_field(field: dict[str, Any]) -> dict[str, Any]:
    return {"id": id_str(require(field, "id")), "name": field.get("title"), "type": field.get("type"),
            "raw": field}


def map_group(group: dict[str, Any]) -> dict[str, Any]:
    return {"id": id_str(require(group, "id")), "name": group.get("name"), "raw": group}
