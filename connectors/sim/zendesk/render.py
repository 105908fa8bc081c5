"""World objects in Zendesk's shapes: tickets, metric sets, users, organizations, ratings, audits.

Pure functions over the world (no simulator state), so they are easy to test
and to cache. Choices that are ours where Zendesk's docs are silent (see
API-NOTES.md section 1, UNCONFIRMED items):

- ``on_hold`` is Zendesk's ``hold``; deleted and spam tickets export as
  ``status: "deleted"``; a merged-away ticket is ``closed`` with the tag
  ``closed_by_merge``.
- ``priority`` is null for some tickets (normal priority and ``id % 5 == 0``):
  Zendesk leaves it unset unless someone picks one; severity maps null and
  ``normal`` alike, so KPIs do not move.
- CSAT is binary: 4-5 -> ``good``, 1-2 -> ``bad``, and a neutral 3 -> ``good``
  when the rating id is even, ``bad`` when odd (deterministic, about half each).
- Bot and system messages are authored by Zendesk's system user (-1).
- Metric minutes are whole minutes, rounded down; business minutes count
  Mon-Fri 09:00-17:00 UTC (an approximation of an account schedule).
- Ids in ticket-event values (``assignee_id``, ``group_id``) are strings, as
  in Zendesk audits; every Change/Create child carries both ``field_name`` +
  ``value`` and the field as its own key, so either reading parses.
- Legacy CSAT: a rating record exists from the moment the survey is offered
  (``score: "offered"``, ``created_at`` = offer) and the answer updates it
  (``updated_at`` = answer; API-NOTES 6.2, OAS example created 2009 / updated
  2011). The survey goes out 24 hours after a ticket is solved (Zendesk's default
  satisfaction automation, help article 203662256), or with the answer when the
  world's customer rated sooner. Solved tickets that were never rated keep an
  ``offered`` record (id ``OFFERED_ID_BASE + ticket id``); deleted, spam and
  merged-away tickets get none.
- Tickets handled by an AI agent (``support_type_scope``, see ``is_ai_agent``):
  the world has no AI agents, so a fixed tenth of chat tickets stands for them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from connectors.sim.model import Change, Message, Org, Person, Rating, Ticket

STATUS = {"on_hold": "hold"}
VIA = {"email": "email", "web": "web", "chat": "chat", "phone": "voice", "api": "api"}
SYSTEM_USER = -1
TIME_FIELD_ID = 360900  # the Time Tracking app's "Total time spent (sec)" field
METRIC_ID_BASE = 20_000_000_000
AUDIT_ID_BASE = 10**12
CREATE_ID_BASE = 3 * 10**12
SYSTEM_FIELDS = (
    (100001, "subject", "Subject"), (100002, "description", "Description"), (100003, "status", "Status"),
    (100004, "tickettype", "Type"), (100005, "priority", "Priority"), (100006, "group", "Group"),
    (100007, "assignee", "Assignee"),
)
_INCIDENT_AREAS = frozenset({"performance", "mobile", "api", "integrations"})
_DAYS: dict[int, str] = {}
DAY = 86400
_OPEN, _CLOSE = 9 * 3600, 17 * 3600
_WEEKDAYS_BEFORE = (0, 1, 2, 2, 2, 3, 4)  # weekdays among the first r days of a week starting on Thursday


_HMS: list[str] = [f"{h:02d}:{m:02d}:{s:02d}Z" for h in range(24) for m in range(60) for s in range(60)]
_QDAYS: dict[int, str] = {}


def iso(ts: int | None) -> str | None:
    """Unix seconds -> ``2024-01-01T00:00:00Z``; day and time-of-day strings are tables (millions of calls)."""
    if ts is None:
        return None
    day, sec = divmod(int(ts), DAY)
    text = _DAYS.get(day)
    if text is None:
        text = _DAYS[day] = datetime.fromtimestamp(day * DAY, UTC).strftime("%Y-%m-%dT")
    return text + _HMS[sec]


_SPAN = _CLOSE - _OPEN
ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False)  # reused: half the cost of json.dumps(...)


def _business_until(ts: int) -> int:
    """Business seconds (Mon-Fri 09-17 UTC) from the epoch up to ``ts``: O(1), no loop over days."""
    day = ts // DAY
    full = (day // 7 * 5 + _WEEKDAYS_BEFORE[day % 7]) * _SPAN
    if (day + 3) % 7 < 5:
        sec = ts - day * DAY
        if sec > _OPEN:
            full += sec - _OPEN if sec < _CLOSE else _SPAN
    return full


def business_seconds(start: int, end: int) -> int:
    return max(0, _business_until(end) - _business_until(start))


def zd_status(ticket: Ticket) -> str:
    if ticket.deleted or ticket.spam:
        return "deleted"
    return STATUS.get(ticket.status, ticket.status)


def zd_priority(ticket_id: int, value: str | None) -> str | None:
    return None if value == "normal" and ticket_id % 5 == 0 else value


SURVEY_DELAY = 86400  # Zendesk's default "Request customer satisfaction rating" automation: 24 h after solved
OFFERED_ID_BASE = 9_500_000_000  # above the world's rating ids (9,000,000,001 on): never the id of two things


def is_ai_agent(t: Ticket) -> bool:
    """Whether the simulator treats ``t`` as handled by an AI agent (hidden unless ``support_type_scope``
    asks for it: the Incremental Exports reference lists "all", "agent" or "ai_agent", default "agent")."""
    return t.channel == "chat" and t.id % 10 == 3


def survey_offered_at(t: Ticket) -> int | None:
    """When the legacy CSAT survey was offered for ``t`` (its rating record's ``created_at``), or None."""
    if t.rating is not None:
        return t.rating.created_at if t.solved_at is None else min(t.solved_at + SURVEY_DELAY, t.rating.created_at)
    if t.solved_at is None or t.deleted or t.spam or t.merged_into is not None:
        return None
    return t.solved_at + SURVEY_DELAY


def rating_record_id(t: Ticket) -> int:
    return t.rating.id if t.rating is not None else OFFERED_ID_BASE + t.id


def csat_score(rating: Rating) -> str:
    if rating.score >= 4:
        return "good"
    if rating.score <= 2:
        return "bad"
    return "good" if rating.id % 2 == 0 else "bad"


def ticket_tags(ticket: Ticket) -> list[str]:
    tags = list(ticket.tags)
    if ticket.merged_into is not None and "closed_by_merge" not in tags:
        tags.append("closed_by_merge")
    return tags


# Ticket and metric JSON are written from templates rather than dicts + json.dumps: a 1000-ticket export
# page with metric sets must render in tens of milliseconds at 100k tickets, and the template is about
# three times faster. The template is the single source: ``render_ticket``/``render_metrics`` parse it.
_str = json.encoder.encode_basestring_ascii  # C-accelerated JSON string


def _val(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return _str(value)
    return ENCODER.encode(value)


def _int(value: int | None) -> str:
    return "null" if value is None else str(int(value))


def _ts(value: int | None) -> str:
    """A JSON timestamp string or null (hot path: inlined table lookups, no call to ``iso``)."""
    if value is None:
        return "null"
    day, sec = divmod(value, DAY)
    text = _QDAYS.get(day)
    if text is None:
        text = _QDAYS[day] = '"' + (iso(day * DAY) or "")[:11]
    return text + _HMS[sec] + '"'


_RECIPIENT = '"support@helpdesk.example"'
_TICKET_TAIL = ('"external_id":null,"collaborator_ids":[],"follower_ids":[],"email_cc_ids":[],"forum_topic_id":null,'
                '"problem_id":null,"has_incidents":false,"is_public":true,"due_at":null,"sharing_agreement_ids":[],'
                '"followup_ids":[],"ticket_form_id":360000001,"brand_id":360000002,"allow_channelback":false,'
                '"allow_attachments":true}')


def ticket_bytes(t: Ticket, gen_ts: int, base: str, field_ids: dict[str, int]) -> bytes:
    """One ticket as the incremental export (and ``GET /tickets/{id}``) shows it, as compact JSON."""
    custom = ",".join(f'{{"id":{fid},"value":{_val(t.custom_fields.get(key))}}}' for key, fid in field_ids.items())
    custom = f'[{custom}{"," if custom else ""}{{"id":{TIME_FIELD_ID},"value":{_int(t.time_spent_s)}}}]'
    submitter = t.messages[0].author_id if t.messages else (t.assignee_id if t.created_by_agent else t.requester_id)
    if t.rating is not None:
        rating = (f'{{"id":{t.rating.id},"score":"{csat_score(t.rating)}","comment":{_val(t.rating.comment)}}}')
    else:
        rating = '{"score":"offered"}' if t.solved_at is not None else '{"score":"unoffered"}'
    subject = _str(t.subject)
    kind = "incident" if t.custom_fields.get("product_area") in _INCIDENT_AREAS else "question"
    return (
        f'{{"url":{_str(f"{base}/api/v2/tickets/{t.id}.json")},"id":{t.id},'
        f'"via":{{"channel":{_str(VIA.get(t.channel, t.channel))},"source":{{"from":{{}},"to":{{}},"rel":null}}}},'
        f'"created_at":{_ts(t.created_at)},"updated_at":{_ts(t.updated_at)},"generated_timestamp":{gen_ts},'
        f'"type":"{kind}","subject":{subject},"raw_subject":{subject},'
        f'"description":{_str(t.messages[0].body) if t.messages else subject},'
        f'"priority":{_val(zd_priority(t.id, t.priority))},"status":"{zd_status(t)}",'
        f'"recipient":{_RECIPIENT if t.channel == "email" else "null"},'
        f'"requester_id":{t.requester_id},"submitter_id":{_int(submitter)},"assignee_id":{_int(t.assignee_id)},'
        f'"organization_id":{_int(t.org_id)},"group_id":{_int(t.group_id)},"tags":{ENCODER.encode(ticket_tags(t))},'
        f'"custom_fields":{custom},"fields":{custom},"satisfaction_rating":{rating},'
        f'"from_messaging_channel":{"true" if t.channel == "chat" else "false"},{_TICKET_TAIL}'
    ).encode()


def render_ticket(t: Ticket, gen_ts: int, base: str, field_ids: dict[str, int]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(ticket_bytes(t, gen_ts, base, field_ids))
    return result


def initial_value(t: Ticket, name: str, current: Any) -> Any:
    """A tracked field's value at creation: the ``old`` of its first change, else its current value."""
    for change in t.changes:
        if change.field == name:
            return change.old
    return current


def metric_bytes(t: Ticket, gen_ts: int, base: str) -> bytes:
    """The ticket_metric shape (fixtures/zendesk_ticket_metric.json) computed from the world's events, as JSON."""
    first_reply = latest_comment = requester_updated = assignee_updated = None
    replies = 0
    for i, m in enumerate(t.messages):
        latest_comment = m.created_at
        if m.role == "customer":
            requester_updated = m.created_at
        elif m.role == "agent" and m.public and not (i == 0 and t.created_by_agent):
            replies += 1
            assignee_updated = m.created_at
            if first_reply is None:
                first_reply = m.created_at
    created = t.created_at
    created_b = since_b = _business_until(created)
    status = initial_value(t, "status", t.status)
    since, first_solve, last_status_at = created, None, created
    first_solve_b = 0
    reopens = group_stations = 0
    wait = [0, 0, 0]  # requester (new/open/hold), agent (pending), on hold: calendar seconds
    wait_b = [0, 0, 0]
    assigned: list[int] = [] if initial_value(t, "assignee_id", t.assignee_id) is None else [created]
    for c in t.changes:
        if c.field != "status":
            if c.field == "assignee_id" and c.new is not None:
                assigned.append(c.at)
            elif c.field == "group_id":
                group_stations += 1
            continue
        at_b = _business_until(c.at)
        slot = 0 if status in ("new", "open", "on_hold") else (1 if status == "pending" else -1)
        if slot >= 0:
            wait[slot] += c.at - since
            wait_b[slot] += at_b - since_b
            if status == "on_hold":
                wait[2] += c.at - since
                wait_b[2] += at_b - since_b
        done_before, done_after = status in ("solved", "closed"), c.new in ("solved", "closed")
        if done_after and not done_before and first_solve is None:
            first_solve, first_solve_b = c.at, at_b
        if done_before and not done_after:
            reopens += 1
        status, since, since_b, last_status_at = c.new, c.at, at_b, c.at
    solved = t.solved_at is not None

    def minutes(end: int | None, end_b: int | None = None) -> str:
        if end is None:
            return '{"calendar":null,"business":null}'
        business = (_business_until(end) if end_b is None else end_b) - created_b
        return f'{{"calendar":{(end - created) // 60},"business":{business // 60}}}'

    def waited(slot: int) -> str:
        if not solved and slot != 2:
            return '{"calendar":null,"business":null}'
        return f'{{"calendar":{wait[slot] // 60},"business":{wait_b[slot] // 60}}}'

    mid = METRIC_ID_BASE + t.id
    status_at = _ts(last_status_at)
    return (
        f'{{"url":{_str(f"{base}/api/v2/ticket_metrics/{mid}.json")},"id":{mid},"ticket_id":{t.id},'
        f'"created_at":{_ts(created)},"updated_at":{_ts(t.updated_at)},"group_stations":{group_stations + 1},'
        f'"assignee_stations":{len(assigned)},"reopens":{reopens},"replies":{replies},'
        f'"assignee_updated_at":{_ts(assignee_updated)},"requester_updated_at":{_ts(requester_updated)},'
        f'"status_updated_at":{status_at},"initially_assigned_at":{_ts(assigned[0] if assigned else None)},'
        f'"assigned_at":{_ts(assigned[-1] if assigned else None)},"solved_at":{_ts(t.solved_at)},'
        f'"latest_comment_added_at":{_ts(latest_comment)},"reply_time_in_minutes":{minutes(first_reply)},'
        f'"first_resolution_time_in_minutes":{minutes(first_solve, first_solve_b if first_solve else None)},'
        f'"full_resolution_time_in_minutes":{minutes(t.solved_at)},"agent_wait_time_in_minutes":{waited(1)},'
        f'"requester_wait_time_in_minutes":{waited(0)},"on_hold_time_in_minutes":{waited(2)},'
        f'"custom_status_updated_at":{status_at},"generated_timestamp":{gen_ts}}}'
    ).encode()


def render_metrics(t: Ticket, gen_ts: int, base: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(metric_bytes(t, gen_ts, base))
    return result


def render_user(p: Person, base: str, admin_id: int | None) -> dict[str, Any]:
    role = "end-user" if p.role == "customer" else ("admin" if p.id == admin_id else "agent")
    return {
        "id": p.id, "url": f"{base}/api/v2/users/{p.id}.json", "name": p.name, "email": p.email,
        "created_at": iso(p.created_at), "updated_at": iso(p.updated_at), "time_zone": "UTC",
        "iana_time_zone": "Etc/UTC", "phone": None, "photo": None, "locale_id": 1, "locale": "en-US",
        "organization_id": p.org_id, "role": role, "verified": True, "external_id": None, "tags": [], "alias": None,
        "active": True, "shared": False, "shared_agent": False, "last_login_at": None, "signature": None,
        "details": None, "notes": None, "role_type": None, "custom_role_id": None, "moderator": role != "end-user",
        "ticket_restriction": "requested" if role == "end-user" else None, "only_private_comments": False,
        "restricted_agent": False, "suspended": False, "default_group_id": None, "user_fields": {},
    }


def render_org(o: Org, base: str) -> dict[str, Any]:
    return {
        "url": f"{base}/api/v2/organizations/{o.id}.json", "id": o.id, "name": o.name, "shared_tickets": False,
        "shared_comments": False, "external_id": None, "created_at": iso(o.created_at),
        "updated_at": iso(o.updated_at or o.created_at), "domain_names": [o.domain], "details": "", "notes": "",
        "group_id": None, "tags": [], "organization_fields": {"arr": o.value},
    }


def render_rating(t: Ticket, base: str) -> dict[str, Any]:
    """The ticket's legacy CSAT record: ``offered`` until answered, then the score (see the module notes)."""
    r = t.rating
    offered = survey_offered_at(t)
    assert offered is not None
    rid = rating_record_id(t)
    if r is None:
        return {
            "url": f"{base}/api/v2/satisfaction_ratings/{rid}.json", "id": rid, "assignee_id": t.assignee_id,
            "group_id": t.group_id, "requester_id": t.requester_id, "ticket_id": t.id, "score": "offered",
            "comment": None, "reason": "No reason provided", "reason_id": None, "reason_code": 0,
            "created_at": iso(offered), "updated_at": iso(offered),
        }
    score = csat_score(r)
    return {
        "url": f"{base}/api/v2/satisfaction_ratings/{rid}.json", "id": rid, "assignee_id": t.assignee_id,
        "group_id": t.group_id, "requester_id": t.requester_id, "ticket_id": t.id, "score": score,
        "comment": r.comment, "reason": "No reason provided" if score == "good" or r.score == 3 else "Other",
        "reason_id": None, "reason_code": 0 if score == "good" else 100,
        "created_at": iso(offered), "updated_at": iso(r.created_at),
    }


# -- ticket events (audits) --------------------------------------------------------------------------
Item = Message | Change | Rating | str  # "create" stands for the creation children


def audit_groups(t: Ticket) -> list[tuple[int, list[Item]]]:
    """The ticket's world history as audits: everything that happened at one second is one audit.

    Deterministic and cheap (no dicts): the event index calls it for every ticket to learn the
    timestamps, the renderer calls it again for the few audits on a page.
    """
    groups: list[tuple[int, list[Item]]] = [(t.created_at, ["create"])]
    msgs, changes = t.messages, t.changes
    i = j = 0
    while i < len(msgs) or j < len(changes):
        if j >= len(changes) or (i < len(msgs) and msgs[i].created_at <= changes[j].at):
            item: Item = msgs[i]
            at = msgs[i].created_at
            i += 1
        else:
            item, at = changes[j], changes[j].at
            j += 1
        if at <= groups[-1][0]:
            groups[-1][1].append(item)
        else:
            groups.append((at, [item]))
    if t.rating is not None:
        if t.rating.created_at <= groups[-1][0]:
            groups[-1][1].append(t.rating)
        else:
            groups.append((t.rating.created_at, [t.rating]))
    return groups


def _value(t: Ticket, name: str, value: Any) -> str | None:
    if value is None:
        return None
    if name == "status":
        return STATUS.get(str(value), str(value))
    if name == "priority":
        return zd_priority(t.id, str(value))
    return str(value)


def change_child(child_id: int, kind: str, name: str, value: Any, previous: Any, *,
                 with_previous: bool = True) -> dict[str, Any]:
    child: dict[str, Any] = {"id": child_id, "event_type": kind, "field_name": name, "value": value, name: value}
    if with_previous:
        child["previous_value"] = previous
    return child


def creation_fields(t: Ticket) -> tuple[int, str, tuple[tuple[str, Any], ...]]:
    """The creation audit's updater, channel and the (field, initial value) pairs of its Create children."""
    first = t.messages[0] if t.messages else None
    updater = first.author_id if first is not None else t.requester_id
    initial = (("status", initial_value(t, "status", t.status)),
               ("priority", initial_value(t, "priority", t.priority)),
               ("group_id", initial_value(t, "group_id", t.group_id)),
               ("assignee_id", initial_value(t, "assignee_id", t.assignee_id)),
               ("requester_id", t.requester_id), ("subject", t.subject))
    return updater, VIA.get(t.channel, "web"), initial


def render_audit(t: Ticket, k: int, ts: int, items: list[Item], comments: bool) -> dict[str, Any]:
    """Audit ``k`` of ticket ``t`` as an incremental ticket_events item (comments only when asked for)."""
    audit_id = AUDIT_ID_BASE + (t.id << 12) + k
    children: list[dict[str, Any]] = []
    updater: int | None = None
    via = "web"
    for item in items:
        if isinstance(item, Message):
            author = item.author_id if item.role in ("customer", "agent") else SYSTEM_USER
            if updater is None:
                updater = author
                via = VIA.get(t.channel, "web") if item.role == "customer" else ("web" if author > 0 else "rule")
            if comments:
                children.append({"id": item.id, "event_type": "Comment", "type": "Comment", "author_id": author,
                                 "body": item.body, "public": item.public, "attachments": [], "audit_id": audit_id,
                                 "created_at": iso(item.created_at)})
        elif isinstance(item, Change):
            if updater is None:
                updater = item.actor_id if item.actor_id is not None else SYSTEM_USER
                via = "web" if item.actor_id is not None else "rule"
            children.append(change_child(item.id, "Change", item.field, _value(t, item.field, item.new),
                                         _value(t, item.field, item.old)))
        elif isinstance(item, Rating):
            if updater is None:
                updater, via = t.requester_id, "web"
            children.append({"id": item.id, "event_type": "SatisfactionRating", "score": csat_score(item),
                             "comment": item.comment, "assignee_id": t.assignee_id})
        else:  # creation: one Create child per field, with the values the ticket started with
            updater, via, initial = creation_fields(t)
            for n, (name, value) in enumerate(initial):
                children.append(change_child(CREATE_ID_BASE + t.id * 16 + n, "Create", name, _value(t, name, value),
                                             None, with_previous=False))
    return {"id": audit_id, "ticket_id": t.id, "timestamp": ts, "created_at": iso(ts),
            "updater_id": updater if updater is not None else SYSTEM_USER, "via": via, "via_reference_id": None,
            "system": {"client": "deskpulse-sim", "ip_address": None}, "event_type": "Audit",
            "child_events": children}
