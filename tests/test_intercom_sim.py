"""The Intercom simulator honours the documented contract (API-NOTES 3 and 5.3)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from connectors.sim.base import Fault, SimRequest, SimResponse
from connectors.sim.intercom import IntercomSim
from connectors.sim.intercom.render import company_id, contact_id
from tests.intercom_kit import ALICE, BOT, ORG_X, T0, TOKEN, FakeTime, make_sim, same_time_world


def call(sim: IntercomSim, method: str, path: str, body: Any = None, query: dict[str, str] | None = None,
         token: str = TOKEN) -> tuple[SimResponse, Any]:
    req = SimRequest(method, path, {k: [v] for k, v in (query or {}).items()},
                     {"Authorization": f"Bearer {token}", "Intercom-Version": "2.11"},
                     json.dumps(body).encode() if body is not None else b"")
    resp = sim.handle(req)
    return resp, json.loads(resp.body) if resp.body else None


def search(sim: IntercomSim, *filters: dict[str, Any], op: str = "AND", per_page: int = 150,
           after: str | None = None, sort: dict[str, str] | None = None) -> tuple[SimResponse, Any]:
    pagination: dict[str, Any] = {"per_page": per_page}
    if after:
        pagination["starting_after"] = after
    body: dict[str, Any] = {"query": {"operator": op, "value": list(filters)}, "pagination": pagination}
    if sort:
        body["sort"] = sort
    return call(sim, "POST", "/conversations/search", body)


def ids(body: Any) -> list[str]:
    return [c["id"] for c in body["conversations"]]


def f(field: str, op: str, value: Any) -> dict[str, Any]:
    return {"field": field, "operator": op, "value": value}


def test_bad_token_is_401_error_list_without_rate_headers() -> None:
    sim = make_sim(limit_per_window=100)
    resp, body = call(sim, "GET", "/admins", token="wrong")
    assert resp.status == 401
    assert body["type"] == "error.list"
    assert body["errors"] == [{"code": "unauthorized", "message": "Access Token Invalid"}]
    assert not any(k.lower().startswith("x-ratelimit") for k in resp.headers)


def test_deleted_and_spam_are_invisible() -> None:
    sim = make_sim()
    _, body = search(sim, f("updated_at", ">", 0))
    assert sorted(ids(body)) == ["101", "102", "103", "104"]
    assert body["total_count"] == 4
    resp, err = call(sim, "GET", "/conversations/105")
    assert resp.status == 404
    assert err["errors"][0] == {"code": "not_found", "message": "Conversation not found"}
    assert sim.ground_truth()["hidden_conversations"] == 2


def test_date_bounds_are_inclusive_and_strict_reading_is_switchable() -> None:
    sim = make_sim()
    t = sim.world.ticket(102).updated_at
    assert "102" in ids(search(sim, f("updated_at", ">", t))[1])
    assert "102" in ids(search(sim, f("updated_at", "<", t))[1])
    assert ids(search(sim, f("updated_at", "=", str(t)))[1]) == ["102"]  # digit strings are accepted
    both = search(sim, f("updated_at", ">", t), f("updated_at", "<", t))[1]
    assert ids(both) == ["102"]
    strict = make_sim(inclusive=False)
    assert "102" not in ids(search(strict, f("updated_at", ">", t))[1])
    assert "102" in ids(search(strict, f("updated_at", ">", t - 1))[1])


def test_or_groups_and_limits() -> None:
    sim = make_sim()
    _, body = search(sim, f("state", "=", "snoozed"), f("priority", "=", "priority"), op="OR")
    assert sorted(ids(body)) == ["101", "103"]  # 103 pending -> snoozed (and high); 101 urgent -> priority
    resp, err = search(sim, *[f("updated_at", ">", i) for i in range(16)])
    assert resp.status == 400 and err["type"] == "error.list"
    deep = {"operator": "AND", "value": [{"operator": "OR", "value": [
        {"operator": "AND", "value": [f("updated_at", ">", 0)]}]}]}
    assert call(sim, "POST", "/conversations/search", {"query": deep})[0].status == 400
    assert search(sim, f("updated_at", "!=", 5))[0].status == 400  # dates take only = < >
    assert search(sim, f("updated_at", ">", 0), per_page=151)[0].status == 400
    assert search(sim, f("nope", "=", 1))[0].status == 400


def test_cursor_pagination_sort_and_total() -> None:
    sim = make_sim()
    seen, after, pages = [], None, 0
    while True:
        resp, body = search(sim, f("updated_at", ">", 0), per_page=3, after=after,
                            sort={"field": "updated_at", "order": "ascending"})
        assert resp.status == 200 and body["total_count"] == 4
        assert all("conversation_parts" not in c for c in body["conversations"])
        seen += body["conversations"]
        pages += 1
        nxt = body["pages"].get("next")
        if not nxt:
            break
        after = nxt["starting_after"]
        assert json.loads(base64.b64decode(after))[1] == int(seen[-1]["id"])  # keyset: [sort value, id, page]
    assert pages == 2
    assert [c["updated_at"] for c in seen] == sorted(c["updated_at"] for c in seen)
    _, desc = search(sim, f("updated_at", ">", 0), sort={"field": "updated_at", "order": "descending"})
    assert ids(desc) == [c["id"] for c in reversed(seen)]
    assert search(sim, f("updated_at", ">", 0), after="not-a-cursor")[0].status == 400


def test_ignoring_sort_still_pages_everything_once() -> None:
    sim = make_sim(world=same_time_world(7, T0), honor_sort=False)
    sim.touch(201, at=T0 - 5000)  # the lowest id now has the oldest updated_at: id order != time order
    got, after = [], None
    while True:
        _, body = search(sim, f("updated_at", ">", 0), per_page=2, after=after,
                         sort={"field": "updated_at", "order": "descending"})
        got += ids(body)
        nxt = body["pages"].get("next")
        if not nxt:
            break
        after = nxt["starting_after"]
    assert got == [str(i) for i in range(201, 208)]  # id order, sort ignored


def test_retrieve_has_capped_parts_statistics_and_rating() -> None:
    sim = make_sim(parts_cap=3)
    _, conv = call(sim, "GET", "/conversations/101")
    parts = conv["conversation_parts"]
    assert len(parts["conversation_parts"]) == 3
    assert parts["total_count"] > 3
    assert [p["created_at"] for p in parts["conversation_parts"]] == sorted(p["created_at"] for p in
                                                                            parts["conversation_parts"])
    full = make_sim()
    _, whole = call(full, "GET", "/conversations/101")
    every = whole["conversation_parts"]["conversation_parts"]
    assert parts["conversation_parts"] == every[-3:]  # the most recent ones
    kinds = [(p["part_type"], p["author"]["type"], p["body"] is not None) for p in every]
    assert ("comment", "bot", True) in kinds  # the bot auto-reply is authored by a bot, not an admin
    assert ("note", "admin", True) in kinds
    assert ("open", "user", True) in kinds  # the customer's reply reopened it
    assert ("close", "admin", True) in kinds  # reply-and-close
    assert ("snoozed", "admin", False) in kinds
    assert ("assignment", "admin", False) in kinds
    stats = whole["statistics"]
    assert stats["count_reopens"] == 1
    assert stats["first_admin_reply_at"] - whole["created_at"] == 2 * 3600
    assert stats["time_to_admin_reply"] == 0  # Friday 20:00-22:00 UTC: all outside office hours
    assert stats["last_close_at"] == T0 + 4 * 3600
    assert whole["conversation_rating"]["rating"] == 4
    assert whole["state"] == "closed" and whole["priority"] == "priority"
    assert whole["source"]["body"].startswith("<p>")
    assert whole["contacts"]["contacts"][0]["id"] == contact_id(ALICE)


def test_neutral_status_and_priority_mapping() -> None:
    sim = make_sim()
    states = {c: call(sim, "GET", f"/conversations/{c}")[1] for c in ("102", "103", "104")}
    assert (states["102"]["state"], states["102"]["priority"]) == ("open", "not_priority")
    assert (states["103"]["state"], states["103"]["priority"]) == ("snoozed", "priority")
    assert states["103"]["source"]["delivered_as"] == "admin_initiated"
    assert states["104"]["state"] == "closed"
    assert states["104"]["source"]["delivered_as"] == "automated"


def test_rate_limit_window_and_429_without_retry_after() -> None:
    fake = FakeTime(now=1_800_000_003.0)
    sim = make_sim(fake=fake, limit_per_window=2)
    first, _ = call(sim, "GET", "/admins")
    assert first.headers["X-RateLimit-Limit"] == "2"
    assert first.headers["X-RateLimit-Remaining"] == "1"
    assert first.headers["X-RateLimit-Reset"] == "1800000010"
    call(sim, "GET", "/teams")
    resp, body = call(sim, "GET", "/teams")
    assert resp.status == 429
    assert "Retry-After" not in resp.headers
    assert body["errors"][0]["code"] == "rate_limit_exceeded"
    assert body["errors"][0]["message"] == "Exceeded rate limit of 2 in 10_seconds"
    assert resp.headers["X-RateLimit-Remaining"] == "0"
    fake.now = 1_800_000_010.0
    assert call(sim, "GET", "/teams")[0].status == 200


def test_custom_attribute_update_appends_bot_parts_and_resurfaces() -> None:
    fake = FakeTime()
    sim = make_sim(fake=fake)
    before = sim.world.ticket(102).updated_at
    latest = max(t.updated_at for t in sim.world.tickets)
    resp, conv = call(sim, "PUT", "/conversations/102",
                      {"read": True, "custom_attributes": {"issue_type": "Billing", "priority": "High"}})
    assert resp.status == 200
    assert conv["updated_at"] > before
    assert conv["custom_attributes"]["issue_type"] == "Billing"
    added = conv["conversation_parts"]["conversation_parts"][-2:]
    assert [p["part_type"] for p in added] == ["conversation_attribute_updated_by_admin"] * 2
    assert {p["author"]["type"] for p in added} == {"bot"} and {p["author"]["name"] for p in added} == {"Operator"}
    assert all(p["body"] is None for p in added)
    assert ids(search(sim, f("updated_at", ">", latest + 1))[1]) == ["102"]
    assert call(sim, "PUT", "/conversations/102", {"custom_attributes": {"x": {"nested": 1}}})[0].status == 400


def test_tags_need_id_and_admin_and_are_additive() -> None:
    sim = make_sim(known_admins_only=True)
    _, tag = call(sim, "POST", "/tags", {"name": "deskpulse_distress"})
    assert call(sim, "POST", "/tags", {"name": "deskpulse_distress"})[1]["id"] == tag["id"]  # find-or-create
    assert call(sim, "POST", "/conversations/101/tags", {"id": tag["id"]})[0].status == 400
    assert call(sim, "POST", "/conversations/101/tags", {"admin_id": "11"})[0].status == 400
    resp, err = call(sim, "POST", "/conversations/999/tags", {"id": tag["id"], "admin_id": "11"})
    assert resp.status == 404 and err["errors"][0]["message"] == "Conversation not found"
    resp, err = call(sim, "POST", "/conversations/101/tags", {"id": "0", "admin_id": "11"})
    assert (resp.status, err["errors"][0]["code"]) == (404, "tag_not_found")
    resp, err = call(sim, "POST", "/conversations/101/tags", {"id": tag["id"], "admin_id": str(BOT)})
    assert (resp.status, err["errors"][0]["code"]) == (404, "admin_not_found")  # the bot is no admin
    resp, applied = call(sim, "POST", "/conversations/101/tags", {"id": tag["id"], "admin_id": "11"})
    assert resp.status == 200 and applied["applied_by"] == {"type": "admin", "id": "11"}
    names = [t["name"] for t in call(sim, "GET", "/conversations/101")[1]["tags"]["tags"]]
    assert names == ["login", "deskpulse_distress"]
    resp, _ = call(sim, "DELETE", f"/conversations/101/tags/{tag['id']}", {"admin_id": "11"})
    assert resp.status == 200
    assert [t["name"] for t in call(sim, "GET", "/conversations/101")[1]["tags"]["tags"]] == ["login"]


def test_malformed_fault_corrupts_the_next_page_only() -> None:
    sim = make_sim()
    sim.inject(Fault("malformed", count=2, path="/conversations/search"))
    _, body = search(sim, f("updated_at", ">", 0))
    assert [c["updated_at"] for c in body["conversations"]].count("corrupt") == 2
    _, again = search(sim, f("updated_at", ">", 0))
    assert "corrupt" not in [c["updated_at"] for c in again["conversations"]]
    sim.inject(Fault("malformed", count=1, path="/conversations/102"))
    assert call(sim, "GET", "/conversations/102")[1]["created_at"] == "corrupt"


def test_directory_endpoints() -> None:
    fake = FakeTime()
    sim = make_sim(fake=fake)
    _, admins = call(sim, "GET", "/admins")
    assert sorted(a["id"] for a in admins["admins"]) == ["11", "12"]  # the bot identity is no admin
    assert len(call(sim, "GET", "/teams")[1]["teams"]) == 2
    resp, contacts = call(sim, "POST", "/contacts/search", {"query": f("updated_at", ">", 0)})
    assert resp.status == 200 and contacts["total_count"] == 3
    alice = next(c for c in contacts["data"] if c["id"] == contact_id(ALICE))
    assert alice["companies"]["data"][0]["id"] == company_id(ORG_X)
    assert call(sim, "GET", f"/contacts/{contact_id(ALICE)}")[1]["email"] == "alice@xylo.example"
    _, first = call(sim, "GET", "/companies/scroll")
    # company custom attributes are strings (OAS company.custom_attributes: additionalProperties string)
    assert len(first["data"]) == 2 and first["data"][0]["custom_attributes"]["arr"] == "120000"
    _, end = call(sim, "GET", "/companies/scroll", query={"scroll_param": first["scroll_param"]})
    assert end["data"] == []
    fake.now += 61
    assert call(sim, "GET", "/companies/scroll", query={"scroll_param": first["scroll_param"]})[0].status == 404


def test_touch_moves_updated_at_and_adds_a_message() -> None:
    fake = FakeTime()
    sim = make_sim(fake=fake)
    new = sim.touch(102, body="any news?")
    assert new == int(fake.now)
    _, conv = call(sim, "GET", "/conversations/102")
    assert conv["updated_at"] == new
    assert conv["conversation_parts"]["conversation_parts"][-1]["body"] == "<p>any news?</p>"
    with pytest.raises(KeyError):
        sim.touch(105)  # deleted: invisible


class CountingDict(dict):
    """A dict that counts lookups: how many records a request had to look at."""

    lookups = 0

    def __getitem__(self, key: Any) -> Any:
        CountingDict.lookups += 1
        return super().__getitem__(key)


def test_search_work_is_proportional_to_the_page() -> None:
    from connectors.sim.world import generate_world

    sim = IntercomSim(generate_world(seed=5, tickets=2000), token=TOKEN)
    sim.conversations.records = CountingDict(sim.conversations.records)
    middle = sorted(t.updated_at for t in sim.conversations.records.values())[1000]
    CountingDict.lookups = 0
    _, body = search(sim, f("updated_at", ">", middle), per_page=20, sort={"field": "updated_at", "order": "asc"})
    assert len(body["conversations"]) == 20 and body["total_count"] >= 900
    assert CountingDict.lookups <= 2 * 20 + 2  # the page and one look-ahead, not the 1,000 matches
    CountingDict.lookups = 0
    search(sim, f("updated_at", ">", middle), per_page=20, after=body["pages"]["next"]["starting_after"],
           sort={"field": "updated_at", "order": "asc"})
    assert CountingDict.lookups <= 2 * 20 + 2


def test_statistics_durations_leave_out_office_hours_and_start_at_the_customers_first_message() -> None:
    """OAS ``conversation_statistics``: ``time_to_admin_reply``/``time_to_first_close``/``time_to_last_close``
    "subtract out of business hours" and count from the customer's first message, unlike the ``*_at``
    timestamps (API-NOTES 6.1). Conversation 101 opens Friday 20:00 UTC; office hours are weekdays 9-17."""
    def stats(sim: IntercomSim, cid: str) -> dict[str, Any]:
        return call(sim, "GET", f"/conversations/{cid}")[1]["statistics"]

    office = stats(make_sim(), "101")
    always = stats(make_sim(office_hours=None), "101")
    assert office["first_admin_reply_at"] == always["first_admin_reply_at"] == T0 + 2 * 3600
    assert (office["time_to_admin_reply"], always["time_to_admin_reply"]) == (0, 2 * 3600)
    assert office["time_to_last_close"] == 0 and always["time_to_last_close"] == 4 * 3600
    monday = stats(make_sim(office_hours=(0, 24)), "101")  # a 24h weekday schedule still skips the weekend
    assert monday["time_to_admin_reply"] == 2 * 3600
    agent_opened = stats(make_sim(office_hours=None), "103")  # no customer message: no duration at all
    assert "time_to_admin_reply" not in agent_opened and "time_to_first_close" not in agent_opened
    assert None not in agent_opened.values()  # absent, not null: the OAS types them non-nullable


def test_first_contact_reply_is_the_original_message_of_a_contact_initiated_conversation() -> None:
    """OAS ``conversation.first_contact_reply``: "For a contact initiated message this will represent the
    users original message"; for an admin-initiated one it is the contact's first reply (none here)."""
    sim = make_sim()
    opened_by_alice = call(sim, "GET", "/conversations/101")[1]
    assert opened_by_alice["first_contact_reply"]["created_at"] == opened_by_alice["created_at"] == T0
    assert call(sim, "GET", "/conversations/103")[1]["first_contact_reply"] is None  # logged by an agent
