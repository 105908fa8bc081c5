"""The Freshdesk simulator holds clients to the documented contract (API-NOTES.md 2 and 5.2)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from connectors.normalize import to_epoch
from connectors.pagination import link_next
from connectors.sim.base import Fault, serve
from connectors.sim.freshdesk import FreshdeskSim
from connectors.sim.world import generate_world
from tests.freshdesk_kit import API_KEY, BASE, NOW, FakeTime, make_world, mounted

AUTH = (API_KEY, "X")


def get(path: str, **params: Any) -> requests.Response:
    return requests.get(BASE + path, params=params, auth=AUTH, timeout=5)


def test_wrong_credentials_get_401_invalid_credentials() -> None:
    sim = FreshdeskSim(make_world(3), api_key=API_KEY)
    with mounted(sim):
        for auth in ((API_KEY, "password"), ("other-key", "X"), None):
            resp = requests.get(BASE + "/api/v2/tickets", auth=auth, timeout=5)
            assert resp.status_code == 401
            assert resp.json()["code"] == "invalid_credentials"
        assert get("/api/v2/groups").status_code == 200


def test_bare_array_and_absolute_link_paging() -> None:
    sim = FreshdeskSim(make_world(12), api_key=API_KEY)
    with mounted(sim):
        resp = get("/api/v2/tickets", updated_since="1970-01-01T00:00:00Z", order_by="updated_at",
                   order_type="asc", per_page=5)
        assert resp.status_code == 200 and isinstance(resp.json(), list)
        seen = [t["id"] for t in resp.json()]
        nxt = link_next(resp.headers.get("Link"))
        pages = 1
        while nxt:
            assert nxt.startswith(BASE + "/api/v2/tickets?")
            assert parse_qs(urlsplit(nxt).query)["updated_since"] == ["1970-01-01T00:00:00Z"]  # filters kept
            resp = requests.get(nxt, auth=AUTH, timeout=5)
            seen += [t["id"] for t in resp.json()]
            nxt = link_next(resp.headers.get("Link"))
            pages += 1
    assert pages == 3 and seen == list(range(1, 13))  # updated_at ascending, nothing twice


def test_per_page_over_100_and_unknown_parameters_are_validation_errors() -> None:
    sim = FreshdeskSim(make_world(3), api_key=API_KEY)
    with mounted(sim):
        resp = get("/api/v2/tickets", per_page=101)
        assert resp.status_code == 400
        body = resp.json()
        assert body["description"] == "Validation failed" and body["errors"][0]["field"] == "per_page"
        resp = get("/api/v2/contacts", updated_since="2024-01-01T00:00:00Z")  # contacts want _updated_since
        assert resp.status_code == 400 and resp.json()["errors"][0]["code"] == "invalid_field"
        assert get("/api/v2/tickets", include="stats,conversations").status_code == 400


@pytest.mark.parametrize("mode", ["error", "empty"])
def test_no_page_past_the_cap(mode: str) -> None:
    sim = FreshdeskSim(make_world(20), api_key=API_KEY, max_pages=3, cap_mode=mode)
    with mounted(sim):
        ok = get("/api/v2/tickets", updated_since="1970-01-01T00:00:00Z", per_page=5, page=3)
        assert ok.status_code == 200 and len(ok.json()) == 5 and link_next(ok.headers.get("Link"))
        past = get("/api/v2/tickets", updated_since="1970-01-01T00:00:00Z", per_page=5, page=4)
    if mode == "error":
        assert past.status_code == 400 and past.json()["errors"][0]["field"] == "page"
    else:
        assert past.status_code == 200 and past.json() == [] and "Link" not in past.headers


def test_default_window_is_the_last_30_days_without_updated_since() -> None:
    world = make_world(60, start=NOW - 60 * 86400, step=86400)  # one ticket a day for 60 days
    sim = FreshdeskSim(world, api_key=API_KEY, clock=lambda: NOW)
    with mounted(sim):
        default = get("/api/v2/tickets", per_page=100).json()
        everything = get("/api/v2/tickets", per_page=100, updated_since="1970-01-01T00:00:00Z").json()
    assert len(everything) == 60
    assert 0 < len(default) < 60
    assert all(to_epoch(t["created_at"]) >= NOW - 30 * 86400 for t in default)
    created = [to_epoch(t["created_at"]) for t in default]
    assert created == sorted(created, reverse=True)  # default order: created_at desc


def test_includes_cost_credits_and_an_exhausted_minute_answers_429() -> None:
    fake = FakeTime()
    sim = FreshdeskSim(make_world(5), api_key=API_KEY, calls_per_minute=10, clock=fake.clock)
    with mounted(sim):
        plain = get("/api/v2/tickets", updated_since="1970-01-01T00:00:00Z")
        assert plain.headers["X-RateLimit-Used-CurrentRequest"] == "1"
        assert (plain.headers["X-RateLimit-Total"], plain.headers["X-RateLimit-Remaining"]) == ("10", "9")
        full = get("/api/v2/tickets", updated_since="1970-01-01T00:00:00Z", include="stats,requester,description")
        assert full.headers["X-RateLimit-Used-CurrentRequest"] == "7"
        assert full.headers["X-RateLimit-Remaining"] == "2"
        assert "stats" in full.json()[0] and "requester" in full.json()[0] and "description_text" in full.json()[0]
        assert "stats" not in plain.json()[0]
        fake.now += 20
        limited = get("/api/v2/tickets", include="stats")
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "40"
        fake.now += 40
        assert get("/api/v2/tickets", include="stats").status_code == 200  # a new minute


def test_tickets_list_sub_limit_counts_only_list_calls() -> None:
    fake = FakeTime()
    sim = FreshdeskSim(make_world(3), api_key=API_KEY, tickets_list_per_minute=2, clock=fake.clock)
    with mounted(sim):
        assert [get("/api/v2/tickets").status_code for _ in range(2)] == [200, 200]
        assert get("/api/v2/tickets/1").status_code == 200  # not a list call
        assert get("/api/v2/tickets").status_code == 429


def test_deleted_and_spam_only_under_their_filters() -> None:
    world = make_world(6)
    world.ticket(2).deleted = True  # type: ignore[union-attr]
    world.ticket(3).spam = True  # type: ignore[union-attr]
    sim = FreshdeskSim(world, api_key=API_KEY)
    with mounted(sim):
        since = "1970-01-01T00:00:00Z"
        default = {t["id"] for t in get("/api/v2/tickets", updated_since=since).json()}
        deleted = get("/api/v2/tickets", filter="deleted", updated_since=since).json()
        spam = get("/api/v2/tickets", filter="spam", updated_since=since).json()
    assert default == {1, 4, 5, 6}
    assert [t["id"] for t in deleted] == [2] and deleted[0]["deleted"] is True
    assert [t["id"] for t in spam] == [3] and spam[0]["spam"] is True


def test_filters_can_refuse_updated_since() -> None:
    sim = FreshdeskSim(make_world(3), api_key=API_KEY, filters_accept_updated_since=False)
    with mounted(sim):
        refused = get("/api/v2/tickets", filter="deleted", updated_since="1970-01-01T00:00:00Z")
        assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "updated_since"
        assert get("/api/v2/tickets", filter="deleted").status_code == 200


def test_conversations_follow_the_description_with_private_notes() -> None:
    world = make_world(2)
    sim = FreshdeskSim(world, api_key=API_KEY, vendor_conversations=False)  # only the World's messages
    with mounted(sim):
        convs = get("/api/v2/tickets/1/conversations", per_page=100).json()
        missing = get("/api/v2/tickets/999/conversations")
    assert [c["body_text"] for c in convs] == [f"message {i} of ticket 1" for i in (1, 2, 3)]
    assert [(c["incoming"], c["private"]) for c in convs] == [(False, False), (False, True), (True, False)]
    assert missing.status_code == 404


def test_put_replaces_tags_sets_fields_and_bumps_updated_at() -> None:
    fake = FakeTime()
    world = make_world(4)
    sim = FreshdeskSim(world, api_key=API_KEY, clock=fake.clock)
    with mounted(sim):
        resp = requests.put(BASE + "/api/v2/tickets/2", json={"tags": ["only"], "custom_fields":
                                                               {"cf_deskpulse_cdi": "81"}}, auth=AUTH, timeout=5)
        assert resp.status_code == 200 and resp.json()["tags"] == ["only"]
        assert world.ticket(2).custom_fields["deskpulse_cdi"] == "81"  # type: ignore[union-attr]
        assert world.ticket(2).updated_at == int(fake.now)  # type: ignore[union-attr]
        newest = get("/api/v2/tickets", updated_since="1970-01-01T00:00:00Z", order_by="updated_at",
                     order_type="desc", per_page=1).json()
        assert newest[0]["id"] == 2  # the write moved it to the end of the updated_at order
        bad = requests.put(BASE + "/api/v2/tickets/2", json={"custom_fields": {"cf_nope": "x"}}, auth=AUTH,
                           timeout=5)
        assert bad.status_code == 400 and bad.json()["errors"][0]["code"] == "invalid_field"
        gone = requests.put(BASE + "/api/v2/tickets/99", json={"tags": []}, auth=AUTH, timeout=5)
        assert gone.status_code == 404


def test_touch_moves_a_ticket_past_the_cursor() -> None:
    fake = FakeTime()
    sim = FreshdeskSim(make_world(5), api_key=API_KEY, clock=fake.clock)
    with mounted(sim):
        since = "1970-01-01T00:00:00Z"
        before = [t["id"] for t in get("/api/v2/tickets", updated_since=since, order_by="updated_at",
                                        order_type="asc").json()]
        sim.touch(2)
        after = [t["id"] for t in get("/api/v2/tickets", updated_since=since, order_by="updated_at",
                                       order_type="asc").json()]
    assert before == [1, 2, 3, 4, 5] and after == [1, 3, 4, 5, 2]


def test_malformed_fault_corrupts_records_of_the_next_page_only() -> None:
    sim = FreshdeskSim(make_world(6), api_key=API_KEY)
    sim.inject(Fault("malformed", count=2, path="/api/v2/tickets"))
    with mounted(sim):
        first = get("/api/v2/tickets", updated_since="1970-01-01T00:00:00Z").json()
        second = get("/api/v2/tickets", updated_since="1970-01-01T00:00:00Z").json()
    assert sum(t["created_at"] == "not-a-timestamp" for t in first) == 2
    assert all(t["created_at"] != "not-a-timestamp" for t in second)


def test_generated_world_ground_truth_and_loopback_server() -> None:
    world = generate_world(seed=3, tickets=200)
    sim = FreshdeskSim(world, api_key=API_KEY)
    truth = sim.ground_truth()
    assert truth["tickets"] + truth["deleted_tickets"] + truth["spam_tickets"] == truth["tickets_total"] == 200
    assert truth["ratings"] == sum(1 for t in world.tickets if t.rating is not None)
    server = serve(sim)
    try:
        resp = requests.get(server.url + "/api/v2/tickets", params={"updated_since": "1970-01-01T00:00:00Z",
                            "per_page": 100, "order_by": "updated_at", "order_type": "asc"}, auth=AUTH, timeout=5)
        assert resp.status_code == 200 and len(resp.json()) == 100
        assert link_next(resp.headers["Link"]).startswith(server.url + "/api/v2/tickets?")  # type: ignore[union-attr]
        scores = {r["ratings"]["default_question"] for r in requests.get(
            server.url + "/api/v2/surveys/satisfaction_ratings", params={"per_page": 100}, auth=AUTH,
            timeout=5).json()}
        assert scores <= {103, 101, 100, -101, -103}
    finally:
        server.stop()
