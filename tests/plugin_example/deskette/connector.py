"""The Deskette connector: three streams and one write call, on deskpulse's public plugin API only.

Deskette's API (imaginary, served by ``deskette.sim``):
``GET /api/organizations?page=N&limit=L`` and ``GET /api/people?page=N&limit=L`` list everything, a page at
a time (``has_more``); ``GET /api/tickets?since=T&after=ID&limit=L`` lists tickets in ``(updated_at, id)``
order strictly after ``(T, ID)``, each with its messages and rating; ``POST /api/tickets/ID/tags`` with
``{"add": [...], "remove": [...]}`` changes a ticket's tag set and answers the full list.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import requests

from connectors.base import Connector, Page, Quarantined, Stream, WriteRequest, WriteResult, time_bookmark
from connectors.errors import APIError
from connectors.http import HttpClient, source_options
from deskette.settings import DesketteSource

Row = dict[str, Any]


class BearerAuth(requests.auth.AuthBase):
    """``Authorization: Bearer <key>``: the HTTP client scrubs that header's value from every log and error."""

    def __init__(self, key: str) -> None:
        self._key = key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._key}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth(***)"


def build_http(source: DesketteSource, *, clock: Callable[[], float] = time.time,
               sleep: Callable[[float], None] = time.sleep) -> HttpClient:
    """deskpulse's HTTP client (retries, Retry-After, deadline, redaction) with Deskette's auth."""
    return HttpClient(**source_options(source), base_url=source.base_url,
                      auth=BearerAuth(source.api_key.get_secret_value()),
                      requests_per_minute=source.requests_per_minute, sleep=sleep, clock=clock)


def _epoch(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"not a unix time: {value!r}")
    return value


def _id(value: Any) -> str | None:
    return None if value is None else str(value)


def map_ticket(t: Row) -> dict[str, list[Row]]:
    """One Deskette ticket -> its ``tickets`` row, its ``messages`` and its ``ratings`` row."""
    tid = str(t["id"])
    deleted = t["status"] in ("deleted", "spam")
    ticket = {"id": tid, "subject": t.get("subject"), "status": "deleted" if deleted else t["status"],
              "vendor_status": t["status"], "priority": t.get("priority"), "channel": t.get("channel"),
              "requester_id": _id(t.get("requester_id")), "organization_id": _id(t.get("organization_id")),
              "assignee_id": _id(t.get("assignee_id")), "group_id": _id(t.get("group_id")),
              "tags": list(t.get("tags") or []), "custom_fields": dict(t.get("fields") or {}),
              "created_at": _epoch(t["created_at"]), "updated_at": _epoch(t["updated_at"]),
              "solved_at": t.get("solved_at"), "is_spam": int(t["status"] == "spam"), "raw": t}
    messages = [{"id": str(m["id"]), "ticket_id": tid, "author_id": _id(m.get("author_id")),
                 "author_role": m["role"], "public": int(bool(m.get("public"))),
                 "kind": "description" if i == 0 else "comment", "body": m.get("body") or "",
                 "created_at": _epoch(m["created_at"]), "raw": m} for i, m in enumerate(t.get("messages") or [])]
    rating = t.get("rating")
    ratings = [] if not rating else [{
        "id": str(rating["id"]), "ticket_id": tid, "requester_id": ticket["requester_id"],
        "assignee_id": ticket["assignee_id"], "kind": "csat", "score_raw": str(rating["score"]),
        "score_1_5": float(rating["score"]), "score": None, "comment": rating.get("comment"),
        "created_at": _epoch(rating["created_at"]), "raw": rating}]
    return {"tickets": [ticket], "messages": messages, "ratings": ratings}


class ListStream(Stream):
    """A full listing read page by page: the cursor is the next page, None once the listing is done.
    Subclasses name the stream, its path and its table (which is also the records key)."""

    path: ClassVar[str] = ""
    table: ClassVar[str] = ""

    def __init__(self, http: HttpClient, per_page: int) -> None:
        self.http, self.per_page = http, per_page

    def mapper(self, record: Row) -> Row:
        raise NotImplementedError

    def pages(self, cursor: Any | None) -> Iterator[Page]:
        page = int(cursor or 1)
        while True:
            body = self.http.get_json(self.path, {"page": page, "limit": self.per_page}, expect=dict)
            rows: list[Row] = []
            bad: list[Quarantined] = []
            for record in body.get(self.table) or []:
                try:
                    rows.append(self.mapper(record))
                except (KeyError, TypeError, ValueError) as exc:
                    bad.append(Quarantined(self.name, _id(record.get("id")), f"{type(exc).__name__}: {exc}", record))
            more = bool(body.get("has_more"))
            page += 1
            yield Page({self.table: rows}, page if more else None, bad, done=not more)
            if not more:
                return


