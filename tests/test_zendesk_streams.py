"""Zendesk streams other than tickets: time-based exports, users/roles, organizations, ratings, list endpoints."""

from __future__ import annotations

from typing import Any

import pytest
import responses

from connectors.errors import FatalAPIError
from tests.zendesk_kit import BASE, FakeTime, json_reply, make_connector, make_source, query, rows

EVENTS_URL = f"{BASE}/api/v2/incremental/ticket_events.json"
ORGS_URL = f"{BASE}/api/v2/incremental/organizations.json"
USERS_URL = f"{BASE}/api/v2/incremental/users/cursor.json"
RATINGS_URL = f"{BASE}/api/v2/satisfaction_ratings.json"
GROUPS_URL = f"{BASE}/api/v2/groups.json"
FIELDS_URL = f"{BASE}/api/v2/ticket_fields.json"


@pytest.fixture
def rsps() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def _event(event_id: int, ts: int, ticket_id: int = 7, children: list[dict[str, Any]] | None = None,
           updater: int = 501) -> dict[str, Any]:
    return {"id": event_id, "ticket_id": ticket_id, "timestamp": ts, "created_at": None, "updater_id": updater,
            "via": "web", "event_type": "Audit",
            "child_events": children if children is not None else [
                {"id": event_id * 10, "event_type": "Comment", "body": f"c{event_id}", "public": True}]}


def _time_export(key: str, items: list[dict[str, Any]], limit: int, time_key: str = "timestamp") -> Any:
    """A time-based export over fixed items: ``start_time`` is inclusive, so boundary items repeat."""

    def callback(request: Any) -> tuple[int, dict[str, str], str]:
        start = int(query(request.url)["start_time"])
        chunk = [i for i in items if i[time_key] >= start][:limit]
        end_time = chunk[-1][time_key] if chunk else start
        last = len([i for i in items if i[time_key] >= start]) <= limit
        next_page = None if last else f"{request.url.split('?')[0]}?start_time={end_time}&include=comment_events"
        return json_reply({key: chunk, "count": len(chunk), "end_time": end_time, "next_page": next_page,
                           "end_of_stream": last})

    return callback


# -- time-based export ---------------------------------------------------------------------------------
def test_equal_timestamps_across_a_page_boundary_lose_nothing(rsps: Any) -> None:
    # events 3 and 4 share a second; the first page ends between them
    events = [_event(1, 100), _event(2, 150), _event(3, 200), _event(4, 200), _event(5, 300)]
    rsps.add_callback(responses.GET, EVENTS_URL, callback=_time_export("ticket_events", events, limit=3))
    pages = list(make_connector(make_source(lookback="0s")).stream("ticket_events").pages(None))
    got = [m["id"] for m in rows(pages, "messages")]
    assert got == ["10", "20", "30", "30", "40", "50"]  # 30 twice (same primary key: harmless), 40 not lost
    # the bookmark is the newest timestamp read (minus a lookback of 0 here): start_time is inclusive
    assert [p.cursor for p in pages] == [{"start_time": 200, "high": 200}, {"start_time": 300, "high": 300}]
    assert [query(c.request.url)["start_time"] for c in rsps.calls] == ["0", "200"]


def test_more_items_in_one_second_than_a_page_holds_is_reported_not_looped(rsps: Any) -> None:
    events = [_event(1, 100), _event(2, 200), _event(3, 200), _event(4, 300)]
    rsps.add_callback(responses.GET, EVENTS_URL, callback=_time_export("ticket_events", events, limit=2))
    with pytest.raises(FatalAPIError, match="pagination loop"):
        list(make_connector().stream("ticket_events").pages(None))
    assert len(rsps.calls) == 2


def test_resume_rereads_the_lookback_window(rsps: Any) -> None:
    events = [_event(1, 1000), _event(2, 1050), _event(3, 1100)]
    rsps.add_callback(responses.GET, EVENTS_URL, callback=_time_export("ticket_events", events, limit=10))
    # a cursor of the older shape ({"start_time": end_time}) counts as the newest timestamp read
    pages = list(make_connector(make_source(lookback="60s")).stream("ticket_events").pages({"start_time": 1100}))
    assert query(rsps.calls[0].request.url)["start_time"] == "1040"
    assert {m["id"] for m in rows(pages, "messages")} == {"20", "30"}
    assert pages[-1].cursor == {"start_time": 1040, "high": 1100} and len(rsps.calls) == 1


def test_next_page_that_repeats_the_current_page_is_a_loop(rsps: Any) -> None:
    stuck = f"{EVENTS_URL}?start_time=500&include=comment_events"
    rsps.add(responses.GET, EVENTS_URL, json={"ticket_events": [_event(1, 500)], "end_time": 500,
                                              "next_page": stuck, "end_of_stream": False})
    with pytest.raises(FatalAPIError, match="pagination loop"):
        list(make_connector().stream("ticket_events").pages({"start_time": 560}))


