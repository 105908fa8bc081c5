"""Zendesk payloads -> normalized store rows (API-NOTES.md section 1).

Pure functions, no I/O: every quirk of the Zendesk shapes lives here so the
stream machinery (``zendesk_streams.py``) stays generic. A mapper raises
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
- Ratings come only from ``/api/v2/satisfaction_ratings`` (which carries
  ``created_at``, needed to attribute CSAT by rating time); the rating embedded
  in a ticket has no timestamp, so it stays in ``raw`` and is not a second row.
- Comment authors' roles are not in ticket events, so comment rows carry no
  ``author_role``; the stream adds it where the connector knows the user (see ``RoleBook``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from connectors.base import Quarantined
from connectors.errors import ParseError
from connectors.normalize import id_str, require, to_epoch, to_number

Rows = dict[str, list[dict[str, Any]]]

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


def index_metric_sets(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
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
        "created_at": to_epoch(require(ticket, "created_at")),
        "updated_at": to_epoch(ticket.get("updated_at")),
        "solved_at": to_epoch(metric.get("solved_at")) if metric else None,
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


def _event_time(event: dict[str, Any]) -> int:
    """Ticket events carry ``timestamp`` (int) and ``created_at`` (ISO); either will do."""
    value = event.get("timestamp")
    if value is None:
        value = require(event, "created_at")
    epoch = to_epoch(value)
    assert epoch is not None
    return epoch


def _change_field(child: dict[str, Any]) -> str | None:
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
    if field == "status":
        try:
            return normalize_status(value)
        except ParseError:
            return str(value)  # a status we don't know stays visible rather than sinking the whole audit
    return str(value)


def map_ticket_event(event: dict[str, Any]) -> Rows:
    """One audit with its child events -> ``messages`` (comments) and ``ticket_events`` (tracked changes).

    The comment of the audit that created the ticket (it has ``Create`` children) is the description.
    """
    ticket_id = id_str(require(event, "ticket_id"))
    at = _event_time(event)
    actor = id_str(event.get("updater_id"))
    children = [c for c in event.get("child_events") or [] if isinstance(c, Mapping)]
    creates = event.get("event_type") == "Create" or any(c.get("event_type") == "Create" for c in children)
    messages: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    for child in children:
        kind = child.get("event_type")
        if kind == "Comment":
            body = child.get("body")
            if body is None:
                body = child.get("plain_body", child.get("html_body"))
            public = child.get("public", child.get("comment_public", True))
            messages.append({
                "id": id_str(require(child, "id")),
                "ticket_id": ticket_id,
                "author_id": id_str(child.get("author_id")) or actor,
                "public": int(bool(True if public is None else public)),
                "kind": "description" if creates and not messages else "comment",
                "body": body,
                "created_at": to_epoch(child["created_at"]) if child.get("created_at") else at,
                "raw": child,
            })
        elif kind in ("Change", "Create"):
            field = _change_field(child)
            if field is None:
                continue
            new = child.get("value", child.get(field))
            changes.append({
                "id": id_str(require(child, "id")),
                "ticket_id": ticket_id,
                "created_at": at,
                "actor_id": actor,
                "field": field,
                "old_value": _field_value(field, child.get("previous_value")),
                "new_value": _field_value(field, new),
                "raw": child,
            })
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
    """A satisfaction rating -> a ``ratings`` row; ``offered``/``unoffered`` are invitations, not ratings."""
    score = str(require(rating, "score")).lower()
    if score not in CSAT_SCORES:
        return None
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
        "created_at": to_epoch(require(rating, "created_at")),
        "raw": rating,
    }


def map_ticket_field(field: dict[str, Any]) -> dict[str, Any]:
    return {"id": id_str(require(field, "id")), "name": field.get("title"), "type": field.get("type"),
            "raw": field}


def map_group(group: dict[str, Any]) -> dict[str, Any]:
    return {"id": id_str(require(group, "id")), "name": group.get("name"), "raw": group}


MAPPING_ERRORS = (ParseError, KeyError, TypeError, ValueError, AttributeError, AssertionError)


def map_records(stream: str, items: Iterable[Any], to_rows: Callable[[dict[str, Any]], Rows],
                tables: Iterable[str]) -> tuple[Rows, list[Quarantined]]:
    """Map each record; one that fails goes to quarantine with its error while the rest still go through."""
    rows: Rows = {table: [] for table in tables}
    bad: list[Quarantined] = []
    for item in items:
        try:
            if not isinstance(item, dict):
                raise ParseError(f"expected an object, got {type(item).__name__}")
            mapped = to_rows(item)
        except MAPPING_ERRORS as exc:
            record_id = id_str(item.get("id")) if isinstance(item, Mapping) else None
            bad.append(Quarantined(stream, record_id, f"{type(exc).__name__}: {exc}", item))
            continue
        for table, table_rows in mapped.items():
            rows.setdefault(table, []).extend(table_rows)
    return rows, bad
