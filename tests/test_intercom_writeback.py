"""Intercom write-back: tags by id with admin_id, custom attributes, and how the next sync sees the writes."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import pytest
import responses

from connectors.base import WriteRequest
from connectors.errors import FatalAPIError
from sync.store import Store
from tests.intercom_kit import AGENT_A, SOURCE, TOKEN, FakeTime, make_connector, make_sim, make_source, mount, sync


@pytest.fixture
def rm() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def bodies(rm: Any, method: str, path_part: str) -> list[Any]:
    return [json.loads(c.request.body) if c.request.body else None for c in rm.calls
            if c.request.method == method and path_part in c.request.url]


def tag_names(sim: Any, cid: int) -> list[str]:
    return list(sim.world.ticket(cid).tags)


def test_tag_is_found_or_created_then_attached_with_admin_id(rm: Any) -> None:
    fake = FakeTime()
    sim = make_sim(fake=fake, known_admins_only=True)
    mount(rm, sim)
    connector = make_connector(fake)
    result = connector.write(WriteRequest("101", add_tags=["deskpulse_distress"]))
    assert result.outcome == "applied"
    assert tag_names(sim, 101) == ["login", "deskpulse_distress"]  # additive: the existing tag stays
    created = [json.loads(c.request.body) for c in rm.calls if urlsplit(c.request.url).path == "/tags"]
    assert created == [{"name": "deskpulse_distress"}]
    attach = bodies(rm, "POST", "/conversations/101/tags")
    assert attach == [{"id": sim.render.tag_ids["deskpulse_distress"], "admin_id": str(AGENT_A)}]
    assert connector.write(WriteRequest("102", add_tags=["deskpulse_distress"])).outcome == "applied"
    creates = [c for c in rm.calls if urlsplit(c.request.url).path == "/tags" and c.request.method == "POST"]
    assert len(creates) == 1  # the tag id is cached per connector
    assert tag_names(sim, 102) == ["deskpulse_distress"]


def test_existing_tag_is_reused_not_duplicated(rm: Any) -> None:
    fake = FakeTime()
    sim = make_sim(fake=fake)
    mount(rm, sim)
    login_id = sim.render.tag_ids["login"]
    assert make_connector(fake).write(WriteRequest("102", add_tags=["login"])).outcome == "applied"
    assert bodies(rm, "POST", "/conversations/102/tags")[0]["id"] == login_id
    assert len(sim.render.tag_ids) == 1


def test_tag_removal_uses_delete_with_admin_id(rm: Any) -> None:
    fake = FakeTime()
    sim = make_sim(fake=fake)
    mount(rm, sim)
    connector = make_connector(fake)
    result = connector.write(WriteRequest("101", remove_tags=["login", "never_existed"]))
    assert result.outcome == "applied"
    assert tag_names(sim, 101) == []
    deletes = [c for c in rm.calls if c.request.method == "DELETE"]
    assert len(deletes) == 1  # an unknown tag costs a lookup, not a delete
    assert deletes[0].request.url.endswith(f"/conversations/101/tags/{sim.render.tag_ids['login']}")
    assert json.loads(deletes[0].request.body) == {"admin_id": str(AGENT_A)}


def test_missing_admin_id_is_a_clear_configuration_error(rm: Any) -> None:
    fake = FakeTime()
    mount(rm, make_sim(fake=fake))
    connector = make_connector(fake, make_source(admin_id=None))
    with pytest.raises(FatalAPIError, match="admin_id"):
        connector.write(WriteRequest("101", add_tags=["x"]))
    assert len(rm.calls) == 0
    assert connector.write(WriteRequest("101", fields={"deskpulse_cdi": "80"})).outcome == "applied"


def test_custom_attribute_update_is_seen_by_the_next_sync_as_events_not_replies(rm: Any) -> None:
    fake = FakeTime()
    sim = make_sim(fake=fake)
    mount(rm, sim)
    store, cursors = Store(":memory:"), {}
    sync(make_connector(fake), store, cursors)
    replies_before = store.scalar("SELECT count(*) FROM messages WHERE ticket_id='102' AND author_role='agent'")
    fake.now += 600
    before = sim.world.ticket(102).updated_at
    result = make_connector(fake).write(WriteRequest("102", add_tags=["deskpulse_distress"],
                                                     fields={"deskpulse_cdi": "83", "issue_type": "Billing"}))
    assert result.outcome == "applied"
    assert result.tags == ["deskpulse_distress"]
    assert sim.world.ticket(102).updated_at > before
    fake.now += 600
    gets_before = sim.requests_made("GET /conversations/102")
    sync(make_connector(fake), store, cursors)
    assert sim.requests_made("GET /conversations/102") == gets_before + 1  # it reappeared in the search
    ticket = store.query("SELECT * FROM tickets WHERE id='102'")[0]
    assert json.loads(ticket["custom_fields"]) == {"deskpulse_cdi": "83", "issue_type": "Billing"}
    assert json.loads(ticket["tags"]) == ["deskpulse_distress"]
    assert ticket["updated_at"] == sim.world.ticket(102).updated_at
    events = store.query("SELECT actor_id FROM ticket_events WHERE ticket_id='102' AND field='custom_attributes'")
    assert len(events) == 2 and {e["actor_id"] for e in events} == {"991267562"}  # the Operator bot
    replies_after = store.scalar("SELECT count(*) FROM messages WHERE ticket_id='102' AND author_role='agent'")
    assert replies_after == replies_before


def test_outcomes_gone_and_refused(rm: Any) -> None:
    fake = FakeTime()
    sim = make_sim(fake=fake, known_admins_only=True)
    mount(rm, sim)
    connector = make_connector(fake)
    gone = connector.write(WriteRequest("105", add_tags=["x"]))  # deleted conversation
    assert gone.outcome == "gone" and "404" in gone.detail
    assert connector.write(WriteRequest("999", fields={"a": "b"})).outcome == "gone"
    refused = connector.write(WriteRequest("101", fields={"a": {"nested": "no"}}))  # type: ignore[dict-item]
    assert refused.outcome == "refused" and "400" in refused.detail
    bad_admin = make_connector(fake, make_source(admin_id="424242"))
    result = bad_admin.write(WriteRequest("101", add_tags=["x"]))
    assert result.outcome == "refused" and "admin_not_found" in result.detail  # a 404 that is not the ticket's
    assert connector.write(WriteRequest("../admins", add_tags=["x"])).outcome == "refused"


def test_write_sends_version_header_and_never_the_token_in_results(rm: Any) -> None:
    fake = FakeTime()
    sim = make_sim(fake=fake)
    mount(rm, sim)
    result = make_connector(fake, make_source(intercom_version="2.10")).write(WriteRequest("999", add_tags=["x"]))
    assert all(c.request.headers["Intercom-Version"] == "2.10" for c in rm.calls)
    assert result.outcome == "gone" and SOURCE in result.detail
    assert TOKEN not in result.detail and "Bearer" not in result.detail
