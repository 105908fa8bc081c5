"""The Freshdesk v2 connector: tickets, conversations, people and CSAT in; tags and custom fields out.

Module map: payload mapping in ``mapping.py``; list paging and the
small streams in ``streams.py``; the ticket streams (keyset paging over
``updated_since``, conversations fetched in the same page) in
``tickets.py``; the rate-limit headers in ``ratelimit.py``. This module holds what is connector-wide: auth
(the API key as Basic-auth user, ``X`` as password), the HTTP client settings (the plan's Tickets List
sub-limit), the stream order and
write-back (API-NOTES.md 2.5).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
import requests.auth

from connectors.base import Connector, Stream, WriteRequest, WriteResult
from connectors.errors import AuthenticationError, FatalAPIError, SkippableAPIError
from connectors.freshdesk.mapping import map_agent, map_company, map_contact, map_group, map_rating, map_time_entry
from connectors.freshdesk.ratelimit import freshdesk_rate_headers
from connectors.freshdesk.settings import FreshdeskSource
from connectors.freshdesk.streams import FullListStream, ListContext, Rows, SinceListStream
from connectors.freshdesk.tickets import TICKETS_PATH, TicketStream
from connectors.http import Budget, HttpClient, json_object, source_options

logger = logging.getLogger("deskpulse.connectors.freshdesk")

STREAM_NAMES = ("groups", "agents", "companies", "contacts", "tickets", "deleted_tickets", "spam_tickets",
                "satisfaction_ratings", "time_entries")
TIME_ENTRY_LOOKBACK_S = 7 * 86400  # time is often logged days after the work; re-read a week each run


class _FreshdeskAuth(requests.auth.HTTPBasicAuth):
    """Basic ``api_key:X``; the repr never shows the key."""

    def __repr__(self) -> str:
        return "FreshdeskAuth(***)"


def build_http(source: FreshdeskSource, *, clock: Callable[[], float] = time.time,
               sleep: Callable[[float], None] = time.sleep, session: requests.Session | None = None) -> HttpClient:
    """The client for one Freshdesk account: auth, JSON headers, rate headers, the Tickets List budget."""
    budgets = []
    if source.tickets_list_per_minute:
        # Only the list call counts against the plan's Tickets List sub-limit, not /tickets/{id}/...
        budgets.append(Budget("freshdesk-tickets-list", r"/api/v2/tickets/?$", source.tickets_list_per_minute, 60.0))
    return HttpClient(
        **source_options(source),
        base_url=source.base_url,
        auth=_FreshdeskAuth(source.api_key.get_secret_value(), "X"),
        headers={"Accept": "application/json", "Content-Type": "application/json"},
        rate_headers=freshdesk_rate_headers,
        budgets=budgets,
        requests_per_minute=source.requests_per_minute,
        sleep=sleep,
        clock=clock,
        session=session,
    )


def _rows(table: str, mapper: Callable[[Mapping[str, Any]], dict[str, Any]]) -> Callable[[Mapping[str, Any]], Rows]:
    return lambda record: {table: [mapper(record)]}


class FreshdeskConnector(Connector):
    """Reads a Freshdesk account incrementally and writes distress tags/fields back to tickets."""

    kind = "freshdesk"

    def __init__(self, source: FreshdeskSource, *, http: HttpClient | None = None,
                 clock: Callable[[], float] = time.time, start_time: int = 0, value_field: str = "arr",
                 per_page: int = 100) -> None:
        if not 1 <= per_page <= 100:
            raise ValueError("per_page must be 1..100 (Freshdesk refuses more)")
        self.source = source
        self.http = http if http is not None else build_http(source, clock=clock)
        self.ctx = ListContext(http=self.http, source=source.name, per_page=per_page, max_pages=source.max_pages,
                               workers=source.conversation_workers, start_time=start_time, value_field=value_field,
                               clock=clock, lookback_s=source.lookback_s)

    def streams(self) -> list[Stream]:
        ctx = self.ctx
        return [
            FullListStream(ctx, "groups", "/api/v2/groups", _rows("groups", map_group)),
            FullListStream(ctx, "agents", "/api/v2/agents", _rows("people", map_agent)),
            FullListStream(ctx, "companies", "/api/v2/companies",
                           _rows("organizations", lambda c: map_company(c, ctx.value_field))),
            SinceListStream(ctx, "contacts", "/api/v2/contacts", "_updated_since", "updated_at",
                            _rows("people", map_contact)),
            TicketStream(ctx, "tickets"),
            TicketStream(ctx, "deleted_tickets", filter_="deleted"),
            TicketStream(ctx, "spam_tickets", filter_="spam"),
            SinceListStream(ctx, "satisfaction_ratings", "/api/v2/surveys/satisfaction_ratings", "created_since",
                            "created_at", _rows("ratings", map_rating)),
            SinceListStream(ctx, "time_entries", "/api/v2/time_entries", "executed_after", "executed_at",
                            _rows("time_entries", map_time_entry), lookback_s=TIME_ENTRY_LOOKBACK_S),
        ]

    # -- write-back ---------------------------------------------------------------------------------
    def write(self, request: WriteRequest) -> WriteResult:
        """Add/remove tags and set custom fields on one ticket.

        ``PUT /tickets/{id}`` with ``tags`` replaces the whole list and v2 has no add-tag call, so the
        ticket is re-read just before the write and the union (minus ``remove_tags``) is sent. The
        window between the two calls is unavoidable; keeping it to two back-to-back calls is what we can
        do. Custom fields go as ``{"custom_fields": {"cf_name": value}}`` (the ``cf_`` prefix is added
        when the configured name lacks it). Nothing to change -> no PUT (a PUT bumps ``updated_at``).
        404 -> ``gone``; 400/409/422 -> ``refused`` with the vendor's label.
        """
        ticket_id = str(request.ticket_id)
        if not ticket_id.isdigit():
            return WriteResult("refused", f"not a Freshdesk ticket id: {ticket_id!r}")
        path = f"{TICKETS_PATH}/{ticket_id}"
        try:
            # Strict: the PUT replaces the tag list, so an unreadable pre-read must fail the write, not read as
            # "no tags" and clobber the agents' tags.
            current = self.http.json_answer(self.http.request("GET", path), "GET")
            existing = [str(t) for t in current.get("tags") or []]
            removed = set(request.remove_tags)
            wanted = [t for t in existing if t not in removed]
            wanted += [t for t in dict.fromkeys(request.add_tags) if t not in wanted and t not in removed]
            body: dict[str, Any] = {}
            if wanted != existing:
                body["tags"] = wanted
            if request.fields:
                body["custom_fields"] = {_cf(key): value for key, value in request.fields.items()}
            if not body:
                return WriteResult("applied", "no change needed", existing)
            updated = json_object(self._put(path, body))
        except SkippableAPIError as exc:
            return WriteResult("gone" if exc.status == 404 else "refused", str(exc))
        except AuthenticationError:
            raise
        except FatalAPIError as exc:
            if exc.status == 400:
                return WriteResult("refused", str(exc))
            raise
        tags = updated.get("tags")
        return WriteResult("applied", "", [str(t) for t in tags] if isinstance(tags, list) else wanted)

    def resolve_field(self, name: str) -> str | None:
        """``deskpulse_cdi`` and ``cf_deskpulse_cdi`` both name the store key ``cf_deskpulse_cdi`` (see write)."""
        return _cf(name)

    def _put(self, path: str, body: dict[str, Any]) -> requests.Response:
        """``PUT /tickets/{id}?enforce_mandatory=false``: our tag/field write must not be refused because the
        ticket (typically one created by e-mail) lacks a value for a field the agent form requires.

        Freshdesk validates required fields on every update (API-NOTES 6.3); ``enforce_mandatory`` is the
        switch its API takes on updates (Freshdesk's own API tests use it for contacts and companies; for
        tickets it is reported, UNCONFIRMED). An account that refuses the parameter itself (400
        ``invalid_field``) gets the plain PUT once more: a refused PUT changed nothing, so the retry is safe.
        """
        try:
            return self.http.request("PUT", path, json=body, params={"enforce_mandatory": "false"})
        except FatalAPIError as exc:
            if exc.status != 400 or getattr(exc, "vendor_code", None) != "invalid_field":
                raise
        return self.http.request("PUT", path, json=body)

    def close(self) -> None:
        self.http.close()


def _cf(name: str) -> str:
    return name if name.startswith("cf_") else f"cf_{name}"


# -- the plugin: what the "deskpulse.connectors" entry point freshdesk (pyproject.toml) points at -----------
from connectors.plugin import SIM_KEY, ConnectorPlugin, SimulatorSetup  # noqa: E402


def _simulator_setup(speedup: int) -> SimulatorSetup:
    """Freshdesk's per-minute account limit, scaled by ``speedup``; API-key auth."""
    return SimulatorSetup(options={"api_key": SIM_KEY, "calls_per_minute": 400 * speedup},
                          source={"api_key": SIM_KEY})


PLUGIN = ConnectorPlugin(
    kind="freshdesk", settings=FreshdeskSource, connector=FreshdeskConnector, http=build_http,
    simulator="connectors.sim.freshdesk:FreshdeskSim", simulator_setup=_simulator_setup, writes=True,
    contract="connectors.testing.builtin:FRESHDESK", description="Freshdesk",
    # priority as Freshdesk sends it: 1 low, 2 medium, 3 high, 4 urgent (KPIS.md)
    severity_map={"4": 3, "3": 2, "2": 1, "1": 1},
    # Freshdesk archives closed, inactive tickets (120 days by default, Freshworks KB article 212901) and its
    # API lists no archived ticket: one can be read by id, none can be found (API-NOTES 6.3). deskpulse keeps
    # what it synced before a ticket was archived, but what was archived before the first sync is out of reach.
    history_note="{source}: closed tickets archived by Freshdesk before the first sync are not visible via the "
                 "API; history before {since} may be partial")