def test_audit_children_become_description_comments_and_tracked_changes(rsps: Any) -> None:
    create = _event(1, 1000, ticket_id=9, updater=77, children=[
        {"id": 11, "event_type": "Create", "field_name": "status", "value": "new"},
        {"id": 12, "event_type": "Create", "field_name": "subject", "value": "Printer"},
        {"id": 13, "event_type": "Comment", "body": "It is on fire", "public": True, "author_id": 77},
    ])
    later = _event(2, 2000, ticket_id=9, updater=501, children=[
        {"id": 21, "event_type": "Comment", "body": "internal", "public": False},
        {"id": 22, "event_type": "Change", "field_name": "status", "value": "hold", "previous_value": "open"},
        {"id": 23, "event_type": "Change", "priority": "urgent", "previous_value": "normal"},
        {"id": 24, "event_type": "Change", "field_name": "group_id", "value": 360, "previous_value": None},
        {"id": 25, "event_type": "Change", "field_name": "tags", "value": ["x"], "previous_value": []},
        {"id": 26, "event_type": "Notification", "subject": "ping"},
    ])
    rsps.add(responses.GET, EVENTS_URL, json={"ticket_events": [create, later], "end_time": 2000,
                                              "next_page": None, "end_of_stream": True})
    (page,) = list(make_connector().stream("ticket_events").pages(None))
    messages = {m["id"]: m for m in page.records["messages"]}
    assert messages["13"]["kind"] == "description" and messages["13"]["author_id"] == "77"
    assert messages["21"]["kind"] == "comment" and messages["21"]["public"] == 0
    assert messages["21"]["author_id"] == "501" and messages["21"]["created_at"] == 2000
    changes = {(c["field"], c["old_value"], c["new_value"]) for c in page.records["ticket_events"]}
    assert changes == {("status", None, "new"), ("status", "open", "on_hold"), ("priority", "normal", "urgent"),
                       ("group_id", None, "360")}
    assert all(c["ticket_id"] == "9" for c in page.records["ticket_events"])


def test_a_broken_event_is_quarantined_alone(rsps: Any) -> None:
    broken = {"id": 5, "ticket_id": 7, "event_type": "Audit", "child_events": []}  # no timestamp at all
    rsps.add(responses.GET, EVENTS_URL, json={"ticket_events": [_event(1, 100), broken], "end_time": 100,
                                              "next_page": None, "end_of_stream": True})
    (page,) = list(make_connector().stream("ticket_events").pages(None))
    assert [m["id"] for m in page.records["messages"]] == ["10"]
    assert [q.record_id for q in page.quarantine] == ["5"]


# -- users -> people and comment author roles -----------------------------------------------------------
def test_users_stream_maps_people_and_teaches_comment_roles(rsps: Any) -> None:
    users = [
        {"id": 501, "name": "Ann Agent", "email": "ann@acme.example", "role": "agent", "organization_id": None,
         "external_id": None, "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-02T00:00:00Z"},
        {"id": 502, "name": "Ada Admin", "email": "ada@acme.example", "role": "admin",
         "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"},
        {"id": 77, "name": "Cy Customer", "email": "cy@example.com", "role": "end-user", "organization_id": 9001,
         "external_id": "crm-77", "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"},
    ]
    rsps.add(responses.GET, USERS_URL, json={"users": users, "after_cursor": "u1", "end_of_stream": True})
    events = [_event(1, 100, updater=501), _event(2, 200, updater=77), _event(3, 300, updater=-1),
              _event(4, 400, updater=999)]
    rsps.add(responses.GET, EVENTS_URL, json={"ticket_events": events, "end_time": 400, "next_page": None,
                                              "end_of_stream": True})
    connector = make_connector()
    people = rows(list(connector.stream("users").pages(None)), "people")
    assert [(p["id"], p["role"]) for p in people] == [("501", "agent"), ("502", "agent"), ("77", "customer")]
    assert people[2]["organization_id"] == "9001" and people[2]["external_id"] == "crm-77"
    assert people[2]["created_at"] == 1704067200
    # streams share the connector's role book, as in a run where users precede ticket events
    by_author = {m["author_id"]: m.get("author_role") for m in rows(list(connector.stream("ticket_events")
                                                                          .pages(None)), "messages")}
    assert by_author == {"501": "agent", "77": "customer", "-1": "system", "999": None}


