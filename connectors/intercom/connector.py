"""The Intercom connector: conversations in (search + retrieve), tags and attributes out.

Streams, in run order: admins -> people (agents), teams -> groups, companies ->
organizations, contacts -> people (customers), conversations -> tickets +
messages + ticket_events + ratings. Their mechanics are in
``streams.py``, the payload mapping in ``mapping.py``, the rate-limit headers in ``ratelimit.py``; this module
holds what is connector-wide: the HTTP client (Bearer token, ``Intercom-Version``,
10-second rate-limit windows whose 429 carries no Retry-After, so the client
waits for ``X-RateLimit-Reset``) and write-back (API-NOTES 3.5).

Deletions cannot be observed: Intercom's search does not return deleted
conversations and publishes no tombstones (API-NOTES 3.4), so a conversation
deleted after it was synced stays in the store as last seen.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests

from config.errors import ConfigError
from connectors.base import Connector, Stream, WriteRequest, WriteResult
from connectors.errors import AuthenticationError, FatalAPIError, SkippableAPIError
from connectors.http import HttpClient, source_options, vendor_code
from connectors.intercom.ratelimit import intercom_rate_headers
from connectors.intercom.settings import IntercomSource
from connectors.intercom.streams import (
    AdminsStream,
    CompaniesStream,
    ContactsStream,
    ConversationsStream,
    StreamContext,
    TeamsStream,
)

logger = logging.getLogger("deskpulse.connectors.intercom")

#: The regional REST hosts (API-NOTES 3.1); a workspace's data lives in exactly one.
API_HOSTS = {"us": "https://api.intercom.io", "eu": "https://api.eu.intercom.io", "au": "https://api.au.intercom.io"}


def check_base_url(source: IntercomSource) -> str:
    """Catch the classic mistake of pasting the web-app URL: only the api.* hosts serve the REST API."""
    host = (urlsplit(source.base_url).hostname or "").lower()
    if host.endswith(("intercom.io", "intercom.com")) and f"https://{host}" not in API_HOSTS.values():
        choices = ", ".join(API_HOSTS.values())
        raise ConfigError(f"source {source.name}: base_url host {host} is not an Intercom REST API host "
                          f"(use one of {choices}, matching the workspace's region)")
    return source.base_url


def build_http(source: IntercomSource, *, clock: Callable[[], float] = time.time,
               sleep: Callable[[float], None] = time.sleep, session: requests.Session | None = None,
               window_s: float = 10.0) -> HttpClient:
    """The client for one workspace. The token travels only in the Authorization header, which the HTTP
    layer knows to scrub from every message."""
    return HttpClient(
        **source_options(source),
        base_url=check_base_url(source),
        headers={
            "Authorization": f"Bearer {source.access_token.get_secret_value()}",
            "Intercom-Version": source.intercom_version,
            "Accept": "application/json",
        },
        rate_headers=functools.partial(intercom_rate_headers, window_s=window_s),
        requests_per_minute=source.requests_per_minute,
        sleep=sleep,
        clock=clock,
        session=session,
    )


class IntercomConnector(Connector):
    """Reads an Intercom workspace incrementally and tags/annotates conversations for distress write-back."""

    kind = "intercom"

    def __init__(self, source: IntercomSource, *, http: HttpClient | None = None,
                 clock: Callable[[], float] = time.time, start_time: int = 0, value_field: str = "arr",
                 workers: int = 4, safety_margin_s: int = 300, companies_refresh_s: int = 6 * 3600) -> None:
        self.source = source
        self.http = http if http is not None else build_http(source, clock=clock)
        self.clock = clock
        self.ctx = StreamContext(
            source=source.name, http=self.http, clock=clock, per_page=source.per_page, start_time=start_time,
            value_attribute=source.value_attribute or value_field, safety_margin_s=safety_margin_s,
            workers=workers, companies_refresh_s=companies_refresh_s, lookback_s=source.lookback_s,
        )
        self._tag_ids: dict[str, str] = {}
        self._tags_listed = False
        self._lock = threading.Lock()

    def streams(self) -> list[Stream]:
        return [AdminsStream(self.ctx), TeamsStream(self.ctx), CompaniesStream(self.ctx), ContactsStream(self.ctx),
                ConversationsStream(self.ctx)]

    # -- write-back ---------------------------------------------------------------------------------
    def write(self, request: WriteRequest) -> WriteResult:
        """Attach/detach tags (by id, recorded as ``admin_id``) and set conversation custom attributes.

        Tagging is additive: other tags stay. A custom-attribute update appends
        bot-authored ``conversation_attribute_updated_by_admin`` parts and bumps
        ``updated_at``, so the conversation comes back in the next sync; those
        parts map to ``ticket_events``, never to agent replies. 404 -> ``gone``;
        400/409/422 -> ``refused`` with Intercom's error code. ``tags`` in the
        result is the full list when the last call returned the conversation.
        """
        cid = str(request.ticket_id)
        if not cid or "/" in cid:
            return WriteResult("refused", f"not an Intercom conversation id: {cid!r}")
        tags: list[str] | None = None
        try:
            if request.add_tags or request.remove_tags:
                admin_id = self._admin_id()
                for name in request.add_tags:
                    tag_id = self._tag_id(name, create=True)
                    self.http.request("POST", f"/conversations/{cid}/tags", json={"id": tag_id, "admin_id": admin_id})
                for name in request.remove_tags:
                    self._untag(cid, name, admin_id)
            if request.fields:
                resp = self.http.request("PUT", f"/conversations/{cid}",
                                         json={"custom_attributes": dict(request.fields)})
                tags = _tag_names(resp)
        except SkippableAPIError as exc:
            gone = exc.status == 404 and vendor_code(exc) in (None, "not_found")  # not tag/admin_not_found
            return WriteResult("gone" if gone else "refused", str(exc), tags)
        except AuthenticationError:
            raise
        except FatalAPIError as exc:
            if exc.status == 400:
                return WriteResult("refused", str(exc), tags)
            raise
        return WriteResult("applied", "", tags)

    def _admin_id(self) -> str:
        if not self.source.admin_id:
            raise FatalAPIError(f"source {self.source.name}: tag write-back needs admin_id (the admin Intercom "
                                "records as the tagger); set it in the source's config", source=self.source.name)
        return str(self.source.admin_id)

    def _tag_id(self, name: str, *, create: bool) -> str | None:
        """The tag's id by name: cached; ``POST /tags`` creates-or-finds it; ``GET /tags`` when only looking."""
        with self._lock:
            if name in self._tag_ids:
                return self._tag_ids[name]
        if create:
            body = self.http.json_answer(self.http.request("POST", "/tags", json={"name": name}), "POST",
                                         need=("id",))
            tag_id = str(body["id"])
            with self._lock:
                self._tag_ids[name] = tag_id
            return tag_id
        if not self._tags_listed:
            listing = self.http.json_answer(self.http.request("GET", "/tags"), "GET")
            items = listing.get("data") or listing.get("tags") or []
            with self._lock:
                for tag in items if isinstance(items, list) else []:
                    if isinstance(tag, dict) and tag.get("name") is not None and tag.get("id") is not None:
                        self._tag_ids.setdefault(str(tag["name"]), str(tag["id"]))
                self._tags_listed = True
        with self._lock:
            return self._tag_ids.get(name)

    def _untag(self, cid: str, name: str, admin_id: str) -> None:
        tag_id = self._tag_id(name, create=False)
        if tag_id is None:
            return  # no such tag in the workspace: nothing to remove
        try:
            self.http.request("DELETE", f"/conversations/{cid}/tags/{tag_id}", json={"admin_id": admin_id})
        except SkippableAPIError as exc:
            if exc.status == 404 and vendor_code(exc) == "tag_not_found":
                return  # already off the conversation
            raise

    def close(self) -> None:
        self.http.close()


