"""The Intercom simulator's directory endpoints and request helpers (split from ``intercom.py`` for size).

Contacts (``POST /contacts/search``, ``GET /contacts[/{id}]``), companies
(``GET /companies/scroll``, below; ``GET /companies?page=&per_page<=60``;
``GET /companies/{id}``), admins, teams and tags (``GET /tags``, and
``POST /tags``, which creates or finds a tag by name).

The company scroll, as the OAS 2.11 ``/companies/scroll`` description has it:
"Each app can only have 1 scroll open at a time" (another request for a new
scroll while one is open answers ``400`` ``scroll_exists``: the code singer's
tap-intercom ``client.py`` tests for, the status Airbyte's source-intercom
``manifest.yaml`` retries and intercom-ruby issue #292 reports, with Estuary's
message text "scroll already exists for this workspace"); "If the scroll isn't
used for 1 minute, it expires and calls with that scroll param will fail" (here:
``404 not_found``, UNCONFIRMED code); "If the end of the scroll is reached,
"companies" will be empty and the scroll parameter will expire" (the scroll is
closed, freeing the app's one slot); a network failure answers ``500`` "Request
failed due to an internal network error. Please restart the scroll operation."
and "It is not possible to continue from a specific point" (``fail_scroll``:
the scroll is closed). A workspace without companies answers the first call
``404`` (Airbyte's manifest: "Ignoring 404 response, no company records
found"; UNCONFIRMED body). ``hold_scroll`` stands for another integration of
the same app holding the scroll (Hevo's Intercom docs: concurrent pipelines
fail on it).
"""

from __future__ import annotations

import functools
import math
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from connectors.sim.base import Fault, SimRequest, SimResponse
from connectors.sim.intercom.render import COMPANY_BASE, CONTACT_BASE, Renderer, parse_hex_id
from connectors.sim.intercom.search import DateRule, SearchError, SearchSpace
from connectors.sim.model import World

SCROLL_PAGE = 50
SCROLL_TTL = 60.0


def locked(handler: Callable[..., SimResponse]) -> Callable[..., SimResponse]:
    """Run a route handler under the simulator's lock: handlers read and mutate the shared world."""

    @functools.wraps(handler)
    def wrapper(self: Any, req: SimRequest, **groups: str) -> SimResponse:
        with self.lock:
            return handler(self, req, **groups)
    return wrapper