# -- organizations ------------------------------------------------------------------------------------
def test_organizations_value_comes_from_the_configured_field(rsps: Any) -> None:
    orgs = [
        {"id": 1, "name": "Big", "organization_fields": {"arr": "120,000.50", "mrr": 10},
         "created_at": "2020-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"},
        {"id": 2, "name": "Small", "organization_fields": {"arr": 900, "mrr": "n/a"}, "created_at": None},
        {"id": 3, "name": "Unknown", "organization_fields": {"arr": "tbd"}},
    ]
    rsps.add(responses.GET, ORGS_URL, json={"organizations": orgs, "end_time": 50, "next_page": None,
                                            "end_of_stream": True})
    by_id = {o["id"]: o for o in rows(list(make_connector().stream("organizations").pages(None)), "organizations")}
    assert (by_id["1"]["value"], by_id["2"]["value"], by_id["3"]["value"]) == (120000.5, 900.0, None)
    assert by_id["1"]["created_at"] == 1577836800 and by_id["1"]["name"] == "Big"
    mrr = {o["id"]: o["value"] for o in rows(list(make_connector(value_field="mrr").stream("organizations")
                                                   .pages(None)), "organizations")}
    assert mrr == {"1": 10.0, "2": None, "3": None}


# -- satisfaction ratings: generic cursor pagination -----------------------------------------------------
def _rating(rating_id: int, score: str, created: str) -> dict[str, Any]:
    return {"id": rating_id, "ticket_id": rating_id + 1000, "assignee_id": 501, "group_id": 360,
            "requester_id": 77, "score": score, "comment": None, "created_at": created, "updated_at": created}


def _ratings_api(ratings: list[dict[str, Any]], size: int = 2) -> Any:
    def callback(request: Any) -> tuple[int, dict[str, str], str]:
        params = query(request.url)
        offset = int(params.get("page[after]", "0"))
        chunk = ratings[offset:offset + size]
        more = offset + size < len(ratings)
        after = str(offset + size) if more else None
        return json_reply({"satisfaction_ratings": chunk,
                           "meta": {"has_more": more, "after_cursor": after, "before_cursor": None},
                           "links": {"next": f"{RATINGS_URL}?page[after]={after}" if more else None, "prev": None}})

    return callback


def test_ratings_skip_invitations_and_resume_from_high_water_mark(rsps: Any) -> None:
    ratings = [_rating(1, "good", "2024-03-01T00:00:00Z"), _rating(2, "offered", "2024-03-02T00:00:00Z"),
               _rating(3, "bad", "2024-03-03T00:00:00Z"), _rating(4, "unoffered", "2024-03-04T00:00:00Z"),
               _rating(5, "good", "2024-03-05T00:00:00Z")]
    rsps.add_callback(responses.GET, RATINGS_URL, callback=_ratings_api(ratings))
    fake = FakeTime(now=1_720_000_000)  # runs after the ratings (an earlier clock caps the bookmark)
    pages = list(make_connector(fake=fake).stream("satisfaction_ratings").pages(None))
    got = rows(pages, "ratings")
    assert [(r["id"], r["score_raw"], r["score_1_5"], r["kind"]) for r in got] == [
        ("1", "good", 5.0, "csat"), ("3", "bad", 1.0, "csat"), ("5", "good", 5.0, "csat")]
    assert got[0]["ticket_id"] == "1001" and got[0]["created_at"] == 1709251200
    first = query(rsps.calls[0].request.url)
    assert first == {"page[size]": "100"}
    assert query(rsps.calls[1].request.url)["page[after]"] == "2"
    high = 1709596800  # 2024-03-05, the newest rating seen (an invitation's time counts: it was listed)
    run_start = int(fake.now)
    assert pages[-1].cursor == {"high": high, "swept": run_start, "csat_api": "listed"}
    # mid-run cursors carry the listing position, so a crash resumes the same listing
    assert pages[0].cursor == {"since": None, "after": "2", "high": 1709337600, "swept": None, "sweeping": True,
                               "csat_api": "listed"}
    resumed = list(make_connector(fake=fake).stream("satisfaction_ratings").pages(pages[0].cursor))
    assert [r["id"] for r in rows(resumed, "ratings")] == ["3", "5"]
    before = len(rsps.calls)
    list(make_connector(fake=fake).stream("satisfaction_ratings").pages(pages[-1].cursor))  # lookback: 1h
    assert query(rsps.calls[before].request.url) == {"page[size]": "100", "start_time": str(high - 3600)}


