"""Zendesk connector: real fixture payloads -> normalized rows, cursor export resume, 504 page shrink, auth."""

from __future__ import annotations

import base64
import copy
import re
from typing import Any

import pytest
import responses

from connectors.errors import AuthenticationError, FatalAPIError, RetriableAPIError
from connectors.normalize import to_epoch
from tests.zendesk_kit import BASE, EMAIL, TOKEN, FakeTime, json_reply, load_fixture, make_connector, make_source, query

TICKETS_URL = f"{BASE}/api/v2/incremental/tickets/cursor.json"
EVENTS_URL = f"{BASE}/api/v2/incremental/ticket_events.json"


@pytest.fixture
def rsps() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def ticket_page(fixtures_dir: Any) -> dict[str, Any]:
    return load_fixture(fixtures_dir, "zendesk_incremental_tickets_cursor_page.json")


@pytest.fixture
def metric(fixtures_dir: Any) -> dict[str, Any]:
    return load_fixture(fixtures_dir, "zendesk_ticket_metric.json")["ticket_metric"]


# -- mapping of the real fixtures ---------------------------------------------------------------------
def test_fixture_ticket_page_maps_to_a_normalized_row(rsps: Any, ticket_page: dict[str, Any]) -> None:
    rsps.add(responses.GET, TICKETS_URL, json=ticket_page)
    pages = list(make_connector().stream("tickets").pages(None))

    assert len(pages) == 1
    page = pages[0]
    assert page.cursor == {"after_cursor": ticket_page["after_cursor"]}
    assert page.done and page.quarantine == []
    (row,) = page.records["tickets"]
    src = ticket_page["tickets"][0]
    assert row["id"] == "35436"
    assert row["subject"] == "Help, my printer is on fire!"
    assert (row["status"], row["vendor_status"], row["priority"]) == ("open", "open", "high")
    assert row["channel"] == "web"
    assert (row["requester_id"], row["organization_id"], row["assignee_id"], row["group_id"]) == (
        "20978392", "509974", "235323", "98738")
    assert row["tags"] == ["enterprise", "other_tag"]
    assert row["custom_fields"] == {"27642": "745", "27648": "yes"}
    assert row["created_at"] == to_epoch("2009-07-20T22:55:29Z") == 1248130529
    assert row["updated_at"] == 1304591932
    assert (row["is_spam"], row["is_merged"]) == (0, 0)
    # no metric set side-loaded for this ticket: vendor metrics unknown, not zero
    assert row["solved_at"] is None and row["vendor_replies"] is None and row["vendor_metrics"] is None
    assert row["raw"] == src
    assert "source" not in row and "severity" not in row
    # the embedded satisfaction rating has no timestamp: ratings come from the ratings stream only
    assert set(page.records) == {"tickets"}


def test_first_request_asks_for_metric_sets_with_configured_page_size(rsps: Any, ticket_page: dict[str, Any]) -> None:
    rsps.add(responses.GET, TICKETS_URL, json=ticket_page)
    connector = make_connector(make_source(per_page=300), start_time=1_600_000_000)
    list(connector.stream("tickets").pages(None))
    sent = query(rsps.calls[0].request.url)
    assert sent == {"per_page": "300", "include": "metric_sets", "start_time": "1600000000",
                    "support_type_scope": "all"}
    headers = rsps.calls[0].request.headers
    assert headers["Accept"] == "application/json"
    expected = base64.b64encode(f"{EMAIL}/token:{TOKEN}".encode()).decode()
    assert headers["Authorization"] == f"Basic {expected}"


def test_oauth_token_is_sent_as_bearer(rsps: Any, ticket_page: dict[str, Any]) -> None:
    rsps.add(responses.GET, TICKETS_URL, json=ticket_page)
    source = make_source(email=None, api_token=None, oauth_token="oauth-abc-123456")
    list(make_connector(source).stream("tickets").pages(None))
    assert rsps.calls[0].request.headers["Authorization"] == "Bearer oauth-abc-123456"