class DirectoryRoutes:
    """Mixin for :class:`connectors.sim.intercom.IntercomSim`; the attributes below are set by it."""

    lock: threading.RLock
    faults: list[Fault]
    clock: Callable[[], float]
    world: World
    render: Renderer
    conversations: SearchSpace
    honor_sort: bool
    orgs: list[Any]
    org_by_id: dict[int, Any]
    users_per_org: Counter[int]
    admins: list[Any]
    _scrolls: dict[str, tuple[int, float]]  # scroll_param -> (offset, expires at); at most one open per app
    _scroll_failures: int = 0

    def error(self, status: int, message: str, code: str | None = None) -> SimResponse:
        raise NotImplementedError

    # -- search fidelity and scroll hooks (tests, demo) -------------------------------------------------
    @property
    def contacts(self) -> SearchSpace:
        return self._contacts

    @contacts.setter
    def contacts(self, space: SearchSpace) -> None:
        """Whatever search space the simulator builds for contacts compares dates by calendar day, as OAS
        2.11 ``/contacts/search`` documents ("Searching for Timestamp Fields"); UTC midnights by default."""
        space.rule = DateRule(by_day="next_day")
        self._contacts = space

    def configure_search(self, *, index_lag_s: float = 0.0, contact_dates: str = "next_day",
                         utc_offset_s: int = 0) -> None:
        """Search fidelity knobs (see ``search.py``): ``index_lag_s``, how long a change takes to
        become searchable (both spaces); ``contact_dates``, the reading of contacts' by-day ``>``
        (``"next_day"``: OAS 2.11; ``"same_day"``: Hevo's docs); ``utc_offset_s``, the workspace timezone
        whose midnights bound those days. The clock is read at call time (harnesses swap ``self.clock``)."""
        if contact_dates not in ("next_day", "same_day"):
            raise ValueError(f"contact_dates must be 'next_day' or 'same_day', not {contact_dates!r}")
        with self.lock:
            for space in (self.contacts, self.conversations):
                space.settle()
                space.lag_s, space.clock = index_lag_s, lambda: self.clock()
            self.contacts.rule = DateRule(by_day=contact_dates, utc_offset_s=utc_offset_s)

    def skew_clock(self, seconds: float) -> None:
        """Intercom's clock runs ``seconds`` ahead of the one given (negative: behind), e.g. of the client's."""
        base = self.clock
        self.clock = lambda: base() + seconds

    def touch_contact(self, person_id: int, *, at: int | None = None) -> int:
        """Simulate an edit of a contact: a later ``updated_at`` (searchable after the index lag)."""
        with self.lock:
            person = self.contacts.records[person_id]
            when = at if at is not None else max(int(self.clock()), person.updated_at + 1)
            self.contacts.moved(person_id, person.updated_at, when)
            person.updated_at = when
            return when

    def hold_scroll(self, seconds: float = SCROLL_TTL) -> None:
        """Another integration of this app opens the company scroll now and keeps it ``seconds``."""
        with self.lock:
            self._scrolls[f"other-integration-{uuid.uuid4().hex}"] = (0, self.clock() + seconds)

    def fail_scroll(self, count: int = 1) -> None:
        """The next ``count`` continuation calls (with a scroll_param) fail with Intercom's 500."""
        with self.lock:
            self._scroll_failures += count

    # -- helpers --------------------------------------------------------------------------------------
    def _body(self, req: SimRequest) -> dict[str, Any]:
        try:
            body = req.json()
        except ValueError:
            raise SearchError("request body is not valid JSON", "bad_request") from None
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise SearchError("request body must be an object", "bad_request")
        return body

    def _page_params(self, req: SimRequest, body: dict[str, Any] | None, default: int = 20,
                     cap: int = 150) -> tuple[int, str | None]:
        pagination = (body or {}).get("pagination") or {}
        raw: Any = pagination.get("per_page", req.arg("per_page", str(default)))  # JSON or query text
        try:
            per_page = int(raw)
        except (TypeError, ValueError):
            raise SearchError("per_page must be an integer") from None
        if not 1 <= per_page <= cap:
            raise SearchError(f"per_page must be between 1 and {cap}")
        return per_page, pagination.get("starting_after", req.arg("starting_after"))

    def _sort(self, body: dict[str, Any]) -> tuple[str | None, bool]:
        sort = body.get("sort") if self.honor_sort else None
        if not isinstance(sort, dict) or sort.get("field") not in ("updated_at", "created_at"):
            return None, False
        return str(sort["field"]), str(sort.get("order", "ascending")).lower() in ("descending", "desc")

    @staticmethod
    def _pages(page: int, per_page: int, total: int, nxt: str | None) -> dict[str, Any]:
        pages: dict[str, Any] = {"type": "pages", "page": page, "per_page": per_page,
                                 "total_pages": max(1, math.ceil(total / per_page))}
        if nxt is not None:
            pages["next"] = {"page": page + 1, "per_page": per_page, "starting_after": nxt}
        return pages

    def _take_malformed(self, path: str, available: int) -> int:
        """How many records of the page being served to corrupt (consumes ``malformed`` faults)."""
        with self.lock:
            for fault in self.faults:
                if fault.kind == "malformed" and fault.count > 0 and path.startswith(fault.path):
                    n = min(fault.count, available)
                    fault.count -= n
                    if fault.count <= 0:
                        self.faults.remove(fault)
                    return n
        return 0

    # -- contacts -------------------------------------------------------------------------------------
    def _contact_list(self, req: SimRequest, body: dict[str, Any], query: Any,
                      sort: tuple[str | None, bool]) -> SimResponse:
        try:
            per_page, after = self._page_params(req, body, default=50)
            found, total, nxt, page = self.contacts.search(query, per_page=per_page, after=after,
                                                           sort_field=sort[0], descending=sort[1])
        except SearchError as exc:
            return self.error(400, str(exc), exc.code)
        items = [self.render.contact(p) for p in found]
        for item in items[:self._take_malformed(req.path, len(items))]:
            item["updated_at"] = "corrupt"
        return SimResponse.json({"type": "list", "data": items, "total_count": total,
                                 "pages": self._pages(page, per_page, total, nxt)})

    def _search(self, req: SimRequest, listing: Any) -> SimResponse:
        """``POST /…/search``: validate the body as Intercom does, then answer with ``listing``'s page."""
        try:
            body = self._body(req)
        except SearchError as exc:
            return self.error(400, str(exc), exc.code)
        if "query" not in body:
            return self.error(400, "query is required", "parameter_not_found")
        return listing(req, body, body["query"], self._sort(body))

    @locked
    def _search_contacts(self, req: SimRequest) -> SimResponse:
        return self._search(req, self._contact_list)

    @locked
    def _list_contacts(self, req: SimRequest) -> SimResponse:
        return self._contact_list(req, {}, None, (None, False))

    @locked
    def _get_contact(self, req: SimRequest, cid: str) -> SimResponse:
        pid = parse_hex_id(cid, CONTACT_BASE)
        person = self.contacts.records.get(pid) if pid is not None else None
        if person is None:
            return self.error(404, "User Not Found")
        return SimResponse.json(self.render.contact(person))

    # -- companies, admins, teams, tags ---------------------------------------------------------------
    def _company(self, org: Any) -> dict[str, Any]:
        return self.render.company(org, self.users_per_org.get(org.id, 0))

    @locked
    def _scroll_companies(self, req: SimRequest) -> SimResponse:
        now = self.clock()
        for key in [k for k, (_, expires) in self._scrolls.items() if expires < now]:
            del self._scrolls[key]  # unused for a minute: expired, the app's slot is free again
        param = req.arg("scroll_param")
        if param:
            state = self._scrolls.get(param)
            if state is None:
                return self.error(404, "scroll parameter not found or expired", "not_found")
            if self._scroll_failures > 0:
                self._scroll_failures -= 1
                del self._scrolls[param]
                return self.error(500, "Request failed due to an internal network error. "
                                       "Please restart the scroll operation.", "server_error")
            offset = state[0]
        else:
            if self._scrolls:
                return self.error(400, "scroll already exists for this workspace", "scroll_exists")
            if not self.orgs:
                return self.error(404, "Resource Not Found", "not_found")
            param, offset = uuid.uuid4().hex, 0
        chunk = self.orgs[offset:offset + SCROLL_PAGE]
        if chunk:
            self._scrolls[param] = (offset + len(chunk), now + SCROLL_TTL)
        else:
            del self._scrolls[param]  # the end: "the scroll parameter will expire"
        return SimResponse.json({"type": "list", "data": [self._company(o) for o in chunk], "pages": None,
                                 "total_count": len(self.orgs), "scroll_param": param})

    @locked
    def _list_companies(self, req: SimRequest) -> SimResponse:
        try:
            page = max(1, int(req.arg("page", "1") or 1))
            per_page = int(req.arg("per_page", "15") or 15)
        except ValueError:
            return self.error(400, "page and per_page must be integers")
        if not 1 <= per_page <= 60:
            return self.error(400, "per_page must be between 1 and 60")
        chunk = self.orgs[(page - 1) * per_page:page * per_page]
        total_pages = max(1, math.ceil(len(self.orgs) / per_page))
        return SimResponse.json({"type": "list", "data": [self._company(o) for o in chunk],
                                 "pages": {"type": "pages", "page": page, "per_page": per_page,
                                           "total_pages": total_pages,
                                           "next": f"/companies?page={page + 1}" if page < total_pages else None},
                                 "total_count": len(self.orgs)})

    @locked
    def _get_company(self, req: SimRequest, cid: str) -> SimResponse:
        oid = parse_hex_id(cid, COMPANY_BASE)
        org = self.org_by_id.get(oid) if oid is not None else None
        if org is None:
            return self.error(404, "Company Not Found", "company_not_found")
        return SimResponse.json(self._company(org))

    @locked
    def _admins(self, req: SimRequest) -> SimResponse:
        return SimResponse.json({"type": "admin.list", "admins": [self.render.admin(p) for p in self.admins]})

    @locked
    def _teams(self, req: SimRequest) -> SimResponse:
        return SimResponse.json({"type": "team.list", "teams": [self.render.team(g) for g in self.world.groups]})

    @locked
    def _list_tags(self, req: SimRequest) -> SimResponse:
        return SimResponse.json({"type": "list", "data": [{"type": "tag", "id": tid, "name": name}
                                                          for tid, name in self.render.tag_names.items()]})

    @locked
    def _create_tag(self, req: SimRequest) -> SimResponse:
        try:
            body = self._body(req)
        except SearchError as exc:
            return self.error(400, str(exc), exc.code)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            return self.error(400, "name is required", "parameter_not_found")
        return SimResponse.json({"type": "tag", "id": self.render.tag_id(name), "name": name})
