"""A Freshdesk API v2 simulator over the neutral World (API-NOTES.md sections 2 and 5.2).

What it holds the connector to: Basic auth ``api_key:X`` (401
``invalid_credentials`` otherwise); bare JSON arrays with ``Link: <...>; rel="next"``
(absolute URLs on ``base_url``); ``per_page`` above 100 and unknown query
parameters refused with the validation envelope; no page past ``max_pages``
(400, or an empty array with ``cap_mode="empty"``: both readings exist); only
the last 30 days of tickets without ``updated_since``; ``order_by``/``order_type``;
``include=stats,requester,description`` costing 1 + 2 credits per include, counted
per minute in ``X-RateLimit-Total/-Remaining/-Used-CurrentRequest`` with 429 +
``Retry-After`` when spent, plus the plan's Tickets List sub-limit; deleted and spam
tickets only under ``filter=deleted``/``filter=spam``; ``PUT`` replacing tags and
bumping ``updated_at``. Options give the other reading of what API-NOTES marks
UNCONFIRMED: ``cap_mode``, ``filters_accept_updated_since``, ``updated_since_exclusive``.

Real-account behaviours (issue 11; API-NOTES 6.3, 6.4), each cited where it is modelled:

- ``index_lag_s`` / ``lag()``: a ticket shows in listings only some seconds after its ``updated_at``
  (an eventually consistent listing, as every time-based cursor must assume: API-NOTES 6.4; whether
  Freshdesk's list lags is UNCONFIRMED, so it is off unless asked for).
- Write validation on ``PUT /api/v2/tickets/{id}``: tags of at most 32 characters without commas, and
  required ticket fields (``required_fields``, which email-created tickets often leave empty) enforced
  unless the call says ``?enforce_mandatory=false``.
- Conversations with ``source``/``category`` (automation notes, forwards, survey comments) and the
  localized, possibly public merge note: ``render``.
- Archiving (``archive()``, ``archive_after_days``): archived tickets leave every listing and the
  regular show/update/conversations endpoints; only ``GET /api/v2/tickets/archived/{id}`` reads them.

Every listing is served from a pre-sorted index (bisect + slice), so a request
costs in proportion to its page, not to the account.
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from connectors.normalize import to_epoch
from connectors.sim.base import SimRequest, SimResponse, Simulator
from connectors.sim.freshdesk import render
from connectors.sim.freshdesk.index import LIST_PARAMS, Listing, TicketIndex, custom_field_problem
from connectors.sim.model import Ticket, World

WINDOW_S = 60.0
DEFAULT_WINDOW_S = 30 * 86400
TICKET_ORDER = ("created_at", "due_by", "updated_at", "status")
INCLUDES = ("stats", "requester", "description")
FILTERS = ("deleted", "spam", "new_and_my_open", "watching")
WRITABLE = ("tags", "custom_fields", "status", "priority", "group_id", "responder_id", "subject")
#: Freshdesk's tag rule: freshconsult ``api/lib/api_constants.rb`` TAG_MAX_LENGTH_STRING = 32, and ticket
#: validation ``validates :tags, string_rejection: { excluded_chars: [','] }`` (API-NOTES 6.3).
TAG_MAX_LENGTH = 32
#: "Closed, inactive tickets" are archived after 120 days by default (Freshworks KB article 212901
#: "Ticket archiving"; the period depends on the account's traffic).
DEFAULT_ARCHIVE_AFTER_DAYS = 120


def _validation(field: str, message: str, code: str = "invalid_value", status: int = 400) -> SimResponse:
    return SimResponse.json({"description": "Validation failed",
                             "errors": [{"field": field, "message": message, "code": code}]}, status)


class _BadRequest(Exception):
    def __init__(self, response: SimResponse) -> None:
        super().__init__("bad request")
        self.response = response


class FreshdeskSim(Simulator):
    """Freshdesk over one World (the simulator mutates it: give it its own copy)."""

    kind = "freshdesk"

    def __init__(self, world: World, *, api_key: str = "sim-key", calls_per_minute: int | None = None,
                 tickets_list_per_minute: int | None = None, max_pages: int = 300, cap_mode: str = "error",
                 filters_accept_updated_since: bool = True, updated_since_exclusive: bool = False,
                 vendor_conversations: bool = True, index_lag_s: int = 0,
                 required_fields: tuple[str, ...] = ("product_area",), email_blank_required_every: int = 4,
                 archive_after_days: int | None = None, clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock=clock)
        if cap_mode not in ("error", "empty"):
            raise ValueError("cap_mode is 'error' or 'empty'")
        self.world = world
        self.api_key = api_key
        self.calls_per_minute = calls_per_minute
        self.tickets_list_per_minute = tickets_list_per_minute
        self.max_pages = max_pages
        self.cap_mode = cap_mode
        self.filters_accept_updated_since = filters_accept_updated_since
        self.updated_since_exclusive = updated_since_exclusive  # the other reading of an UNCONFIRMED detail
        self.base_url = "https://sim.freshdesk.com"
        self._window_start: float | None = None
        self._credits_used = 0
        self._list_calls = 0
        self.vendor_conversations = vendor_conversations
        self.index_lag_s = index_lag_s
        self._lags: dict[int, int] = {}
        self.required_fields = tuple(f for f in required_fields if any(d.key == f for d in world.fields))
        if email_blank_required_every:
            # Tickets created by e-mail carry no value for fields the agent form requires (API-NOTES 6.3):
            # every n-th customer e-mail ticket has its required fields empty in this account.
            for tk in world.tickets:
                if tk.channel == "email" and not tk.created_by_agent and tk.id % email_blank_required_every == 0:
                    for key in self.required_fields:
                        tk.custom_fields[key] = None
        self.index = TicketIndex(world)
        if archive_after_days is not None:
            horizon = world.now - archive_after_days * 86400
            for tk in world.tickets:
                if tk.status == "closed" and not tk.deleted and not tk.spam and tk.updated_at < horizon:
                    self.index.archive(tk)
        people = sorted(world.people, key=lambda p: (p.updated_at, p.id))
        self.contacts = Listing([((p.updated_at, p.id), p) for p in people if p.role == "customer"])
        self.agents = Listing([((p.id,), p) for p in sorted(world.people, key=lambda p: p.id) if p.role == "agent"])
        self.companies = Listing([((o.id,), o) for o in sorted(world.orgs, key=lambda o: o.id)])
        self.groups = Listing([((g.id,), g) for g in sorted(world.groups, key=lambda g: g.id)])
        self.ratings = Listing(sorted((((t.rating.created_at, t.id), t) for t in world.tickets if t.rating is not None),
                                      key=lambda entry: entry[0]))
        timed = sorted((t for t in world.tickets if t.time_spent_s), key=lambda t: (render.time_entry_at(t), t.id))
        self.time_entries = Listing([((render.time_entry_at(t), t.id), t) for t in timed])
        self.route("GET", r"/api/v2/tickets", self._list_tickets)
        self.route("GET", r"/api/v2/tickets/(?P<ticket_id>\d+)", self._show_ticket)
        self.route("PUT", r"/api/v2/tickets/(?P<ticket_id>\d+)", self._update_ticket)
        self.route("GET", r"/api/v2/tickets/(?P<ticket_id>\d+)/conversations", self._conversations)
        self.route("GET", r"/api/v2/tickets/archived/(?P<ticket_id>\d+)", self._show_archived)
        self.route("GET", r"/api/v2/contacts", self._list_contacts)
        self.route("GET", r"/api/v2/agents", self._simple(self.agents, render.agent, "agents"))
        self.route("GET", r"/api/v2/companies", self._simple(self.companies, render.company, "companies"))
        self.route("GET", r"/api/v2/groups", self._simple(self.groups, render.group, "groups"))
        self.route("GET", r"/api/v2/surveys/satisfaction_ratings", self._list_ratings)
        self.route("GET", r"/api/v2/time_entries", self._list_time_entries)

    # -- auth, limits, errors -------------------------------------------------------------------------
    def authorize(self, req: SimRequest) -> SimResponse | None:
        header = req.header("Authorization") or ""
        expected = "Basic " + base64.b64encode(f"{self.api_key}:X".encode()).decode("ascii")
        if header.strip() != expected:
            return SimResponse.json({"code": "invalid_credentials",
                                     "message": "You have to be logged in to perform this action."}, 401)
        return None

    def rate_limit(self, req: SimRequest) -> tuple[SimResponse | None, dict[str, str]]:
        cost = self._credits(req)
        with self.lock:
            now = self.clock()
            if self._window_start is None or now - self._window_start >= WINDOW_S:
                self._window_start, self._credits_used, self._list_calls = now, 0, 0
            retry = max(1, math.ceil(self._window_start + WINDOW_S - now))
            headers = {"X-RateLimit-Used-CurrentRequest": str(cost)}
            limit = self.calls_per_minute
            is_list = req.method == "GET" and req.path.rstrip("/") == "/api/v2/tickets"
            if limit is not None and self._credits_used + cost > limit:
                headers.update({"X-RateLimit-Total": str(limit), "X-RateLimit-Remaining": "0",
                                "Retry-After": str(retry)})
                return self._limited(headers), headers
            if is_list and self.tickets_list_per_minute is not None and \
                    self._list_calls >= self.tickets_list_per_minute:
                headers["Retry-After"] = str(retry)
                return self._limited(headers), headers
            self._credits_used += cost
            self._list_calls += int(is_list)
            if limit is not None:
                headers.update({"X-RateLimit-Total": str(limit),
                                "X-RateLimit-Remaining": str(max(0, limit - self._credits_used))})
        return None, headers

    def _limited(self, headers: dict[str, str]) -> SimResponse:
        resp = self.error(429, "You have exceeded the limit of requests per minute")
        resp.headers.update(headers)
        return resp

    @staticmethod
    def _credits(req: SimRequest) -> int:
        """1 per call, plus 2 per ``include`` on ticket endpoints (API-NOTES 2.2 note 3)."""
        if req.method == "GET" and req.path.startswith("/api/v2/tickets"):
            includes = [i for i in (req.arg("include") or "").split(",") if i.strip()]
            return 1 + 2 * len(includes)
        return 1

    def error(self, status: int, message: str) -> SimResponse:
        codes = {401: "invalid_credentials", 403: "access_denied", 404: "not_found", 405: "method_not_allowed",
                 429: "rate_limit_exceeded"}
        return SimResponse.json({"code": codes.get(status, "internal_error"), "message": message}, status,
                                {"X-Freshdesk-API-Version": "latest=v2; requested=v2"})

    # -- listing helpers ------------------------------------------------------------------------------
    def _paging(self, req: SimRequest, allowed: tuple[str, ...]) -> tuple[int, int]:
        """Validate the query (unknown parameters, per_page, page) and return (page, per_page)."""
        for name in req.query:
            if name not in allowed and name not in LIST_PARAMS:
                raise _BadRequest(_validation(name, "Unexpected/invalid field in request", "invalid_field"))
        try:
            per_page = int(req.arg("per_page", "30") or "30")
            page = int(req.arg("page", "1") or "1")
        except ValueError:
            raise _BadRequest(_validation("per_page", "It should be a/an Positive Integer",
                                          "datatype_mismatch")) from None
        if not 1 <= per_page <= 100:
            raise _BadRequest(_validation("per_page", "Has to be less than or equal to 100"))
        if page < 1:
            raise _BadRequest(_validation("page", "It should be a/an Positive Integer"))
        return page, per_page

    def _capped(self, page: int) -> SimResponse | None:
        if page <= self.max_pages:
            return None
        if self.cap_mode == "empty":
            return SimResponse.json([])
        return _validation("page", f"You cannot access pages beyond {self.max_pages}")

    def _respond(self, req: SimRequest, items: list[dict[str, Any]], page: int, has_more: bool) -> SimResponse:
        headers = {"X-Freshdesk-API-Version": "latest=v2; requested=v2"}
        if has_more:
            query = [(k, v) for k, values in req.query.items() if k != "page" for v in values]
            query.append(("page", str(page + 1)))
            headers["Link"] = f'<{self.base_url}{req.path}?{urlencode(query)}>; rel="next"'
        return SimResponse.json(items, headers=headers)

    def _since(self, req: SimRequest, name: str) -> int | None:
        value = req.arg(name)
        if value is None:
            return None
        try:
            parsed = to_epoch(value)
        except Exception:  # noqa: BLE001 - any unparseable value is the vendor's validation error
            parsed = None
        if parsed is None:
            raise _BadRequest(_validation(name, "It should be in the 'valid date time' format"))
        return parsed

    def _guard(self, handler: Callable[..., SimResponse]) -> Callable[..., SimResponse]:
        def run(req: SimRequest, **kw: str) -> SimResponse:
            try:
                return handler(req, **kw)
            except _BadRequest as exc:
                return exc.response
        return run

    def route(self, method: str, pattern: str, handler: Callable[..., SimResponse]) -> None:
        super().route(method, pattern, self._guard(handler))

    def _simple(self, listing: Listing, draw: Callable[[Any], dict[str, Any]], name: str,
                ) -> Callable[..., SimResponse]:
        def handle(req: SimRequest) -> SimResponse:
            page, per_page = self._paging(req, ())
            capped = self._capped(page)
            if capped is not None:
                return capped
            with self.lock:
                items, more = listing.page(None, page, per_page)
                return self._respond(req, [draw(x) for x in items], page, more)
        handle.__name__ = f"list_{name}"
        return handle

    # -- tickets --------------------------------------------------------------------------------------
    def _list_tickets(self, req: SimRequest) -> SimResponse:
        page, per_page = self._paging(req, ("filter", "updated_since", "order_by", "order_type", "include",
                                            "requester_id", "email", "company_id", "unique_external_id"))
        includes = [i.strip() for i in (req.arg("include") or "").split(",") if i.strip()]
        if any(i not in INCLUDES for i in includes):
            return _validation("include", f"It should be one of these values: '{','.join(INCLUDES)}'")
        order_by = req.arg("order_by", "created_at") or "created_at"
        order_type = req.arg("order_type", "desc") or "desc"
        if order_by not in TICKET_ORDER:
            return _validation("order_by", f"It should be one of these values: '{','.join(TICKET_ORDER)}'")
        if order_type not in ("asc", "desc"):
            return _validation("order_type", "It should be one of these values: 'asc,desc'")
        filt = req.arg("filter")
        if filt is not None and filt not in FILTERS:
            return _validation("filter", f"It should be one of these values: '{','.join(FILTERS)}'")
        if filt in ("deleted", "spam") and req.arg("updated_since") and not self.filters_accept_updated_since:
            return _validation("updated_since", "Unexpected/invalid field in request", "invalid_field")
        since = self._since(req, "updated_since")
        if since is not None and self.updated_since_exclusive:
            since += 1
        capped = self._capped(page)
        if capped is not None:
            return capped
        category = filt if filt in ("deleted", "spam") else "main"
        window = None if since is not None or category != "main" else int(self.clock()) - DEFAULT_WINDOW_S
        with self.lock:
            tickets, more = self.index.select(category, since=since, created_after=window, order_by=order_by,
                                              descending=order_type == "desc", page=page, per_page=per_page,
                                              predicate=self._predicate(req, filt))
            items = [render.ticket(self.world, t, includes) for t in tickets]
        self._corrupt(req.path, items)
        return self._respond(req, items, page, more)

    def _predicate(self, req: SimRequest, filt: str | None) -> Callable[[Ticket], bool] | None:
        checks: list[Callable[[Ticket], bool]] = []
        if self.index_lag_s or self._lags:
            now = self.clock()
            checks.append(lambda t: t.updated_at + self._lags.get(t.id, self.index_lag_s) <= now)
        requester_id, company_id = req.arg("requester_id"), req.arg("company_id")
        if requester_id:
            checks.append(lambda t: str(t.requester_id) == requester_id)
        if company_id:
            checks.append(lambda t: str(t.org_id) == company_id)
        if filt == "new_and_my_open":
            checks.append(lambda t: t.status in ("new", "open"))
        if filt == "watching":
            checks.append(lambda t: False)
        return (lambda t: all(c(t) for c in checks)) if checks else None

    def _corrupt(self, path: str, items: list[dict[str, Any]]) -> None:
        """A pending ``malformed`` fault breaks the last N records of this page (the first may be re-reads)."""
        with self.lock:
            fault = next((f for f in self.faults if f.kind == "malformed" and path.startswith(f.path)
                          and f.count > 0), None)
            if fault is None or not items:
                return
            self.faults.remove(fault)
        for item in items[-fault.count:]:
            item["created_at"] = "not-a-timestamp"

    def _ticket(self, ticket_id: str, *, allow_deleted: bool = True) -> Ticket | None:
        tk = self.world.ticket(int(ticket_id))
        if tk is None or (tk.deleted and not allow_deleted) or tk.id in self.index.archived:
            return None  # archived tickets answer only under /tickets/archived/{id} (UNCONFIRMED: 404 here)
        return tk

    def _show_archived(self, req: SimRequest, ticket_id: str) -> SimResponse:
        """``GET /api/v2/tickets/archived/{id}``: one archived ticket by id; no archived listing exists
        (API-NOTES 6.3; freshconsult ``api/app/controllers/archive/tickets_controller.rb``)."""
        self._paging(req, ("include",))
        with self.lock:
            tk = self.world.ticket(int(ticket_id))
            if tk is None or tk.id not in self.index.archived:
                return self.error(404, "Record not found")
            return SimResponse.json(render.ticket(self.world, tk, ("stats",), description=True))

    def _show_ticket(self, req: SimRequest, ticket_id: str) -> SimResponse:
        self._paging(req, ("include",))
        includes = [i.strip() for i in (req.arg("include") or "").split(",") if i.strip()]
        with self.lock:
            tk = self._ticket(ticket_id)
            if tk is None:
                return self.error(404, "Record not found")
            return SimResponse.json(render.ticket(self.world, tk, includes, description=True))

    def _conversations(self, req: SimRequest, ticket_id: str) -> SimResponse:
        page, per_page = self._paging(req, ())
        capped = self._capped(page)
        if capped is not None:
            return capped
        with self.lock:
            tk = self._ticket(ticket_id, allow_deleted=False)
            if tk is None:
                return self.error(404, "Record not found")
            convs = render.conversations(self.world, tk, vendor_extras=self.vendor_conversations)
        start = (page - 1) * per_page
        return self._respond(req, convs[start:start + per_page], page, len(convs) > start + per_page)

    def _update_ticket(self, req: SimRequest, ticket_id: str) -> SimResponse:
        for name in req.query:
            if name != "enforce_mandatory":
                return _validation(name, "Unexpected/invalid field in request", "invalid_field")
        enforce = req.arg("enforce_mandatory", "true")
        if enforce not in ("true", "false"):
            # the shape Freshdesk's own API tests expect for contacts/companies (freshconsult test suite)
            return _validation("enforce_mandatory", "It should be either 'true' or 'false'")
        try:
            body = req.json()
        except ValueError:
            return _validation("body", "Invalid JSON body", "invalid_json")
        if not isinstance(body, dict) or not body:
            return _validation("body", "Request body is empty or not an object", "missing_field")
        for key in body:
            if key not in WRITABLE:
                return _validation(key, "Unexpected/invalid field in request", "invalid_field")
        with self.lock:
            tk = self._ticket(ticket_id, allow_deleted=False)
            if tk is None:
                return self.error(404, "Record not found")
            tags = body.get("tags", tk.tags)
            if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
                return _validation("tags", "It should be an Array of Strings", "datatype_mismatch")
            if "tags" in body:
                problem_tag = next((t for t in tags if len(t) > TAG_MAX_LENGTH or "," in t), None)
                if problem_tag is not None:  # see TAG_MAX_LENGTH (message wording UNCONFIRMED)
                    message = ("Please remove the following special characters: ','" if "," in problem_tag
                               else f"It should only contain elements that have maximum of {TAG_MAX_LENGTH} "
                                    "characters")
                    return _validation("tags", message)
            custom = body.get("custom_fields", {})
            problem = custom_field_problem(self.world, custom)
            if problem is not None:
                return _validation(*problem)
            if enforce == "true":
                # Required fields are validated on every update, not just the ones sent (API-NOTES 6.3);
                # the field name and message follow Freshdesk's missing-field errors (wording UNCONFIRMED).
                for key in self.required_fields:
                    value = custom.get(f"cf_{key}", tk.custom_fields.get(key)) if isinstance(custom, dict) \
                        else tk.custom_fields.get(key)
                    if value in (None, ""):
                        return _validation(f"cf_{key}", "It should be a/an String", "missing_field")
            tk.tags = list(dict.fromkeys(tags))
            for key, value in custom.items():
                tk.custom_fields[key[3:]] = value
            self._bump(tk)
            return SimResponse.json(render.ticket(self.world, tk, (), description=True))

    # -- other listings -------------------------------------------------------------------------------
    def _list_contacts(self, req: SimRequest) -> SimResponse:
        return self._since_listing(req, self.contacts, "_updated_since", render.contact,
                                   ("_updated_since", "email", "mobile", "phone", "company_id", "state"))

    def _list_ratings(self, req: SimRequest) -> SimResponse:
        return self._since_listing(req, self.ratings, "created_since", render.rating,
                                   ("created_since", "created_until", "user_id"))

    def _list_time_entries(self, req: SimRequest) -> SimResponse:
        return self._since_listing(req, self.time_entries, "executed_after", render.time_entry,
                                   ("executed_after", "executed_before", "agent_id", "billable", "company_id"))

    def _since_listing(self, req: SimRequest, listing: Listing, param: str, draw: Callable[[Any], dict[str, Any]],
                       allowed: tuple[str, ...]) -> SimResponse:
        page, per_page = self._paging(req, allowed)
        since = self._since(req, param)
        capped = self._capped(page)
        if capped is not None:
            return capped
        with self.lock:
            items, more = listing.page(since, page, per_page)
            return self._respond(req, [draw(x) for x in items], page, more)

    # -- test and demo hooks --------------------------------------------------------------------------
    def _bump(self, tk: Ticket) -> None:
        old = (tk.updated_at, tk.id)
        tk.updated_at = max(int(self.clock()), tk.updated_at + 1)
        self.index.moved(tk, old)

    def touch(self, ticket_id: int) -> None:
        """Simulate activity on a ticket: its ``updated_at`` moves to now (it re-enters ``updated_since``)."""
        with self.lock:
            tk = self.world.ticket(ticket_id)
            if tk is None:
                raise KeyError(ticket_id)
            self._bump(tk)

    def lag(self, ticket_id: int, seconds: int) -> None:
        """This ticket shows in listings only ``seconds`` after its ``updated_at`` (see ``index_lag_s``)."""
        with self.lock:
            self._lags[ticket_id] = seconds

    def archive(self, ticket_id: int) -> None:
        """Freshdesk archives a closed, inactive ticket: it leaves every listing (see the module docstring)."""
        with self.lock:
            tk = self.world.ticket(ticket_id)
            if tk is None:
                raise KeyError(ticket_id)
            self.index.archive(tk)

    def delete(self, ticket_id: int, *, spam: bool = False) -> None:
        """Move a ticket to the trash (or spam): it leaves the default listing and shows under the filter."""
        with self.lock:
            tk = self.world.ticket(ticket_id)
            if tk is None:
                raise KeyError(ticket_id)
            old_key, old_cat = (tk.updated_at, tk.id), self.index.category(tk)
            tk.spam, tk.deleted = (True, tk.deleted) if spam else (tk.spam, True)
            tk.updated_at = max(int(self.clock()), tk.updated_at + 1)
            self.index.moved(tk, old_key, old_cat)

    def ground_truth(self) -> dict[str, int]:
        """What a complete sync must hold: ticket counts per listing, messages, people, ratings, entries."""
        with self.lock:
            cats = {"main": 0, "deleted": 0, "spam": 0, "archived": 0}
            messages = 0
            for tk in self.world.tickets:
                cat = self.index.category(tk)
                cats[cat] += 1
                if cat == "main":
                    messages += (1 if tk.messages else 0) + len(render.conversations(
                        self.world, tk, vendor_extras=self.vendor_conversations))
            return {
                "tickets": cats["main"], "deleted_tickets": cats["deleted"], "spam_tickets": cats["spam"],
                "archived_tickets": cats["archived"],
                "tickets_total": len(self.world.tickets), "messages": messages,
                "contacts": len(self.contacts), "agents": len(self.agents), "companies": len(self.companies),
                "groups": len(self.groups), "ratings": len(self.ratings), "time_entries": len(self.time_entries),
            }