def test_side_loaded_metric_set_fills_vendor_metrics(rsps: Any, ticket_page: dict[str, Any],
                                                      metric: dict[str, Any]) -> None:
    page = copy.deepcopy(ticket_page)
    solved = copy.deepcopy(metric)
    solved.update(ticket_id=35436, reopens=2, replies=3, solved_at="2011-05-05T10:00:00Z")
    solved["reply_time_in_minutes"] = {"calendar": 90, "business": 30}
    solved["first_resolution_time_in_minutes"] = {"calendar": 600, "business": 200}
    solved["full_resolution_time_in_minutes"] = {"calendar": 1440, "business": 480}
    untouched = copy.deepcopy(metric)  # the fixture as served: ticket 145, all times still null
    page["metric_sets"] = [untouched, solved]
    page["tickets"].append({**page["tickets"][0], "id": 145, "status": "new"})
    rsps.add(responses.GET, TICKETS_URL, json=page)

    by_id = {r["id"]: r for r in list(make_connector().stream("tickets").pages(None))[0].records["tickets"]}
    row = by_id["35436"]
    assert row["vendor_first_reply_s"] == 90 * 60
    assert row["vendor_first_resolution_s"] == 600 * 60
    assert row["vendor_full_resolution_s"] == 1440 * 60
    assert (row["vendor_reopens"], row["vendor_replies"]) == (2, 3)
    assert row["solved_at"] == to_epoch("2011-05-05T10:00:00Z")
    assert row["vendor_metrics"]["ticket_id"] == 35436
    fresh = by_id["145"]  # the real fixture metric: nulls stay None, zero counts stay 0
    assert fresh["vendor_first_reply_s"] is None and fresh["solved_at"] is None
    assert (fresh["vendor_reopens"], fresh["vendor_replies"]) == (0, 0)
    assert fresh["vendor_metrics"] == metric


@pytest.mark.parametrize(("vendor", "normalized"), [
    ("new", "new"), ("open", "open"), ("pending", "pending"), ("hold", "on_hold"),
    ("solved", "solved"), ("closed", "closed"), ("deleted", "deleted"),
])
def test_statuses_normalize(rsps: Any, ticket_page: dict[str, Any], vendor: str, normalized: str) -> None:
    ticket_page["tickets"][0]["status"] = vendor
    rsps.add(responses.GET, TICKETS_URL, json=ticket_page)
    (row,) = list(make_connector().stream("tickets").pages(None))[0].records["tickets"]
    assert (row["status"], row["vendor_status"]) == (normalized, vendor)


def test_merged_ticket_and_legacy_fields_alias(rsps: Any, ticket_page: dict[str, Any]) -> None:
    ticket = ticket_page["tickets"][0]
    ticket.update(status="closed", tags=["closed_by_merge"], fields=ticket.pop("custom_fields"))
    rsps.add(responses.GET, TICKETS_URL, json=ticket_page)
    (row,) = list(make_connector().stream("tickets").pages(None))[0].records["tickets"]
    assert row["is_merged"] == 1 and row["status"] == "closed"
    assert row["custom_fields"] == {"27642": "745", "27648": "yes"}


def test_malformed_ticket_is_quarantined_and_the_rest_survive(rsps: Any, ticket_page: dict[str, Any]) -> None:
    good = ticket_page["tickets"][0]
    ticket_page["tickets"] = [
        {**good, "id": 1},
        {**good, "id": 2, "created_at": "not a date"},
        {**good, "id": 3, "status": "exploded"},
        {**good, "id": 4, "custom_fields": [{"value": "no id"}]},
        "not even an object",
        {**good, "id": 5},
    ]
    rsps.add(responses.GET, TICKETS_URL, json=ticket_page)
    (page,) = list(make_connector().stream("tickets").pages(None))
    assert [r["id"] for r in page.records["tickets"]] == ["1", "5"]
    assert [q.record_id for q in page.quarantine] == ["2", "3", "4", None]
    assert all(q.stream == "tickets" for q in page.quarantine)
    assert "not a timestamp" in page.quarantine[0].error and "exploded" in page.quarantine[1].error
    assert page.quarantine[3].raw == "not even an object"
    assert page.cursor == {"after_cursor": ticket_page["after_cursor"]}  # the page still commits its cursor


