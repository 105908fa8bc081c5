"""The Intercom simulator's search index and company scroll behave as Intercom documents them (issue 11).

Sources are cited next to each behaviour in ``connectors/sim/intercom/search.py`` and
``connectors/sim/intercom/directory.py``; these tests pin the simulator so a connector test that passes
against it means something.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from connectors.sim.base import SimRequest, SimResponse
from connectors.sim.intercom import IntercomSim
from connectors.sim.intercom.render import contact_id
from connectors.sim.intercom.search import DateRule
from tests.intercom_kit import ALICE, BOB, LEAD, TOKEN, FakeTime, make_sim, many_orgs_world, small_world

JAN_1_2020_9AM = 1577869200  # the OAS 2.11 example: truncated to 1577836800, '>' starts on January 2nd
JAN_1_2020 = 1577836800


def call(sim: IntercomSim, method: str, path: str, body: Any = None,
         query: dict[str, str] | None = None) -> tuple[SimResponse, Any]:
    req = SimRequest(method, path, {k: [v] for k, v in (query or {}).items()},
                     {"Authorization": f"Bearer {TOKEN}"}, json.dumps(body).encode() if body is not None else b"")
    resp = sim.handle(req)
    return resp, json.loads(resp.body) if resp.body else None


def contacts(sim: IntercomSim, op: str, value: int) -> list[str]:
    _, body = call(sim, "POST", "/contacts/search",
                   {"query": {"field": "updated_at", "operator": op, "value": value}})
    return sorted(c["id"] for c in body["data"])


def dated_sim(**kwargs: Any) -> IntercomSim:
    """Alice on Jan 1st 2020 at 00:00:30, Bob at 23:59:00, the lead on Jan 2nd at 08:00 (UTC)."""
    world = small_world()
    stamps = {ALICE: JAN_1_2020 + 30, BOB: JAN_1_2020 + 86340, LEAD: JAN_1_2020 + 86400 + 8 * 3600}
    for person in world.people:
        if person.id in stamps:
            person.updated_at = stamps[person.id]
    return make_sim(world, **kwargs)


def test_contact_dates_follow_the_oas_example() -> None:
    sim = dated_sim()
    assert contacts(sim, ">", JAN_1_2020_9AM) == [contact_id(LEAD)]  # from the next day, not from 9:00
    assert contacts(sim, "=", JAN_1_2020_9AM) == sorted([contact_id(ALICE), contact_id(BOB)])  # the whole day
    assert contacts(sim, "<", JAN_1_2020_9AM) == []  # before the start of that day
    _, body = call(sim, "POST", "/contacts/search", {"query": {"field": "updated_at", "operator": ">", "value": 0},
                                                     "sort": {"field": "updated_at", "order": "ascending"}})
    assert [c["updated_at"] for c in body["data"]] == sorted(c["updated_at"] for c in body["data"])


def test_hevos_reading_and_the_workspace_timezone_are_switchable() -> None:
    sim = dated_sim()
    sim.configure_search(contact_dates="same_day")
    assert contacts(sim, ">", JAN_1_2020_9AM) == sorted(contact_id(p) for p in (ALICE, BOB, LEAD))
    sim.configure_search(utc_offset_s=-8 * 3600)  # a workspace in UTC-8: its Jan 1st starts at 08:00 UTC
    assert contacts(sim, "=", JAN_1_2020_9AM) == [contact_id(BOB)]  # Alice's 00:00:30 is Dec 31st there
    assert DateRule(by_day="next_day", utc_offset_s=3600).day_start(JAN_1_2020) == JAN_1_2020 - 3600


def test_conversations_still_compare_per_second() -> None:
    sim = make_sim()
    t = sim.world.ticket(102).updated_at
    _, body = call(sim, "POST", "/conversations/search",
                   {"query": {"field": "updated_at", "operator": ">", "value": t + 1}})
    assert "102" not in [c["id"] for c in body["conversations"]]


def test_index_lag_hides_a_change_from_search_but_not_from_retrieve() -> None:
    fake = FakeTime()
    sim = make_sim(fake=fake)
    sim.configure_search(index_lag_s=300)
    before = sim.world.ticket(102).updated_at
    at = sim.touch(102, body="late")
    query = {"query": {"field": "updated_at", "operator": ">", "value": at}}
    assert call(sim, "POST", "/conversations/search", query)[1]["conversations"] == []
    everything = {"query": {"field": "updated_at", "operator": ">", "value": 0}}
    listed = {c["id"]: c["updated_at"] for c in call(sim, "POST", "/conversations/search", everything)[1]
              ["conversations"]}
    assert listed["102"] == before  # search still serves the version its index has
    assert call(sim, "GET", "/conversations/102")[1]["updated_at"] == at
    fake.advance(300)
    assert [c["id"] for c in call(sim, "POST", "/conversations/search", query)[1]["conversations"]] == ["102"]
    sim.touch_contact(ALICE)
    fake.advance(299)
    assert contact_id(ALICE) not in contacts(sim, "=", int(fake.now))
    fake.advance(1)
    assert contact_id(ALICE) in contacts(sim, "=", int(fake.now))


def test_one_scroll_per_app_and_its_documented_endings() -> None:
    fake = FakeTime()
    sim = make_sim(many_orgs_world(70), fake=fake)
    resp, first = call(sim, "GET", "/companies/scroll")
    assert resp.status == 200 and len(first["data"]) == 50
    resp, body = call(sim, "GET", "/companies/scroll")  # a second scroll while ours is open
    assert resp.status == 400
    assert body["type"] == "error.list" and body["errors"][0]["code"] == "scroll_exists"
    _, second = call(sim, "GET", "/companies/scroll", query={"scroll_param": first["scroll_param"]})
    _, end = call(sim, "GET", "/companies/scroll", query={"scroll_param": second["scroll_param"]})
    assert len(second["data"]) == 20 and end["data"] == []
    assert call(sim, "GET", "/companies/scroll")[0].status == 200  # the end closed it: the slot is free
    fake.advance(61)  # unused for a minute: expired, and the slot is free again
    assert call(sim, "GET", "/companies/scroll", query={"scroll_param": first["scroll_param"]})[0].status == 404
    resp, fresh = call(sim, "GET", "/companies/scroll")
    assert resp.status == 200
    sim.fail_scroll()
    resp, body = call(sim, "GET", "/companies/scroll", query={"scroll_param": fresh["scroll_param"]})
    assert resp.status == 500 and "restart the scroll" in body["errors"][0]["message"]
    assert call(sim, "GET", "/companies/scroll", query={"scroll_param": fresh["scroll_param"]})[0].status == 404
    sim.hold_scroll(30)  # another integration
    assert call(sim, "GET", "/companies/scroll")[0].status == 400
    fake.advance(31)
    assert call(sim, "GET", "/companies/scroll")[0].status == 200


def test_a_workspace_without_companies_answers_the_first_scroll_call_404() -> None:
    world = small_world()
    world.orgs = []
    resp, body = call(make_sim(world), "GET", "/companies/scroll")
    assert resp.status == 404 and body["errors"][0]["code"] == "not_found"


def test_unknown_contact_date_reading_is_refused() -> None:
    with pytest.raises(ValueError, match="contact_dates"):
        make_sim().configure_search(contact_dates="hourly")
