"""The Zendesk simulator against the documented contracts (API-NOTES.md section 1 and 5.1)."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
import requests
import responses

from connectors.sim.base import Fault, SimRequest, responses_callback, serve
from connectors.sim.model import World
from connectors.sim.world import generate_world
from connectors.sim.zendesk import ZendeskSim, zendesk_sim_from_args
from connectors.sim.zendesk.export import KeyIndex, decode_cursor
from tests.fake_time import FakeTime

NOW = 1_749_643_200
EXPORT = "/api/v2/incremental/tickets/cursor.json"
EVENTS = "/api/v2/incremental/ticket_events.json"
AUTH = {"Authorization": "Basic " + base64.b64encode(b"sim@example.com/token:sim-token").decode()}


Clock = FakeTime  # the one fake clock (tests/fake_time.py)


@pytest.fixture(scope="module")
def base_world() -> World:
    return generate_world(seed=5, tickets=700, now=NOW)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW + 600)


@pytest.fixture
def sim(base_world: World, clock: Clock) -> ZendeskSim:
    import copy

    return ZendeskSim(copy.deepcopy(base_world), export_limit_per_minute=None, clock=clock)


def call(sim: ZendeskSim, path: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None,
         **query: Any) -> tuple[int, dict[str, str], Any]:
    raw = json.dumps(body).encode() if body is not None else b""
    req = SimRequest(method, path, {k: [str(v)] for k, v in query.items()}, AUTH if headers is None else headers, raw)
    resp = sim.handle(req)
    try:
        parsed = json.loads(resp.body)
    except ValueError:
        parsed = resp.body.decode()
    return resp.status, resp.headers, parsed


def walk(sim: ZendeskSim, *, per_page: int = 50, cursor: str | None = None, **query: Any
         ) -> tuple[list[dict[str, Any]], list[str]]:
    """Follow after_cursor to end_of_stream; returns tickets and the after_cursor of every page."""
    tickets, cursors = [], []
    while True:
        where = {"cursor": cursor} if cursor else {"start_time": 0}
        status, _, page = call(sim, EXPORT, per_page=per_page, support_type_scope="all", **where, **query)
        assert status == 200, page
        tickets += page["tickets"]
        cursors.append(page["after_cursor"])
        cursor = page["after_cursor"]
        if page["end_of_stream"]:
            return tickets, cursors


def walk_events(sim: ZendeskSim, **query: Any) -> list[dict[str, Any]]:
    events, start = [], 0
    for _ in range(1000):
        status, _, page = call(sim, EVENTS, start_time=start, support_type_scope="all", **query)
        assert status == 200 and page["count"] == len(page["ticket_events"])
        events += page["ticket_events"]
        if page["end_of_stream"]:
            assert page["next_page"] is None
            return events
        assert page["next_page"].endswith(f"start_time={page['end_time']}" + ("&include=comment_events"
                                                                              if query else ""))
        assert page["end_time"] > start
        start = page["end_time"]
    raise AssertionError("ticket events never reached end_of_stream")


def open_ticket(sim: ZendeskSim) -> int:
    return next(t.id for t in sim.world.tickets if t.status in ("open", "pending", "new") and not t.deleted
                and not t.spam)


def test_cursor_export_returns_every_ticket_exactly_once(sim: ZendeskSim) -> None:
    tickets, cursors = walk(sim, per_page=50)
    ids = [t["id"] for t in tickets]
    assert len(ids) == len(set(ids)) == len(sim.world.tickets)
    order = [(t["generated_timestamp"], t["id"]) for t in tickets]
    assert order == sorted(order)
    assert len(cursors) == -(-len(ids) // 50)
    ts, ident = decode_cursor(cursors[-1]) or (0, 0)
    assert (ts, ident) == order[-1]
    assert base64.b64decode(cursors[-1]).decode() == f"{ts}.0||{ident}|"


def test_resume_from_any_cursor_continues_exactly(sim: ZendeskSim) -> None:
    tickets, cursors = walk(sim, per_page=50)
    ids = [t["id"] for t in tickets]
    for n, cursor in enumerate(cursors):
        rest, _ = walk(sim, per_page=70, cursor=cursor)
        assert [t["id"] for t in rest] == ids[(n + 1) * 50:]


def test_rerun_from_persisted_cursor_returns_only_changes(sim: ZendeskSim, clock: Clock) -> None:
    _, cursors = walk(sim, per_page=200)
    status, _, page = call(sim, EXPORT, cursor=cursors[-1])
    assert (status, page["tickets"], page["end_of_stream"], page["after_cursor"]) == (200, [], True, cursors[-1])
    touched, tagged = 3, open_ticket(sim)
    clock.now += 5
    sim.touch(touched)
    assert call(sim, f"/api/v2/tickets/{tagged}/tags.json", "PUT", {"tags": ["vip"]})[0] == 200
    clock.now += 61
    changed, last = walk(sim, cursor=cursors[-1])
    assert sorted(t["id"] for t in changed) == sorted({touched, tagged})
    assert all(t["generated_timestamp"] == int(clock.now) - 61 for t in changed)
    assert walk(sim, cursor=last[-1])[0] == []


def test_last_minute_is_excluded(sim: ZendeskSim, clock: Clock) -> None:
    _, cursors = walk(sim, per_page=500)
    sim.touch(7)
    clock.now += 59
    assert walk(sim, cursor=cursors[-1])[0] == []
    clock.now += 2
    assert [t["id"] for t in walk(sim, cursor=cursors[-1])[0]] == [7]


def test_deleted_spam_and_merged(sim: ZendeskSim) -> None:
    tickets, _ = walk(sim, per_page=1000)
    by_id = {t["id"]: t for t in tickets}
    gone = {t.id for t in sim.world.tickets if t.deleted or t.spam}
    assert gone and {i for i, t in by_id.items() if t["status"] == "deleted"} == gone
    merged = [t.id for t in sim.world.tickets if t.merged_into is not None]
    assert merged and all(by_id[i]["status"] == "closed" and "closed_by_merge" in by_id[i]["tags"]
                          for i in merged if i not in gone)
    kept, _ = walk(sim, per_page=37, exclude_deleted="true")
    assert {t["id"] for t in kept} == set(by_id) - gone
    hold = [t.id for t in sim.world.tickets if t.status == "on_hold"]
    assert all(by_id[i]["status"] == "hold" for i in hold)


def test_auth_basic_bearer_and_401(sim: ZendeskSim) -> None:
    assert call(sim, "/api/v2/groups.json")[0] == 200
    assert call(sim, "/api/v2/groups.json", headers={"Authorization": "Bearer sim-token"})[0] == 200
    wrong = "Basic " + base64.b64encode(b"sim@example.com/token:nope").decode()
    for headers in ({"Authorization": wrong}, {}, {"Authorization": "Bearer nope"}):
        status, _, body = call(sim, EXPORT, headers=headers, start_time=0)
        assert (status, body) == (401, {"error": "Couldn't authenticate you"})


def test_export_limit_429_with_retry_after(base_world: World, clock: Clock) -> None:
    sim = ZendeskSim(base_world, clock=clock)  # 10 export requests per minute
    remaining = []
    for _ in range(10):
        status, headers, _ = call(sim, EXPORT, start_time=0, per_page=10)
        assert status == 200
        remaining.append(int(headers["X-Rate-Limit-Remaining"]))
        clock.now += 2
    assert headers["X-Rate-Limit"] == "700" and remaining == list(range(699, 689, -1))
    status, headers, body = call(sim, EXPORT, start_time=0)
    assert status == 429 and headers["Retry-After"] == "40" and body["error"] == "APIRateLimitExceeded"
    assert call(sim, "/api/v2/ticket_fields.json")[0] == 200  # only the export endpoints share the 10/min
    clock.now += 39  # the first of the ten (20 s ago) leaves the window 40 s from now
    assert call(sim, EVENTS, start_time=0)[0] == 429
    clock.now += 1
    assert call(sim, EVENTS, start_time=0)[0] == 200


def test_account_limit(base_world: World, clock: Clock) -> None:
    sim = ZendeskSim(base_world, clock=clock, account_limit_per_minute=3, export_limit_per_minute=None)
    assert [call(sim, "/api/v2/groups")[0] for _ in range(3)] == [200, 200, 200]
    status, headers, body = call(sim, "/api/v2/groups")
    assert (status, headers["Retry-After"], headers["X-Rate-Limit-Remaining"]) == (429, "60", "0")
    assert isinstance(body, str) and body
    clock.now += 60
    assert call(sim, "/api/v2/groups")[0] == 200


def test_ticket_events_carry_comments_only_when_asked(sim: ZendeskSim) -> None:
    truth = sim.ground_truth()
    plain = walk_events(sim)
    assert not any(c["event_type"] == "Comment" for e in plain for c in e["child_events"])
    full = walk_events(sim, include="comment_events")
    unique = {e["id"]: e for e in full}
    assert len(full) >= len(unique) == len({e["id"] for e in plain})  # overlap at page edges, never a gap
    comments = [c for e in unique.values() for c in e["child_events"] if c["event_type"] == "Comment"]
    assert len(comments) == len({c["id"] for c in comments}) == truth["messages"]
    assert sum(c["public"] for c in comments) == truth["messages_public"]
    changes = [c for e in unique.values() for c in e["child_events"] if c["event_type"] == "Change"]
    assert sum(c["field_name"] == "status" for c in changes) == truth["status_changes"]
    assert all(c["value"] == c[c["field_name"]] and "previous_value" in c for c in changes)
    creates = [e for e in unique.values() if any(c["event_type"] == "Create" for c in e["child_events"])]
    assert len(creates) == truth["tickets"]
    first = creates[0]["child_events"]
    assert {c["field_name"] for c in first if c["event_type"] == "Create"} >= {"status", "priority", "group_id",
                                                                              "assignee_id"}
    times = [e["timestamp"] for e in full]
    assert times == sorted(times)


def test_time_pages_overlap_at_the_edge_and_always_advance() -> None:
    stamps = [10, 20, 20, 20, 30, 40, 40, 40, 40, 40, 50]
    idx = KeyIndex((ts << 32) | n for n, ts in enumerate(stamps, start=1))
    pages, start, done = [], 0, False
    while not done:
        keys, done = idx.time_slice(start, 10**6, 3)
        pages.append([k & 0xFFFFFFFF for k in keys])
        assert done or keys[-1] >> 32 > start  # end_time always moves forward
        start = keys[-1] >> 32
    assert pages == [[1, 2, 3], [2, 3, 4, 5, 6, 7], [6, 7, 8, 9, 10, 11]]  # repeats at the edges, no gaps
    assert [k >> 32 for k in idx.time_slice(0, 30, 100)[0]] == [10, 20, 20, 20, 30]  # the exclusion cutoff


def test_metric_sets_are_computed_from_the_world(sim: ZendeskSim) -> None:
    status, _, page = call(sim, EXPORT, start_time=0, per_page=300, include="metric_sets")
    assert status == 200 and len(page["metric_sets"]) == len(page["tickets"]) == 300
    for metric in page["metric_sets"]:
        t = sim.world.ticket(metric["ticket_id"])
        assert t is not None
        replies = [m.created_at for i, m in enumerate(t.messages) if m.role == "agent" and m.public
                   and not (i == 0 and t.created_by_agent)]
        reply = metric["reply_time_in_minutes"]["calendar"]
        assert reply == ((replies[0] - t.created_at) // 60 if replies else None)
        assert metric["replies"] == len(replies)
        full = metric["full_resolution_time_in_minutes"]
        assert full["calendar"] == (None if t.solved_at is None else (t.solved_at - t.created_at) // 60)
        assert full["business"] is None or 0 <= full["business"] <= full["calendar"]
        assert metric["reopens"] == sum(c.field == "status" and c.old in ("solved", "closed")
                                        and c.new not in ("solved", "closed") for c in t.changes)
        assert (metric["solved_at"] is None) == (t.solved_at is None)
    assert "metric_sets" not in call(sim, EXPORT, start_time=0, per_page=5)[2]


def test_tag_writes_add_replace_remove_and_refuse_closed(sim: ZendeskSim) -> None:
    tid = open_ticket(sim)
    before = list(sim.world.ticket(tid).tags)  # type: ignore[union-attr]
    status, _, body = call(sim, f"/api/v2/tickets/{tid}/tags.json", "PUT", {"tags": ["Distress", "vip"]})
    assert (status, body["tags"]) == (200, before + ["distress", "vip"])
    assert call(sim, f"/api/v2/tickets/{tid}/tags", "DELETE", {"tags": ["vip"]})[2]["tags"] == before + ["distress"]
    assert call(sim, f"/api/v2/tickets/{tid}/tags.json", "POST", {"tags": ["only"]})[2]["tags"] == ["only"]
    closed = next(t.id for t in sim.world.tickets if t.status == "closed" and not t.deleted and not t.spam)
    status, _, body = call(sim, f"/api/v2/tickets/{closed}/tags.json", "PUT", {"tags": ["x"]})
    assert status == 422 and body["error"] == "RecordInvalid" and "closed" in json.dumps(body["details"])
    status, _, body = call(sim, "/api/v2/tickets/999999/tags.json", "PUT", {"tags": ["x"]})
    assert (status, body) == (404, {"error": "RecordNotFound", "description": "Not found"})
    assert [(w["method"], w["changed"]) for w in sim.writes] == [("PUT", True), ("DELETE", True), ("POST", True)]


def test_ticket_update_fields_and_tags_reappear_with_an_audit(sim: ZendeskSim, clock: Clock) -> None:
    _, cursors = walk(sim, per_page=1000)
    tid = open_ticket(sim)
    update = {"ticket": {"custom_fields": [{"id": 360002, "value": "87"}, {"id": 1, "value": "ignored"}],
                         "tags": ["a", "b"]}}
    status, _, body = call(sim, f"/api/v2/tickets/{tid}.json", "PUT", update)
    assert status == 200 and body["ticket"]["tags"] == ["a", "b"]
    assert {"id": 360002, "value": "87"} in body["ticket"]["custom_fields"]
    assert {c["field_name"] for c in body["audit"]["child_events"]} == {"360002", "tags"}
    assert call(sim, f"/api/v2/tickets/{tid}.json", "PUT", update)[2]["audit"] is None  # nothing changed
    assert call(sim, "/api/v2/tickets/999999.json", "PUT", update)[0] == 404
    clock.now += 61
    again, _ = walk(sim, cursor=cursors[-1])
    assert [t["id"] for t in again] == [tid] and again[0]["tags"] == ["a", "b"]
    events = walk_events(sim)
    assert body["audit"]["id"] in {e["id"] for e in events}


def test_malformed_fault_corrupts_the_next_ticket_page(sim: ZendeskSim) -> None:
    sim.inject(Fault(kind="malformed", count=2))
    _, _, page = call(sim, EXPORT, start_time=0, per_page=10)
    assert page["tickets"][0]["created_at"] == "not-a-date" and page["tickets"][1]["id"] is None
    assert all(t["id"] is not None and t["created_at"].endswith("Z") for t in page["tickets"][2:])
    _, _, again = call(sim, EXPORT, start_time=0, per_page=10)
    assert again["tickets"][0]["created_at"].endswith("Z") and again["after_cursor"] == page["after_cursor"]


def test_base_faults_and_504_above_page_size(base_world: World, clock: Clock) -> None:
    sim = ZendeskSim(base_world, clock=clock, export_limit_per_minute=None, timeout_above_per_page=100)
    assert call(sim, EXPORT, start_time=0, per_page=200)[0] == 504
    assert call(sim, EXPORT, start_time=0, per_page=100)[0] == 200
    sim.inject(Fault(kind="5xx", status=503))
    sim.inject(Fault(kind="429", retry_after=7))
    assert call(sim, EXPORT, start_time=0)[0] == 503
    status, headers, _ = call(sim, EXPORT, start_time=0)
    assert (status, headers["Retry-After"]) == (429, "7")
    assert call(sim, EXPORT, cursor="!!not-a-cursor")[0] == 400


def test_users_organizations_ratings_fields_groups(sim: ZendeskSim) -> None:
    users, cursor = [], None
    while True:
        _, _, page = call(sim, "/api/v2/incremental/users/cursor.json", per_page=100,
                          **({"cursor": cursor} if cursor else {"start_time": 0}))
        users += page["users"]
        cursor = page["after_cursor"]
        if page["end_of_stream"]:
            break
    assert sorted(u["id"] for u in users) == sorted(p.id for p in sim.world.people)
    assert {u["role"] for u in users} == {"end-user", "agent", "admin"}
    _, _, orgs = call(sim, "/api/v2/incremental/organizations.json", start_time=0)
    assert orgs["end_of_stream"] and orgs["count"] == len(sim.world.orgs)
    values = {o.id: o.value for o in sim.world.orgs}
    assert all(o["organization_fields"] == {"arr": values[o["id"]]} for o in orgs["organizations"])
    assert "distressed" not in json.dumps(orgs)
    ratings, after = [], None
    while True:
        _, _, page = call(sim, "/api/v2/satisfaction_ratings.json", **{"page[size]": 100},
                          **({"page[after]": after} if after else {}))
        ratings += page["satisfaction_ratings"]
        after = page["meta"]["after_cursor"]
        if not page["meta"]["has_more"]:
            break
    truth = {t.rating.id: t.rating.score for t in sim.world.tickets if t.rating}
    offered = [r for r in ratings if r["score"] == "offered"]  # legacy CSAT: surveys not answered (yet)
    ratings = [r for r in ratings if r["score"] != "offered"]
    assert offered and all(r["created_at"] == r["updated_at"] for r in offered)
    assert sorted(r["id"] for r in ratings) == sorted(truth)
    assert all(r["score"] == ("good" if truth[r["id"]] >= 4 else "bad") for r in ratings if truth[r["id"]] != 3)
    assert all(r["score"] == ("good" if r["id"] % 2 == 0 else "bad") for r in ratings if truth[r["id"]] == 3)
    cut = sorted(r["created_at"] for r in ratings)[len(ratings) // 2]
    since = call(sim, "/api/v2/satisfaction_ratings.json", start_time=int(_epoch(cut)), **{"page[size]": 100})[2]
    assert all(r["created_at"] >= cut for r in since["satisfaction_ratings"])
    assert call(sim, "/api/v2/satisfaction_ratings.json", **{"page[size]": 101})[0] == 400
    fields = call(sim, "/api/v2/ticket_fields.json")[2]["ticket_fields"]
    assert {f["id"]: f["title"] for f in fields if f["id"] in (360001, 360002)} == {
        360001: "Product area", 360002: "deskpulse_cdi"}
    groups = call(sim, "/api/v2/groups.json", **{"page[size]": 2})[2]
    assert groups["meta"]["has_more"] and len(groups["groups"]) == 2


def _epoch(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_new_activity_helpers(sim: ZendeskSim, clock: Clock) -> None:
    _, cursors = walk(sim, per_page=1000)
    truth = sim.ground_truth()
    ticket = sim.add_ticket(at=int(clock.now) - 120)
    target = open_ticket(sim)
    sim.add_message(target, "Still broken, this is getting really frustrating.", at=int(clock.now) - 90)
    new, _ = walk(sim, cursor=cursors[-1])
    assert sorted(t["id"] for t in new) == sorted({ticket.id, target})
    after = sim.ground_truth()
    assert after["tickets"] == truth["tickets"] + 1 and after["messages"] == truth["messages"] + 2
    events = walk_events(sim, include="comment_events")
    bodies = [c["body"] for e in events for c in e["child_events"] if c["event_type"] == "Comment"]
    assert "Still broken, this is getting really frustrating." in bodies


def test_loopback_server_and_responses_callback_serve_the_same_bodies(sim: ZendeskSim) -> None:
    paths = [(EXPORT, {"start_time": 0, "per_page": 20, "include": "metric_sets"}),
             (EVENTS, {"start_time": 0, "include": "comment_events"}),
             ("/api/v2/satisfaction_ratings.json", {"page[size]": 5})]
    server = serve(sim)
    try:
        auth = ("sim@example.com/token", "sim-token")
        direct = [requests.get(server.url + p, params=q, auth=auth, timeout=10) for p, q in paths]
        with responses.RequestsMock() as mock:
            mock.add_callback(responses.GET, re.compile(re.escape(server.url) + r"/.*"),
                              callback=responses_callback(sim))
            mocked = [requests.get(server.url + p, params=q, auth=auth, timeout=10) for p, q in paths]
    finally:
        server.stop()
    assert [r.status_code for r in direct] == [200, 200, 200]
    assert [r.content for r in direct] == [r.content for r in mocked]
    assert direct[0].json()["after_url"].startswith(server.url + EXPORT + "?cursor=")


def test_a_large_export_renders_every_ticket_in_full_pages() -> None:
    """Rendering speed is measured by bench/bench_ingest.py; here only that 6 full pages carry every ticket."""
    sim = zendesk_sim_from_args(6000, 9, now=NOW, export_limit_per_minute=None, clock=Clock(NOW + 600))
    tickets, _ = walk(sim, per_page=1000, include="metric_sets")
    assert len(tickets) == 6000 and len({t["id"] for t in tickets}) == 6000
