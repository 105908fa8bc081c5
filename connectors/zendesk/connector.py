"""The Zendesk Support connector: incremental exports in, tags and custom fields out.

Streams are declared in ``SPECS`` (``connectors.streams.StreamSpec``, STYLE.md #4) and run by the shared
request loop and paginators (``connectors/streams.py``, ``connectors/pagination.py``) with Zendesk's quirks
(``streams.py``); the payload mapping is in ``mapping.py``, the rate-limit headers in ``ratelimit.py``. This
module holds only what is connector-wide: auth, the HTTP client settings (the incremental-export budget of
10 requests/minute), the stream order and write-back (API-NOTES.md 1.5).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import requests

from connectors.base import Connector, Stream, WriteRequest, WriteResult
from connectors.errors import SkippableAPIError
from connectors.http import Budget, HttpClient, json_object, source_options
from connectors.normalize import to_number
from connectors.zendesk.mapping import (
    Rows,
    map_group,
    map_organization,
    map_rating,
    map_ticket,
    map_ticket_event,
    map_ticket_field,
    map_user,
)
from connectors.zendesk.ratelimit import zendesk_rate_headers
from connectors.zendesk.settings import ZendeskSource
from connectors.zendesk.streams import MapContext, RoleBook, StreamOptions, StreamSpec, ZendeskStream

logger = logging.getLogger("deskpulse.connectors.zendesk")


# -- stream declarations ----------------------------------------------------------------------------
def _fields_rows(record: dict[str, Any], ctx: MapContext) -> Rows:
    return {"fields": [map_ticket_field(record)]}


def _groups_rows(record: dict[str, Any], ctx: MapContext) -> Rows:
    return {"groups": [map_group(record)]}


def _org_rows(record: dict[str, Any], ctx: MapContext) -> Rows:
    return {"organizations": [map_organization(record, ctx.value_field)]}


def _user_rows(record: dict[str, Any], ctx: MapContext) -> Rows:
    return {"people": [map_user(record)]}


def _ticket_rows(record: dict[str, Any], ctx: MapContext) -> Rows:
    ticket = map_ticket(record, ctx.metrics)
    if ctx.time_field is None:
        return {"tickets": [ticket]}
    # Zendesk's Time Tracking app keeps the total seconds spent in a ticket field: the real effort data
    # aht_mean_s needs (KPIS.md), as one entry per ticket that the next export of the ticket updates.
    spent = to_number((ticket.get("custom_fields") or {}).get(ctx.time_field))
    effort = [] if not spent or spent <= 0 else [{
        "id": f"tt-{ticket['id']}", "ticket_id": ticket["id"], "agent_id": ticket.get("assignee_id"),
        "seconds": int(spent), "created_at": ticket.get("solved_at") or ticket.get("updated_at"),
        "raw": {"field": ctx.time_field, "value": spent}}]
    return {"tickets": [ticket], "time_entries": effort}


def _event_rows(record: dict[str, Any], ctx: MapContext) -> Rows:
    return map_ticket_event(record)


def _rating_rows(record: dict[str, Any], ctx: MapContext) -> Rows:
    row = map_rating(record)
    return {"ratings": [row] if row is not None else []}


# Zendesk's incremental ticket and ticket-event exports list only tickets of one support type, "agent" by
# default; "all" adds tickets handled by AI agents (``support_type_scope``: "all" | "agent" | "ai_agent",
# Incremental Exports API reference, parameters of the ticket export (cursor and time based) and of the
# ticket event export). Sent on every request, cursor pages included: a server that ignores it loses nothing.
ALL_SUPPORT_TYPES = ("support_type_scope", "all")

# In run order: reference data first, then the people a ticket points at, tickets, their events, ratings.
SPECS: tuple[StreamSpec, ...] = (
    StreamSpec("ticket_fields", "/api/v2/ticket_fields.json", "ticket_fields", "list", ("fields",), _fields_rows),
    StreamSpec("groups", "/api/v2/groups.json", "groups", "list", ("groups",), _groups_rows),
    StreamSpec("organizations", "/api/v2/incremental/organizations.json", "organizations", "time_export",
               ("organizations",), _org_rows, since_key="updated_at"),
    StreamSpec("users", "/api/v2/incremental/users/cursor.json", "users", "cursor_export", ("people",), _user_rows),
    StreamSpec("tickets", "/api/v2/incremental/tickets/cursor.json", "tickets", "cursor_export", ("tickets",),
               _ticket_rows, params=(("include", "metric_sets"), ALL_SUPPORT_TYPES)),
    StreamSpec("ticket_events", "/api/v2/incremental/ticket_events.json", "ticket_events", "time_export",
               ("messages", "ticket_events"), _event_rows, params=(("include", "comment_events"), ALL_SUPPORT_TYPES),
               since_key="timestamp"),
    # bookmarked on updated_at: the record is created when the survey is offered, the answer updates it
    StreamSpec("satisfaction_ratings", "/api/v2/satisfaction_ratings.json", "satisfaction_ratings", "list",
               ("ratings",), _rating_rows, since_key="updated_at", feature="customer satisfaction"),
)


# -- HTTP -------------------------------------------------------------------------------------------
class BearerAuth(requests.auth.AuthBase):
    """``Authorization: Bearer <oauth token>``; the token lives only in this object and the header."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth(***)"