def test_fixture_ticket_event_page_maps_comment(rsps: Any, fixtures_dir: Any) -> None:
    body = load_fixture(fixtures_dir, "zendesk_incremental_ticket_events_time_page.json")
    rsps.add(responses.GET, EVENTS_URL, json=body)
    connector = make_connector(start_time=1_719_000_000, fake=FakeTime(now=1_720_000_000))
    pages = list(connector.stream("ticket_events").pages(None))
    assert query(rsps.calls[0].request.url) == {"start_time": "1719000000", "include": "comment_events",
                                                "support_type_scope": "all"}
    assert len(pages) == 1 and pages[0].done
    assert pages[0].cursor == {"start_time": 1719792000 - 3600, "high": 1719792000}  # newest read - lookback
    (msg,) = pages[0].records["messages"]
    assert msg == {  # author 35436 is unknown to this connector: no author_role, so a stored one survives
        "id": "926256957614", "ticket_id": "123", "author_id": "35436", "public": 1,
        "kind": "comment", "body": "Test comment", "created_at": 1719792000,
        "raw": body["ticket_events"][0]["child_events"][0],
    }
    assert pages[0].records["ticket_events"] == []


# -- cursor export: resume, no-change run, page shrink -----------------------------------------------
def _cursor_export(tickets: list[dict[str, Any]], per_page_cap: int = 3) -> Any:
    """A cursor-export endpoint over a fixed list: cursor "cN" means "after N tickets"."""

    def callback(request: Any) -> tuple[int, dict[str, str], str]:
        params = query(request.url)
        offset = int(params["cursor"][1:]) if "cursor" in params else 0
        size = min(int(params["per_page"]), per_page_cap)
        chunk = tickets[offset:offset + size]
        after = offset + len(chunk)
        return json_reply({"tickets": chunk, "after_cursor": f"c{after}", "before_cursor": None,
                           "end_of_stream": after >= len(tickets)})

    return callback


def _ticket(good: dict[str, Any], ticket_id: int) -> dict[str, Any]:
    return {**good, "id": ticket_id, "updated_at": f"2024-01-01T00:00:{ticket_id:02d}Z"}


def test_cursor_after_every_page_and_restart_from_any_cursor(rsps: Any, ticket_page: dict[str, Any]) -> None:
    tickets = [_ticket(ticket_page["tickets"][0], i) for i in range(1, 12)]
    rsps.add_callback(responses.GET, TICKETS_URL, callback=_cursor_export(tickets))
    pages = list(make_connector().stream("tickets").pages(None))
    all_ids = [str(t["id"]) for t in tickets]
    assert [p.cursor for p in pages] == [{"after_cursor": c} for c in ("c3", "c6", "c9", "c11")]
    assert [p.done for p in pages] == [False, False, False, True]
    assert [r["id"] for p in pages for r in p.records["tickets"]] == all_ids

    for k, page in enumerate(pages):
        seen_before = [r["id"] for p in pages[:k + 1] for r in p.records["tickets"]]
        resumed = list(make_connector().stream("tickets").pages(page.cursor))
        seen_after = [r["id"] for p in resumed for r in p.records["tickets"]]
        assert seen_before + seen_after == all_ids  # nothing lost, nothing twice