# -- small full-refresh lists ---------------------------------------------------------------------------
def test_groups_and_ticket_fields_full_refresh(rsps: Any) -> None:
    rsps.add(responses.GET, GROUPS_URL, json={"groups": [{"id": 360, "name": "Tier 2"}],
                                              "meta": {"has_more": False, "after_cursor": None}, "links": {}})
    page_two = f"{FIELDS_URL}?page=2"
    rsps.add(responses.GET, page_two, json={"ticket_fields": [{"id": 2, "title": "CDI", "type": "integer"}],
                                            "next_page": None, "count": 2})
    rsps.add(responses.GET, FIELDS_URL, json={"ticket_fields": [{"id": 1, "title": "Plan", "type": "tagger"}],
                                              "next_page": page_two, "count": 2})
    connector = make_connector()
    groups = list(connector.stream("groups").pages(None))
    assert rows(groups, "groups")[0] == {"id": "360", "name": "Tier 2", "raw": {"id": 360, "name": "Tier 2"}}
    assert [p.cursor for p in groups] == [None]
    fields = list(connector.stream("ticket_fields").pages(None))  # legacy offset pagination still followed
    assert [(f["id"], f["name"], f["type"]) for f in rows(fields, "fields")] == [
        ("1", "Plan", "tagger"), ("2", "CDI", "integer")]
    assert all(p.cursor is None for p in fields)


# -- budgets --------------------------------------------------------------------------------------------
def test_incremental_export_budget_paces_without_real_sleep(rsps: Any) -> None:
    rsps.add(responses.GET, EVENTS_URL, json={"ticket_events": [], "end_time": 5, "next_page": None,
                                              "end_of_stream": True})
    rsps.add(responses.GET, GROUPS_URL, json={"groups": [], "meta": {"has_more": False}})
    fake = FakeTime()
    connector = make_connector(make_source(export_requests_per_minute=3), fake=fake)
    started = fake.now
    for _ in range(3):
        list(connector.stream("groups").pages(None))  # not an export: no budget
    assert fake.now == started
    for _ in range(7):
        list(connector.stream("ticket_events").pages({"start_time": 100}))
    assert fake.now - started >= 120  # 7 export calls at 3/min need at least two more windows
    assert len(rsps.calls) == 10


def test_next_page_link_without_include_keeps_comment_events(rsps: Any) -> None:
    bare_next = f"{EVENTS_URL}?start_time=150"
    rsps.add(responses.GET, EVENTS_URL, json={"ticket_events": [_event(1, 100)], "end_time": 150,
                                              "next_page": bare_next, "end_of_stream": False})
    rsps.add(responses.GET, EVENTS_URL, json={"ticket_events": [_event(2, 160)], "end_time": 160,
                                              "next_page": None, "end_of_stream": True})
    list(make_connector().stream("ticket_events").pages(None))
    assert query(rsps.calls[1].request.url) == {"start_time": "150", "include": "comment_events",
                                                "support_type_scope": "all"}


def test_empty_overlap_page_does_not_move_the_cursor_backwards(rsps: Any) -> None:
    def echo_start(request: Any) -> tuple[int, dict[str, str], str]:
        start = int(query(request.url)["start_time"])
        return json_reply({"ticket_events": [], "end_time": start, "next_page": None, "end_of_stream": True})

    rsps.add_callback(responses.GET, EVENTS_URL, callback=echo_start)
    cursor: Any = {"start_time": 5000}
    for _ in range(3):
        (page,) = list(make_connector(make_source(lookback="60s")).stream("ticket_events").pages(cursor))
        cursor = page.cursor
    assert cursor == {"start_time": 4940, "high": 5000}
    assert [query(c.request.url)["start_time"] for c in rsps.calls] == ["4940"] * 3


def test_time_export_without_next_page_link_continues_from_end_time(rsps: Any) -> None:
    rsps.add(responses.GET, EVENTS_URL, json={"ticket_events": [_event(1, 100)], "end_time": 100,
                                              "next_page": None, "end_of_stream": False})
    rsps.add(responses.GET, EVENTS_URL, json={"ticket_events": [_event(2, 200)], "end_time": 200,
                                              "next_page": None, "end_of_stream": True})
    pages = list(make_connector(make_source(lookback="0s")).stream("ticket_events").pages(None))
    all_types = {"include": "comment_events", "support_type_scope": "all"}
    assert [query(c.request.url) for c in rsps.calls] == [{"start_time": "0", **all_types},
                                                           {"start_time": "100", **all_types}]
    assert [m["id"] for m in rows(pages, "messages")] == ["10", "20"]
    assert pages[-1].cursor == {"start_time": 200, "high": 200}


def test_has_more_without_a_cursor_is_an_error_not_a_silent_stop(rsps: Any) -> None:
    rsps.add(responses.GET, RATINGS_URL, json={"satisfaction_ratings": [_rating(1, "good", "2024-03-01T00:00:00Z")],
                                               "meta": {"has_more": True, "after_cursor": None}, "links": {}})
    with pytest.raises(FatalAPIError, match="pagination loop"):
        list(make_connector().stream("satisfaction_ratings").pages(None))