def build_http(source: ZendeskSource, *, clock: Callable[[], float] = time.time,
               sleep: Callable[[float], None] = time.sleep) -> HttpClient:
    """The client for one Zendesk source: auth, JSON headers, export budget, rate headers, timeouts."""
    if source.oauth_token is not None:
        auth: requests.auth.AuthBase = BearerAuth(source.oauth_token.get_secret_value())
    else:
        token = source.api_token.get_secret_value() if source.api_token is not None else ""
        auth = requests.auth.HTTPBasicAuth(f"{source.email}/token", token)  # email+token: ZendeskSource validates
    return HttpClient(
        **source_options(source),
        base_url=source.base_url,
        auth=auth,
        headers={"Accept": "application/json", "Content-Type": "application/json"},
        rate_headers=zendesk_rate_headers,
        budgets=[Budget("zendesk-incremental-exports", r"/api/v2/incremental/",
                        source.export_requests_per_minute, 60.0)],
        requests_per_minute=source.requests_per_minute,
        sleep=sleep,
        clock=clock,
    )


# -- the connector ----------------------------------------------------------------------------------
class ZendeskConnector(Connector):
    """Reads a Zendesk account incrementally and writes distress tags/fields back to tickets."""

    kind = "zendesk"

    def __init__(self, source: ZendeskSource, *, http: HttpClient | None = None,
                 clock: Callable[[], float] = time.time, start_time: int = 0, value_field: str = "arr") -> None:
        self.source = source
        self.http = http if http is not None else build_http(source, clock=clock)
        self.clock = clock
        self.options = StreamOptions(source=source.name, per_page=source.per_page, start_time=start_time,
                                     value_field=value_field, time_field=source.time_tracking_field,
                                     lookback=source.lookback_s, clock=clock)
        self.roles = RoleBook()
        self._field_ids: dict[str, int] | None = None

    def streams(self) -> list[Stream]:
        return [ZendeskStream(spec, self.http, self.options, self.roles) for spec in SPECS]

    def stream(self, name: str) -> ZendeskStream:
        """One stream by name (tests, and the write path's field lookup)."""
        for spec in SPECS:
            if spec.name == name:
                return ZendeskStream(spec, self.http, self.options, self.roles)
        raise KeyError(name)

    # -- write-back ---------------------------------------------------------------------------------
    def write(self, request: WriteRequest) -> WriteResult:
        """Add/remove tags (tag endpoints append/remove, never replace) and set custom fields.

        404 -> ``gone``; 409/422 (validation, closed ticket, conflict) -> ``refused`` with the
        vendor's label. The tags in the result are the ticket's full list after the last call.
        """
        ticket_id = str(request.ticket_id)
        if not ticket_id.isdigit():
            return WriteResult("refused", f"not a Zendesk ticket id: {ticket_id!r}")
        tags: list[str] | None = None
        try:
            base = f"/api/v2/tickets/{ticket_id}"
            if request.add_tags:
                tags = self._tags(self.http.request("PUT", f"{base}/tags.json", json={"tags": request.add_tags}))
            if request.remove_tags:
                tags = self._tags(self.http.request("DELETE", f"{base}/tags.json",
                                                    json={"tags": request.remove_tags}))
            if request.fields:
                custom = []
                for key, value in request.fields.items():
                    field_id = self._field_id(key)
                    if field_id is None:
                        return WriteResult("refused", f"unknown custom field {key!r}", tags)
                    custom.append({"id": field_id, "value": value})
                resp = self.http.request("PUT", f"{base}.json", json={"ticket": {"custom_fields": custom}})
                ticket = json_object(resp).get("ticket") or {}
                if isinstance(ticket.get("tags"), list):
                    tags = [str(t) for t in ticket["tags"]]
        except SkippableAPIError as exc:
            outcome = "gone" if exc.status == 404 else "refused"
            return WriteResult(outcome, str(exc), tags)
        return WriteResult("applied", "", tags)

    def _tags(self, resp: requests.Response) -> list[str] | None:
        tags = json_object(resp).get("tags")
        return [str(t) for t in tags] if isinstance(tags, list) else None

    def resolve_field(self, name: str) -> str | None:
        """The store keys custom fields by id (``zendesk_map.custom_fields``): a title is looked up once."""
        field_id = self._field_id(name)
        return None if field_id is None else str(field_id)

    def _field_id(self, key: str) -> int | None:
        """A custom field given by id (``"27642"``) or by title, looked up once from ticket_fields."""
        if str(key).isdigit():
            return int(key)
        if self._field_ids is None:
            found: dict[str, int] = {}  # cached only once complete: a failed listing is retried, not half-kept
            for page in self.stream("ticket_fields").pages(None):
                for row in page.records.get("fields", ()):
                    if row.get("name"):
                        found[str(row["name"]).lower()] = int(row["id"])
            self._field_ids = found
        return self._field_ids.get(str(key).lower())

    def close(self) -> None:
        self.http.close()


# -- the plugin: what the "deskpulse.connectors" entry point zendesk (pyproject.toml) points at -----------
from connectors.plugin import SIM_EMAIL, SIM_TOKEN, ConnectorPlugin, SimulatorSetup  # noqa: E402


def _simulator_setup(speedup: int) -> SimulatorSetup:
    """Zendesk's export and account limits (API-NOTES 1.5), scaled by ``speedup``; email/token auth."""
    return SimulatorSetup(
        options={"email": SIM_EMAIL, "token": SIM_TOKEN, "export_limit_per_minute": 10 * speedup,
                 "account_limit_per_minute": 700 * speedup},
        source={"email": SIM_EMAIL, "api_token": SIM_TOKEN, "export_requests_per_minute": 10 * speedup})


PLUGIN = ConnectorPlugin(
    kind="zendesk", settings=ZendeskSource, connector=ZendeskConnector, http=build_http,
    simulator="connectors.sim.zendesk:ZendeskSim", simulator_setup=_simulator_setup, writes=True,
    contract="connectors.testing.builtin:ZENDESK", description="Zendesk Support",
    severity_map={"urgent": 3, "high": 2, "normal": 1, "low": 1})  # KPIS.md
