"""The Intercom REST API 2.x simulator (API-NOTES section 3 and 5.3), rendering a neutral World.

Endpoints: ``POST /conversations/search``, ``GET /conversations``,
``GET|PUT /conversations/{id}``, ``POST /conversations/{id}/tags``,
``DELETE /conversations/{id}/tags/{tag_id}``, ``POST /contacts/search``,
``GET /contacts[/{id}]``, ``GET /companies/scroll``, ``GET /companies[/{id}]``,
``GET /admins``, ``GET /teams``, ``GET|POST /tags``.

Faithful to the documented contract: Bearer auth (401 ``unauthorized`` "Access
Token Invalid", without rate-limit headers), the ``error.list`` envelope
everywhere, 10-second rate-limit windows with ``X-RateLimit-Limit/-Remaining/
-Reset`` and a 429 ``rate_limit_exceeded`` that carries **no** Retry-After,
inclusive search bounds, per_page <= 150, parts only on retrieve and capped to
the most recent ``parts_cap``, tag attach needing ``id`` + ``admin_id``, and a
custom-attribute PUT appending one bot-authored
``conversation_attribute_updated_by_admin`` part per attribute and bumping
``updated_at``. Deleted and spam tickets are invisible (search and GET):
Intercom publishes no tombstones, so deletions cannot be observed through its
API. A merged-away ticket is served closed, with a ``merged_secondary_conversation``
part (OAS 2.16 ``POST /conversations/{id}/merge``: the secondary "is closed and
linked to the primary"; see ``render.py``). Responses take the shape of
the ``Intercom-Version`` request header (``default_version`` without one, like
an app's package setting; ``render.rendering``). Sim choices: every
write moves ``updated_at`` forward by at least one second;
``limit_per_window=None`` means unlimited and no rate-limit headers;
``known_admins_only`` makes tag calls check ``admin_id`` (404
``admin_not_found``); ``inclusive=False`` reads ``>``/``<`` strictly (the
UNCONFIRMED alternative); ``honor_sort=False`` ignores ``sort`` (id order).
Fault kinds ``html``/``garbage``/``shape``/``no_id`` mangle the 2xx answer of
a write call (``IntercomSim.BAD_ANSWERS``).
Rendering lives in ``render.py``, the query language in
``search.py``, the directory endpoints in ``directory.py``.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from connectors.sim.base import SimRequest, SimResponse, Simulator
from connectors.sim.intercom.directory import DirectoryRoutes, locked
from connectors.sim.intercom.render import (
    CONTACT_BASE,
    OFFICE_HOURS,
    OPERATOR,
    RENDERINGS,
    Renderer,
    company_id,
    intercom_priority,
    intercom_state,
    rendering,
)
from connectors.sim.intercom.search import SearchError, SearchSpace
from connectors.sim.model import Message, Ticket, World

ERROR_CODES = {400: "parameter_invalid", 401: "unauthorized", 403: "api_plan_restricted", 404: "not_found",
               422: "data_invalid", 429: "rate_limit_exceeded", 500: "server_error", 502: "server_error",
               503: "service_unavailable", 504: "server_error"}

CONVERSATION_FIELDS: dict[str, Callable[[Ticket], Any]] = {
    "id": lambda t: str(t.id), "created_at": lambda t: t.created_at, "updated_at": lambda t: t.updated_at,
    "state": lambda t: intercom_state(t.status), "open": lambda t: intercom_state(t.status) != "closed",
    "priority": lambda t: intercom_priority(t.priority),
    "admin_assignee_id": lambda t: str(t.assignee_id) if t.assignee_id else None,
    "team_assignee_id": lambda t: str(t.group_id) if t.group_id else None,
    "source.delivered_as": lambda t: "admin_initiated" if t.created_by_agent else "customer_initiated",
}
CONTACT_FIELDS: dict[str, Callable[[Any], Any]] = {
    "id": lambda p: f"{CONTACT_BASE + p.id:024x}", "external_id": lambda p: str(p.id), "email": lambda p: p.email,
    "name": lambda p: p.name, "role": lambda p: "user" if p.org_id else "lead",
    "created_at": lambda p: p.created_at, "updated_at": lambda p: p.updated_at,
    "signed_up_at": lambda p: p.created_at, "last_seen_at": lambda p: p.updated_at,
}


class IntercomSim(DirectoryRoutes, Simulator):
    """An Intercom workspace over its own copy of a World (it mutates it on writes and ``touch``)."""

    kind = "intercom"

    def __init__(self, world: World, *, token: str = "sim-token", limit_per_window: int | None = None,
                 parts_cap: int = 500, honor_sort: bool = True, clock: Callable[[], float] = time.time,
                 window_s: float = 10.0, known_admins_only: bool = False, inclusive: bool = True,
                 default_version: str = RENDERINGS[-1],
                 office_hours: tuple[int, int] | None = OFFICE_HOURS) -> None:
        super().__init__(clock=clock)
        self.world = world
        self.token = token
        self.limit_per_window = limit_per_window
        self.parts_cap = parts_cap
        self.honor_sort = honor_sort
        self.window_s = window_s
        self.known_admins_only = known_admins_only
        self.default_version = default_version
        self.render = Renderer(world, office_hours)
        visible = {t.id: t for t in world.tickets if self._visible(t)}
        self.hidden = len(world.tickets) - len(visible)
        self.conversations = SearchSpace(visible, CONVERSATION_FIELDS, frozenset({"created_at", "updated_at"}),
                                         inclusive=inclusive)
        customers = {p.id: p for p in world.people if p.role == "customer"}
        self.contacts = SearchSpace(customers, CONTACT_FIELDS,
                                    frozenset({"created_at", "updated_at", "signed_up_at", "last_seen_at"}),
                                    inclusive=inclusive)
        self.admins = [p for p in world.people if self.render.is_admin(p)]
        self.admin_ids = {str(p.id) for p in self.admins}
        self.orgs = sorted(world.orgs, key=lambda o: o.id)
        self.org_by_id = {o.id: o for o in self.orgs}
        self.users_per_org = Counter(p.org_id for p in customers.values() if p.org_id)
        for t in visible.values():
            for name in t.tags:
                self.render.tag_id(name)
        self._scrolls: dict[str, tuple[int, float]] = {}
        self._window: float | None = None
        self._window_count = 0
        self._message_seq = max((m.id for t in world.tickets for m in t.messages), default=0)
        for method, pattern, handler in (
            ("POST", r"/conversations/search", self._search_conversations),
            ("GET", r"/conversations", self._list_conversations),
            ("GET", r"/conversations/(?P<cid>[^/]+)", self._get_conversation),
            ("PUT", r"/conversations/(?P<cid>[^/]+)", self._put_conversation),
            ("POST", r"/conversations/(?P<cid>[^/]+)/tags", self._attach_tag),
            ("DELETE", r"/conversations/(?P<cid>[^/]+)/tags/(?P<tag_id>[^/]+)", self._detach_tag),
            ("POST", r"/contacts/search", self._search_contacts),
            ("GET", r"/contacts", self._list_contacts),
            ("GET", r"/contacts/(?P<cid>[^/]+)", self._get_contact),
            ("GET", r"/companies/scroll", self._scroll_companies),
            ("GET", r"/companies", self._list_companies),
            ("GET", r"/companies/(?P<cid>[^/]+)", self._get_company),
            ("GET", r"/admins", self._admins),
            ("GET", r"/teams", self._teams),
            ("GET", r"/tags", self._list_tags),
            ("POST", r"/tags", self._create_tag),
        ):
            self.route(method, pattern, handler)

    @staticmethod
    def _visible(t: Ticket) -> bool:
        return not (t.deleted or t.spam)

    # -- write faults -------------------------------------------------------------------------------
    #: Fault kinds that mangle the 2xx answer of a write call (POST/PUT/DELETE) after the write ran: what a
    #: TLS-intercepting proxy, a CDN error page or a truncated body looks like to the client. Not an
    #: Intercom behaviour (its API answers JSON, API-NOTES 3.5): fault injection for the write path.
    BAD_ANSWERS: dict[str, tuple[bytes, str]] = {
        "html": (b"<!DOCTYPE html><html><body><h1>Bad gateway</h1></body></html>", "text/html; charset=utf-8"),
        "garbage": (b'{"type": "tag", "id": "1', "application/json"),
        "shape": (b'[{"type": "tag"}]', "application/json"),
        "no_id": (b'{"type": "tag", "name": "x"}', "application/json"),
    }

    def handle(self, req: SimRequest) -> SimResponse:
        """Serve as usual; a write whose answer is 2xx may then be mangled by an injected bad-answer fault."""
        resp = super().handle(req)
        if req.method != "GET" and 200 <= resp.status < 300:
            fault = self.take_fault(req.path, tuple(self.BAD_ANSWERS))
            if fault is not None:
                body, content_type = self.BAD_ANSWERS[fault.kind]
                resp = SimResponse(resp.status, body, {**resp.headers, "Content-Type": content_type})
        return resp

    # -- envelope, auth, limits ---------------------------------------------------------------------
    def error(self, status: int, message: str, code: str | None = None) -> SimResponse:
        return SimResponse.json({"type": "error.list", "request_id": str(uuid.uuid4()),
                                 "errors": [{"code": code or ERROR_CODES.get(status, "server_error"),
                                             "message": message}]}, status)

    def authorize(self, req: SimRequest) -> SimResponse | None:
        if req.header("Authorization") != f"Bearer {self.token}":
            return self.error(401, "Access Token Invalid", "unauthorized")
        return None

    def rate_limit(self, req: SimRequest) -> tuple[SimResponse | None, dict[str, str]]:
        if self.limit_per_window is None:
            return None, {}
        with self.lock:
            start = math.floor(self.clock() / self.window_s) * self.window_s
            if start != self._window:
                self._window, self._window_count = start, 0
            self._window_count += 1
            used = self._window_count
        limit = self.limit_per_window
        headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(max(0, limit - used)),
                   "X-RateLimit-Reset": str(int(math.ceil(start + self.window_s)))}
        if used > limit:
            resp = self.error(429, f"Exceeded rate limit of {limit} in {self.window_s:g}_seconds")
            resp.headers.update(headers)
            return resp, headers
        return None, headers

    def version(self, req: SimRequest) -> str:
        """The rendering this request gets (its ``Intercom-Version`` header, else the app's default)."""
        return rendering(req.header("Intercom-Version"), self.default_version)

    # -- conversations helpers ----------------------------------------------------------------------
    def _ticket(self, cid: str) -> Ticket | None:
        return self.conversations.records.get(int(cid)) if cid.isdigit() else None

    def _bump(self, t: Ticket, at: int | None = None) -> int:
        new = at if at is not None else max(int(self.clock()), t.updated_at + 1)
        if new != t.updated_at:
            self.conversations.moved(t.id, t.updated_at, new)
            t.updated_at = new
        return new

    # -- conversations --------------------------------------------------------------------------------
    def _conversation_list(self, req: SimRequest, body: dict[str, Any], query: Any, sort: tuple[str | None, bool],
                           list_type: str = "conversation.list") -> SimResponse:
        try:
            per_page, after = self._page_params(req, body)
            found, total, nxt, page = self.conversations.search(query, per_page=per_page, after=after,
                                                                sort_field=sort[0], descending=sort[1])
        except SearchError as exc:
            return self.error(400, str(exc), exc.code)
        version = self.version(req)
        items = [self.render.conversation(t, version=version) for t in found]
        for item in items[:self._take_malformed(req.path, len(items))]:
            item["updated_at"] = "corrupt"
        return SimResponse.json({"type": list_type, "pages": self._pages(page, per_page, total, nxt),
                                 "total_count": total, "conversations": items})

    @locked
    def _search_conversations(self, req: SimRequest) -> SimResponse:
        return self._search(req, self._conversation_list)

    @locked
    def _list_conversations(self, req: SimRequest) -> SimResponse:
        return self._conversation_list(req, {}, None, ("updated_at", True))

    @locked
    def _get_conversation(self, req: SimRequest, cid: str) -> SimResponse:
        t = self._ticket(cid)
        if t is None:
            return self.error(404, "Conversation not found")
        conv = self.render.conversation(t, parts_cap=self.parts_cap, with_parts=True,
                                        plaintext=req.arg("display_as") == "plaintext", version=self.version(req))
        if self._take_malformed(req.path, 1):
            conv["created_at"] = "corrupt"
        return SimResponse.json(conv)

    @locked
    def _put_conversation(self, req: SimRequest, cid: str) -> SimResponse:
        t = self._ticket(cid)
        if t is None:
            return self.error(404, "Conversation not found")
        try:
            body = self._body(req)
        except SearchError as exc:
            return self.error(400, str(exc), exc.code)
        attrs = body.get("custom_attributes", {})
        if not isinstance(attrs, dict) or any(isinstance(v, dict | list) for v in attrs.values()):
            return self.error(400, "custom_attributes must map names to scalar values", "parameter_invalid")
        if attrs:
            at = self._bump(t)
            for key, value in attrs.items():
                t.custom_fields[str(key)] = value
                part = self.render._part(self.render.next_extra_id(), "conversation_attribute_updated_by_admin",
                                         None, at, dict(OPERATOR))
                self.render.extra_parts.setdefault(t.id, []).append(part)
        return SimResponse.json(self.render.conversation(t, parts_cap=self.parts_cap, with_parts=True,
                                                         version=self.version(req)))

    def _tag_call(self, req: SimRequest, cid: str, need_id: bool) -> tuple[Ticket, dict[str, Any]] | SimResponse:
        try:
            body = self._body(req)
        except SearchError as exc:
            return self.error(400, str(exc), exc.code)
        for key in (("id", "admin_id") if need_id else ("admin_id",)):
            if body.get(key) in (None, ""):
                return self.error(400, f"{key} is required", "parameter_not_found")
        t = self._ticket(cid)
        if t is None:
            return self.error(404, "Conversation not found")
        if self.known_admins_only and str(body["admin_id"]) not in self.admin_ids:
            return self.error(404, "Admin not found", "admin_not_found")
        return t, body

    def _tag_object(self, tag_id: str, admin_id: Any) -> dict[str, Any]:
        return {"type": "tag", "id": tag_id, "name": self.render.tag_names[tag_id], "applied_at": int(self.clock()),
                "applied_by": {"type": "admin", "id": str(admin_id)}}

    @locked
    def _attach_tag(self, req: SimRequest, cid: str) -> SimResponse:
        found = self._tag_call(req, cid, need_id=True)
        if isinstance(found, SimResponse):
            return found
        t, body = found
        tag_id = str(body["id"])
        name = self.render.tag_names.get(tag_id)
        if name is None:
            return self.error(404, "Tag not found", "tag_not_found")
        if name not in t.tags:
            t.tags.append(name)
            self._bump(t)
        return SimResponse.json(self._tag_object(tag_id, body["admin_id"]))

    @locked
    def _detach_tag(self, req: SimRequest, cid: str, tag_id: str) -> SimResponse:
        found = self._tag_call(req, cid, need_id=False)
        if isinstance(found, SimResponse):
            return found
        t, body = found
        name = self.render.tag_names.get(tag_id)
        if name is None:
            return self.error(404, "Tag not found", "tag_not_found")
        if name in t.tags:
            t.tags.remove(name)
            self._bump(t)
        return SimResponse.json(self._tag_object(tag_id, body["admin_id"]))

    # -- test and demo hooks --------------------------------------------------------------------------
    def touch(self, conversation_id: int | str, *, body: str | None = None, role: str = "customer",
              at: int | None = None) -> int:
        """Simulate activity on a conversation: optionally a new message, and a later ``updated_at``."""
        with self.lock:
            t = self._ticket(str(conversation_id))
            if t is None:
                raise KeyError(f"no visible conversation {conversation_id}")
            when = at if at is not None else max(int(self.clock()), t.updated_at + 1)
            if body is not None:
                author = t.requester_id if role == "customer" else (t.assignee_id or t.requester_id)
                self._message_seq += 1
                t.messages.append(Message(self._message_seq, author, role, True, body, when))
            return self._bump(t, when)

    def ground_truth(self) -> dict[str, int]:
        """What a complete sync must find: visible conversations and what they render into."""
        with self.lock:
            tickets = list(self.conversations.records.values())
            return {
                "conversations": len(tickets),
                "hidden_conversations": self.hidden,
                "contacts": len(self.contacts),
                "companies": len(self.orgs),
                "admins": len(self.admins),
                "teams": len(self.world.groups),
                "ratings": sum(1 for t in tickets if t.rating is not None),
                "messages": sum(1 for t in tickets for m in t.messages if m.body.strip()),
                "over_parts_cap": sum(1 for t in tickets if len(self.render.parts(t)) > self.parts_cap),
            }

    def company_of(self, org_id: int) -> str:
        return company_id(org_id)
