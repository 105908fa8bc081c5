"""The Zendesk Support simulator: the documented read and write contracts over a generated world.

Faithful to API-NOTES.md section 1 and 5.1: Basic ``{email}/token:{token}``
or Bearer auth; cursor-based incremental ticket and user exports (opaque
cursor, ``end_of_stream``, one-minute exclusion, deleted tickets included
unless ``exclude_deleted=true``, side-loaded ``metric_sets``); time-based
ticket-event and organization exports (``end_time``, ``next_page``,
duplicates at page boundaries); ``support_type_scope`` on the ticket and
ticket-event exports (default ``agent``: tickets handled by an AI agent are
left out unless ``all`` or ``ai_agent`` is asked for; Incremental Exports API
reference, parameters of both endpoints); legacy-CSAT satisfaction ratings with
cursor pagination (offered records answered later, ``csat="new"``/``"off"``
accounts: ``lists.py``);
ticket fields and groups; tag and ticket writes that bump
``generated_timestamp`` and append an audit. ``X-Rate-Limit`` headers on every
response, a sliding per-minute account window and the 10/min incremental
export window (429 + ``Retry-After``), a configurable 504 above a page size,
and the base class's faults plus ``malformed`` records.

Links (``after_url``, ``next_page``) are built on ``self.base_url``: the
loopback server sets it; with ``responses`` set it to the mocked host.
Rendering choices where Zendesk's docs are silent are listed in
``render.py``; the writes and test helpers live in ``writes.py``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hmac
import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from connectors.sim.base import Fault, SimRequest, SimResponse, SimServer, Simulator
from connectors.sim.model import Rating, World
from connectors.sim.zendesk.events import EventIndex
from connectors.sim.zendesk.export import KeyIndex, RateWindow, decode_cursor, encode_cursor, splice
from connectors.sim.zendesk.lists import ZendeskLists
from connectors.sim.zendesk.render import (
    is_ai_agent,
    metric_bytes,
    rating_record_id,
    render_org,
    render_user,
    ticket_bytes,
)
from connectors.sim.zendesk.writes import ZendeskWrites

logger = logging.getLogger("deskpulse.sim.zendesk")

EXPORT_PREFIX = "/api/v2/incremental/"
EXCLUSION_S = 60
TIME_PAGE = 1000
_J = r"(?:\.json)?"
SUPPORT_TYPES = ("all", "agent", "ai_agent")
_ERRORS = {400: "InvalidValue", 403: "Forbidden", 404: "RecordNotFound", 409: "Conflict", 422: "RecordInvalid",
           429: "APIRateLimitExceeded", 500: "InternalServerError", 502: "BadGateway", 503: "ServiceUnavailable",
           504: "GatewayTimeout"}


class BadRequest(Exception):
    """A query parameter Zendesk would refuse (400)."""


class ZendeskSim(ZendeskWrites, ZendeskLists, Simulator):
    """One Zendesk account over its own ``World`` (the simulator mutates it on writes)."""

    kind = "zendesk"

    def __init__(self, world: World, *, email: str = "sim@example.com", token: str = "sim-token",
                 per_page_max: int = 1000, export_limit_per_minute: int | None = 10,
                 account_limit_per_minute: int = 700, clock: Callable[[], float] = time.time,
                 timeout_above_per_page: int | None = None, csat: str = "legacy") -> None:
        super().__init__(clock=clock)
        self.world = world
        self.csat = csat
        self._basic = f"{email}/token:{token}"
        self._token = token
        self.per_page_max = per_page_max
        self.timeout_above_per_page = timeout_above_per_page
        self.account = RateWindow(account_limit_per_minute)
        self.exports = RateWindow(export_limit_per_minute)
        self.admin_id = next((p.id for p in world.people if p.role == "agent" and not p.email.startswith("bot@")),
                             None)
        self.field_ids = {f.key: f.id for f in world.fields}
        self.gen_ts = {t.id: self._initial_gen_ts(t.id, t.updated_at) for t in world.tickets}
        self.tickets_idx = KeyIndex(self.tickets_idx_key(tid, ts) for tid, ts in self.gen_ts.items())
        self._ticket_json: dict[int, bytes] = {}
        self._metric_json: dict[int, bytes] = {}
        self._cache_base = self.base_url
        self._events: EventIndex | None = None
        self._write_audits: dict[int, list[dict[str, Any]]] = {}
        self.writes: list[dict[str, Any]] = []
        self._people_idx: tuple[int, KeyIndex] | None = None
        self._orgs_idx: tuple[int, KeyIndex] | None = None
        self._init_writes()
        self._routes()

    def _initial_gen_ts(self, tid: int, updated_at: int) -> int:
        """``generated_timestamp``: ``updated_at``, except a few tickets a system update touched later."""
        if tid % 31 == 0:
            return max(updated_at, min(self.world.now, updated_at + 1 + tid * 7919 % 3600))
        return updated_at

    @staticmethod
    def tickets_idx_key(tid: int, ts: int) -> int:
        return (ts << 32) | tid

    def _routes(self) -> None:
        v2 = "/api/v2"
        self.route("GET", f"{v2}/incremental/tickets/cursor{_J}", self._tickets_export)
        self.route("GET", f"{v2}/incremental/users/cursor{_J}", self._users_export)
        self.route("GET", f"{v2}/incremental/ticket_events{_J}", self._events_export)
        self.route("GET", f"{v2}/incremental/organizations{_J}", self._orgs_export)
        self.route("GET", f"{v2}/satisfaction_ratings{_J}", self._ratings)
        self.route("GET", f"{v2}/ticket_fields{_J}", self._fields)
        self.route("GET", f"{v2}/groups{_J}", self._groups)
        self.route("GET", rf"{v2}/tickets/(?P<tid>\d+){_J}", self._show_ticket)
        self.route("GET", rf"{v2}/tickets/(?P<tid>\d+)/metrics{_J}", self._show_metrics)
        for method in ("PUT", "POST", "DELETE"):
            self.route(method, rf"{v2}/tickets/(?P<tid>\d+)/tags{_J}", self._tags_write)
        self.route("PUT", rf"{v2}/tickets/(?P<tid>\d+){_J}", self._ticket_update)

    # -- cross-cutting: auth, limits, errors ------------------------------------------------------------
    def authorize(self, req: SimRequest) -> SimResponse | None:
        header = req.header("Authorization") or ""
        scheme, _, value = header.partition(" ")
        ok = False
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            ok = hmac.compare_digest(decoded.encode(), self._basic.encode())
        elif scheme.lower() == "bearer":
            ok = hmac.compare_digest(value.strip().encode(), self._token.encode())
        return None if ok else SimResponse.json({"error": "Couldn't authenticate you"}, 401)

    def rate_limit(self, req: SimRequest) -> tuple[SimResponse | None, dict[str, str]]:
        now = self.clock()
        with self.lock:
            headers = {"X-Rate-Limit": str(self.account.limit), "X-Rate-Limit-Remaining": "0"}
            wait = self.account.retry_after(now)
            if wait is not None:
                return SimResponse.text("Too Many Requests", 429, {"Retry-After": str(wait), **headers}), headers
            export = req.path.startswith(EXPORT_PREFIX)
            wait = self.exports.retry_after(now) if export else None
            if wait is not None:
                headers["X-Rate-Limit-Remaining"] = str(self.account.remaining(now))
                body = {"error": "APIRateLimitExceeded",
                        "description": "Number of allowed incremental export API requests per minute exceeded"}
                return SimResponse.json(body, 429, {"Retry-After": str(wait), **headers}), headers
            self.account.hit(now)
            if export:
                self.exports.hit(now)
            headers["X-Rate-Limit-Remaining"] = str(self.account.remaining(now))
            return None, headers

    def error(self, status: int, message: str) -> SimResponse:
        if status == 404:
            return SimResponse.json({"error": "RecordNotFound", "description": "Not found"}, 404)
        return SimResponse.json({"error": _ERRORS.get(status, "Error"), "description": message}, status)

    def handle(self, req: SimRequest) -> SimResponse:
        try:
            return super().handle(req)
        except BadRequest as exc:
            return self._count(self.error(400, str(exc)))

    # -- helpers -----------------------------------------------------------------------------------------
    @staticmethod
    def _int_arg(req: SimRequest, name: str, default: int | None = None) -> int | None:
        raw = req.arg(name)
        if raw is None or raw == "":
            return default
        try:
            return int(float(raw))
        except ValueError:
            raise BadRequest(f"{name} must be an integer") from None

    def _base(self) -> str:
        """The link host; cached records embed it, so a changed ``base_url`` drops the caches."""
        if self._cache_base != self.base_url:
            self._ticket_json.clear()
            self._metric_json.clear()
            self._cache_base = self.base_url
        return self.base_url

    def _cutoff(self) -> int:
        return int(self.clock()) - EXCLUSION_S

    def take_malformed(self, path: str, *, explicit: bool = False) -> int:
        """Consume a pending ``malformed`` fault matching ``path``: how many records to corrupt."""
        with self.lock:
            for fault in self.faults:
                if fault.kind == "malformed" and path.startswith(fault.path) and (fault.path or not explicit):
                    self.faults.remove(fault)
                    return fault.count
        return 0

    @staticmethod
    def corrupt(record: dict[str, Any], k: int) -> dict[str, Any]:
        """Break one record the way a bad upstream would: an unparseable date, or a missing id."""
        bad = dict(record)
        if k % 2 == 0:
            bad["created_at"] = "not-a-date"
            if "timestamp" in bad:
                bad["timestamp"] = "not-a-date"
        else:
            bad["id"] = None
            if "ticket_id" in bad and "event_type" in bad:
                bad["ticket_id"] = None
        return bad

    def _per_page(self, req: SimRequest) -> int:
        per_page = self._int_arg(req, "per_page", self.per_page_max) or self.per_page_max
        if per_page < 1:
            raise BadRequest("per_page must be positive")
        return min(per_page, self.per_page_max)

    def _cursor_position(self, req: SimRequest) -> tuple[int, bool]:
        """Where a cursor export resumes: (key, came from a cursor)."""
        cursor = req.arg("cursor")
        if cursor:
            pos = decode_cursor(cursor)
            if pos is None:
                raise BadRequest("invalid cursor")
            return (pos[0] << 32) | pos[1], True
        start = self._int_arg(req, "start_time")
        if start is None:
            raise BadRequest("start_time or cursor is required")
        return max(0, start) << 32, False

    def _cursor_envelope(self, req: SimRequest, last: int, more: bool, from_cursor: bool) -> dict[str, Any]:
        after = encode_cursor(last >> 32, last & 0xFFFFFFFF)
        keep = {k: req.arg(k) for k in ("per_page", "include", "exclude_deleted", "support_type_scope")
                if req.arg(k) is not None}
        base = f"{self._base()}{req.path}"
        before = req.arg("cursor") if from_cursor else None
        return {"after_url": f"{base}?{urlencode({'cursor': after, **keep})}", "after_cursor": after,
                "before_url": f"{base}?{urlencode({'cursor': before, **keep})}" if before else None,
                "before_cursor": before, "end_of_stream": not more}

    def _hidden_by_scope(self, req: SimRequest) -> Callable[[int], bool] | None:
        """Which ticket ids ``support_type_scope`` leaves out (None: none). Default ``agent``: AI-agent tickets
        are hidden (Incremental Exports reference: 'Possible values are "all", "agent", or "ai_agent".
        Defaults to "agent"'). An unknown value is treated as the default (Zendesk's answer is UNCONFIRMED)."""
        scope = (req.arg("support_type_scope") or "agent").lower()
        if scope == "all":
            return None
        want_ai = scope == "ai_agent"

        def hidden(tid: int) -> bool:
            t = self.world.ticket(tid)
            return t is not None and is_ai_agent(t) != want_ai
        return hidden

    # -- incremental exports -------------------------------------------------------------------------------
    def ticket_json(self, tid: int) -> bytes:
        cached = self._ticket_json.get(tid)
        if cached is None:
            ticket = self.world.ticket(tid)
            assert ticket is not None
            cached = ticket_bytes(ticket, self.gen_ts[tid], self._base(), self.field_ids)
            self._ticket_json[tid] = cached
        return cached

    def metric_json(self, tid: int) -> bytes:
        cached = self._metric_json.get(tid)
        if cached is None:
            ticket = self.world.ticket(tid)
            assert ticket is not None
            cached = metric_bytes(ticket, self.gen_ts[tid], self._base())
            self._metric_json[tid] = cached
        return cached

    def _tickets_export(self, req: SimRequest) -> SimResponse:
        per_page = self._per_page(req)
        pos, from_cursor = self._cursor_position(req)
        if self.timeout_above_per_page is not None and per_page > self.timeout_above_per_page:
            return SimResponse.text("Gateway Timeout", 504)  # the load balancer gives up on a big page
        include = set((req.arg("include") or "").split(","))
        skip = None
        hidden = self._hidden_by_scope(req)
        exclude_deleted = (req.arg("exclude_deleted") or "").lower() in ("true", "1")
        if exclude_deleted or hidden is not None:
            def skip(key: int) -> bool:
                tid = key & 0xFFFFFFFF
                if hidden is not None and hidden(tid):
                    return True
                if not exclude_deleted:
                    return False
                t = self.world.ticket(tid)
                return t is None or t.deleted or t.spam
        with self.lock:
            self._base()
            keys, last, more = self.tickets_idx.scan_after(pos, self._cutoff(), per_page, skip)
            ids = [key & 0xFFFFFFFF for key in keys]
            frags = [self.ticket_json(tid) for tid in ids]
            for k in range(min(self.take_malformed(req.path), len(frags))):
                frags[k] = json.dumps(self.corrupt(json.loads(frags[k]), k)).encode()
            arrays = [("tickets", frags)]
            if "metric_sets" in include:
                arrays.append(("metric_sets", [self.metric_json(tid) for tid in ids]))
        body = splice(arrays, self._cursor_envelope(req, last, more, from_cursor))
        return SimResponse(200, body, {"Content-Type": "application/json; charset=utf-8"})

    def _people_index(self) -> KeyIndex:
        people = self.world.people
        if self._people_idx is None or self._people_idx[0] != len(people):
            self._people_idx = (len(people), KeyIndex((p.updated_at << 32) | p.id for p in people))
        return self._people_idx[1]

    def _users_export(self, req: SimRequest) -> SimResponse:
        per_page = self._per_page(req)
        pos, from_cursor = self._cursor_position(req)
        with self.lock:
            keys, last, more = self._people_index().scan_after(pos, self._cutoff(), per_page)
            users = [render_user(self.world.person(key & 0xFFFFFFFF), self._base(), self.admin_id)  # type: ignore[arg-type]
                     for key in keys]
            for k in range(min(self.take_malformed(req.path, explicit=True), len(users))):
                users[k] = self.corrupt(users[k], k)
        return SimResponse.json({"users": users, **self._cursor_envelope(req, last, more, from_cursor)})

    def _time_envelope(self, req: SimRequest, start: int, last_ts: int | None, done: bool, count: int,
                       extra: dict[str, str]) -> dict[str, Any]:
        end_time = last_ts if last_ts is not None else start
        next_page = None if done else f"{self._base()}{req.path}?{urlencode({'start_time': end_time, **extra})}"
        return {"next_page": next_page, "count": count, "end_time": end_time, "end_of_stream": done}

    def _start_time(self, req: SimRequest) -> int:
        start = self._int_arg(req, "start_time")
        if start is None:
            raise BadRequest("start_time is required")
        return max(0, start)

    def _events_export(self, req: SimRequest) -> SimResponse:
        start = self._start_time(req)
        include = req.arg("include") or ""
        comments = "comment_events" in include.split(",")
        with self.lock:
            if self._events is None:
                self._events = EventIndex(self.world, self._write_audits)
            frags, stamps, done = self._events.page_bytes(self.world, self._write_audits, start, self._cutoff(),
                                                          TIME_PAGE, comments)
            hidden = self._hidden_by_scope(req)
            last_examined = stamps[-1] if stamps else None  # end_time moves past hidden events too
            if hidden is not None:
                kept = [(f, ts) for f, ts in zip(frags, stamps, strict=True)
                        if not hidden(int(json.loads(f)["ticket_id"]))]
                frags, stamps = [f for f, _ in kept], [ts for _, ts in kept]
            for k in range(min(self.take_malformed(req.path, explicit=True), len(frags))):
                bad = self.corrupt(json.loads(frags[k]), k)
                frags[k] = json.dumps(bad, separators=(",", ":")).encode()
                stamps[k] = bad["timestamp"]
        ints = [ts for ts in stamps if isinstance(ts, int)]
        last_ts = stamps[-1] if stamps and isinstance(stamps[-1], int) else (max(ints) if ints else None)
        if isinstance(last_examined, int) and (last_ts is None or last_examined > last_ts):
            last_ts = last_examined
        extra = {"include": include} if include else {}  # next_page echoes include only (what Zendesk keeps is
        # not documented): clients re-add their other parameters, support_type_scope included
        envelope = self._time_envelope(req, start, last_ts, done, len(frags), extra)
        body = splice([("ticket_events", frags)], envelope)
        return SimResponse(200, body, {"Content-Type": "application/json; charset=utf-8"})

    def _orgs_export(self, req: SimRequest) -> SimResponse:
        start = self._start_time(req)
        with self.lock:
            orgs_list = self.world.orgs
            if self._orgs_idx is None or self._orgs_idx[0] != len(orgs_list):
                self._orgs_idx = (len(orgs_list), KeyIndex(((o.updated_at or o.created_at) << 32) | o.id
                                                           for o in orgs_list))
            by_id = {o.id: o for o in orgs_list}
            keys, done = self._orgs_idx[1].time_slice(start, self._cutoff(), TIME_PAGE)
            orgs = [render_org(by_id[key & 0xFFFFFFFF], self._base()) for key in keys]
        last_ts = (keys[-1] >> 32) if keys else None
        envelope = self._time_envelope(req, start, last_ts, done, len(orgs), {})
        return SimResponse.json({"organizations": orgs, **envelope})

    # -- test helpers ------------------------------------------------------------------------------------
    def answer_rating(self, ticket_id: int, score: int, at: int, comment: str | None = None) -> int:
        """The customer answers the ticket's offered survey at ``at`` (1-5, the world's scale): the rating
        record keeps its id and offer time, ``updated_at`` becomes ``at``; the answer is an audit too."""
        with self.lock:
            ticket = self.world.ticket(ticket_id)
            assert ticket is not None and ticket.solved_at is not None, "only a solved ticket is surveyed"
            rid = rating_record_id(ticket)
            old_keys = self._events.world_keys(ticket) if self._events is not None else None
            ticket.rating = Rating(rid, score, comment, at)
            if self._events is not None and old_keys is not None:
                self._events.reindex(ticket, old_keys)
            self.ratings_version += 1
            self._bump(ticket, at)
            return rid

    def _show_ticket(self, req: SimRequest, tid: str) -> SimResponse:
        with self.lock:
            ticket = self.world.ticket(int(tid))
            if ticket is None or ticket.deleted or ticket.spam:
                return self.error(404, "Not found")
            return SimResponse(200, b'{"ticket":' + self.ticket_json(ticket.id) + b"}",
                               {"Content-Type": "application/json; charset=utf-8"})

    def _show_metrics(self, req: SimRequest, tid: str) -> SimResponse:
        with self.lock:
            ticket = self.world.ticket(int(tid))
            if ticket is None or ticket.deleted or ticket.spam:
                return self.error(404, "Not found")
            return SimResponse(200, b'{"ticket_metric":' + self.metric_json(ticket.id) + b"}",
                               {"Content-Type": "application/json; charset=utf-8"})


def zendesk_sim_from_args(tickets: int = 3000, seed: int = 7, *, now: int | None = None, messages: bool = True,
                          **options: Any) -> ZendeskSim:
    """A simulator over a freshly generated world (``options`` go to ``ZendeskSim``)."""
    from connectors.sim.world import generate_world

    return ZendeskSim(generate_world(seed=seed, tickets=tickets, now=now, messages=messages), **options)


def main(argv: list[str] | None = None) -> None:
    """``python -m connectors.sim.zendesk --port P --tickets N --seed S``: serve until Ctrl-C."""
    parser = argparse.ArgumentParser(description="Serve the Zendesk simulator on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tickets", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--email", default="sim@example.com")
    parser.add_argument("--token", default="sim-token")
    parser.add_argument("--no-export-limit", action="store_true", help="lift the 10/min incremental export limit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sim = zendesk_sim_from_args(args.tickets, args.seed, email=args.email, token=args.token,
                                export_limit_per_minute=None if args.no_export_limit else 10)
    server = SimServer(sim, args.port).start()
    logger.info("Zendesk simulator (%d tickets, seed %d) at %s", args.tickets, args.seed, server.url)
    try:
        while server.thread.is_alive():
            server.thread.join(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


__all__ = ["Fault", "ZendeskSim", "main", "zendesk_sim_from_args"]