class TicketStream(Stream):
    """Tickets in ``(updated_at, id)`` order: each page's cursor is its last key, so a resume is exact and
    a tie at a page boundary is never skipped; a finished run leaves ``time_bookmark(newest, run start,
    lookback)`` behind (DESIGN.md sync rule 2), and the re-read overlap is absorbed by upserts."""

    name = "tickets"

    def __init__(self, http: HttpClient, per_page: int, lookback_s: int, clock: Callable[[], float]) -> None:
        self.http, self.per_page, self.lookback_s, self.clock = http, per_page, lookback_s, clock

    def pages(self, cursor: Any | None) -> Iterator[Page]:
        run_start = int(self.clock())
        since, after = (int(cursor["since"]), int(cursor["after"])) if cursor else (0, 0)
        newest = since if after else None  # a resumed cursor's key is a stored ticket's updated_at
        while True:
            body = self.http.get_json("/api/tickets", {"since": since, "after": after, "limit": self.per_page},
                                      expect=dict)
            records: dict[str, list[Row]] = {"tickets": [], "messages": [], "ratings": []}
            bad: list[Quarantined] = []
            for t in body.get("tickets") or []:
                try:
                    for table, rows in map_ticket(t).items():
                        records[table].extend(rows)
                except (KeyError, TypeError, ValueError) as exc:
                    bad.append(Quarantined(self.name, _id(t.get("id")), f"{type(exc).__name__}: {exc}", t))
                since, after = int(t["updated_at"]), int(t["id"])
                newest = since
            if body.get("has_more"):
                yield Page(records, {"since": since, "after": after}, bad)
                continue
            # nothing read at all: keep the bookmark (stepping back a lookback per quiet run would drift)
            bookmark = since if newest is None else time_bookmark(newest, run_start, self.lookback_s)
            yield Page(records, {"since": bookmark, "after": 0}, bad, done=True)
            return


class PeopleStream(ListStream):
    name, path, table = "people", "/api/people", "people"

    def mapper(self, p: Row) -> Row:
        return {"id": str(p["id"]), "name": p.get("name"), "email": p.get("email"), "role": p["role"],
                "organization_id": _id(p.get("organization_id")), "created_at": _epoch(p["created_at"]),
                "updated_at": _epoch(p["updated_at"]), "raw": p}


class OrganizationsStream(ListStream):
    name, path, table = "organizations", "/api/organizations", "organizations"

    def mapper(self, o: Row) -> Row:
        return {"id": str(o["id"]), "name": o.get("name"), "value": o.get("value"),
                "created_at": _epoch(o["created_at"]), "updated_at": _epoch(o["updated_at"]), "raw": o}


class DesketteConnector(Connector):
    """Reads a Deskette account incrementally and writes distress tags back to tickets."""

    kind = "deskette"

    def __init__(self, source: DesketteSource, *, http: HttpClient | None = None,
                 clock: Callable[[], float] = time.time, per_page: int | None = None) -> None:
        self.source = source
        self.http = http if http is not None else build_http(source, clock=clock)
        self.clock = clock
        self.per_page = per_page or source.per_page

    def streams(self) -> list[Stream]:
        return [OrganizationsStream(self.http, self.per_page), PeopleStream(self.http, self.per_page),
                TicketStream(self.http, self.per_page, self.source.lookback_s, self.clock)]

    def write(self, request: WriteRequest) -> WriteResult:
        """Tags are a set on Deskette: adding a present tag or removing an absent one changes nothing, so a
        replayed write is harmless. 404 -> ``gone``; another refusal -> ``refused``."""
        if request.fields:
            return WriteResult("refused", "Deskette has no custom fields to write")
        try:
            resp = self.http.request("POST", f"/api/tickets/{request.ticket_id}/tags",
                                     json={"add": request.add_tags, "remove": request.remove_tags})
        except APIError as exc:
            if getattr(exc, "status", None) == 404:
                return WriteResult("gone", f"ticket {request.ticket_id} not found")
            if getattr(exc, "status", None) in (409, 422):
                return WriteResult("refused", str(exc))
            raise
        tags = self.http.decode(resp, "POST", expect=dict).get("tags")
        return WriteResult("applied", tags=[str(t) for t in tags] if isinstance(tags, list) else None)

    def close(self) -> None:
        self.http.close()