def _tag_names(resp: requests.Response) -> list[str] | None:
    try:
        body: Any = resp.json()
    except ValueError:
        return None
    tags = body.get("tags") if isinstance(body, dict) else None
    items = tags.get("tags") if isinstance(tags, dict) else None
    if not isinstance(items, list):
        return None
    return [str(t["name"]) for t in items if isinstance(t, dict) and t.get("name") is not None]


# -- the plugin: what the "deskpulse.connectors" entry point intercom (pyproject.toml) points at -----------
from connectors.plugin import SIM_TOKEN, ConnectorPlugin, SimulatorSetup  # noqa: E402


def _simulator_setup(speedup: int) -> SimulatorSetup:
    """Intercom's per-window limit, scaled by ``speedup``; bearer-token auth; admin 1 tags on write-back."""
    return SimulatorSetup(options={"token": SIM_TOKEN, "limit_per_window": 167 * speedup},
                          source={"access_token": SIM_TOKEN, "admin_id": "1"})


PLUGIN = ConnectorPlugin(
    kind="intercom", settings=IntercomSource, connector=IntercomConnector, http=build_http,
    simulator="connectors.sim.intercom:IntercomSim", simulator_setup=_simulator_setup, writes=True,
    contract="connectors.testing.builtin:INTERCOM", description="Intercom",
    # 2.11: priority / not_priority; 2.16: none (stored as not_priority), low, medium, high, urgent
    severity_map={"priority": 2, "not_priority": 1, "urgent": 3, "high": 2, "medium": 1, "low": 1})