def test_second_run_with_nothing_new_makes_one_request(rsps: Any, ticket_page: dict[str, Any]) -> None:
    tickets = [_ticket(ticket_page["tickets"][0], i) for i in range(1, 5)]
    rsps.add_callback(responses.GET, TICKETS_URL, callback=_cursor_export(tickets))
    first = list(make_connector().stream("tickets").pages(None))
    before = len(rsps.calls)
    again = list(make_connector().stream("tickets").pages(first[-1].cursor))
    assert len(rsps.calls) - before == 1
    assert query(rsps.calls[-1].request.url)["cursor"] == "c4"
    assert "start_time" not in query(rsps.calls[-1].request.url)
    assert [p.count() for p in again] == [0] and again[0].cursor == first[-1].cursor and again[0].done


def test_gateway_timeout_halves_page_size_then_grows_it_back(rsps: Any, ticket_page: dict[str, Any]) -> None:
    tickets = [_ticket(ticket_page["tickets"][0], i) for i in range(1, 60)]
    sizes: list[int] = []
    export = _cursor_export(tickets, per_page_cap=5)

    def callback(request: Any) -> tuple[int, dict[str, str], str]:
        params = query(request.url)
        sizes.append(int(params["per_page"]))
        if "cursor" not in params and int(params["per_page"]) > 250:
            return json_reply({"error": "GatewayTimeout"}, 504)
        return export(request)

    rsps.add_callback(responses.GET, TICKETS_URL, callback=callback)
    pages = list(make_connector(make_source(per_page=1000)).stream("tickets").pages(None))
    assert sizes[:9] == [1000, 500, 250, 250, 250, 250, 250, 500, 500]
    assert sizes[-1] == 1000  # grown back to the configured maximum, never beyond
    assert max(sizes[2:]) == 1000
    assert [r["id"] for p in pages for r in p.records["tickets"]] == [str(t["id"]) for t in tickets]


def test_gateway_timeout_at_minimum_page_size_falls_back_to_http_retries(rsps: Any) -> None:
    sizes: list[int] = []

    def callback(request: Any) -> tuple[int, dict[str, str], str]:
        sizes.append(int(query(request.url)["per_page"]))
        return json_reply({"error": "GatewayTimeout"}, 504)

    rsps.add_callback(responses.GET, TICKETS_URL, callback=callback)
    fake = FakeTime()
    connector = make_connector(make_source(per_page=100, max_retries=2), fake=fake)
    with pytest.raises(RetriableAPIError) as err:
        list(connector.stream("tickets").pages(None))
    assert err.value.status == 504
    assert sizes[:2] == [100, 50] and set(sizes[2:]) == {50} and len(sizes) > 2  # retried at the floor


def test_cursor_that_does_not_advance_is_a_pagination_loop(rsps: Any, ticket_page: dict[str, Any]) -> None:
    rsps.add(responses.GET, TICKETS_URL, json={**ticket_page, "after_cursor": "same", "end_of_stream": False})
    with pytest.raises(FatalAPIError, match="pagination loop"):
        list(make_connector().stream("tickets").pages({"after_cursor": "same"}))


# -- errors -------------------------------------------------------------------------------------------
def test_auth_error_names_source_and_path_not_the_token(rsps: Any) -> None:
    rsps.add(responses.GET, re.compile(re.escape(TICKETS_URL) + r".*"), status=401,
             json={"error": "Couldn't authenticate you"})
    with pytest.raises(AuthenticationError) as err:
        list(make_connector().stream("tickets").pages(None))
    message = str(err.value)
    assert "acme-zd" in message and "/api/v2/incremental/tickets/cursor.json" in message
    assert TOKEN not in message and TOKEN not in repr(err.value.args)
    assert len(rsps.calls) == 1  # 401 is never retried


def test_streams_in_dependency_order() -> None:
    names = [s.name for s in make_connector().streams()]
    assert names == ["ticket_fields", "groups", "organizations", "users", "tickets", "ticket_events",
                     "satisfaction_ratings"]
