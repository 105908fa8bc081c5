"""Zendesk write-back: tag add/remove endpoints, custom fields by id or title, gone/refused outcomes."""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses

from connectors.base import WriteRequest
from tests.zendesk_kit import BASE, TOKEN, make_connector

TAGS_URL = f"{BASE}/api/v2/tickets/42/tags.json"
TICKET_URL = f"{BASE}/api/v2/tickets/42.json"


@pytest.fixture
def rsps() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def test_add_tags_appends_with_put_and_returns_the_full_list(rsps: Any) -> None:
    rsps.add(responses.PUT, TAGS_URL, json={"tags": ["vip", "deskpulse_distress"]})
    result = make_connector().write(WriteRequest("42", add_tags=["deskpulse_distress"]))
    assert (result.outcome, result.tags) == ("applied", ["vip", "deskpulse_distress"])
    (call,) = rsps.calls
    assert call.request.method == "PUT"  # PUT appends; POST would replace every tag on the ticket
    assert json.loads(call.request.body) == {"tags": ["deskpulse_distress"]}
    assert call.request.headers["Content-Type"] == "application/json"


def test_remove_tags_uses_delete_with_a_body(rsps: Any) -> None:
    rsps.add(responses.DELETE, TAGS_URL, json={"tags": ["vip"]})
    result = make_connector().write(WriteRequest("42", remove_tags=["deskpulse_distress"]))
    assert (result.outcome, result.tags) == ("applied", ["vip"])
    assert json.loads(rsps.calls[0].request.body) == {"tags": ["deskpulse_distress"]}


def test_custom_fields_by_id_and_by_title(rsps: Any) -> None:
    rsps.add(responses.GET, f"{BASE}/api/v2/ticket_fields.json",
             json={"ticket_fields": [{"id": 27642, "title": "Deskpulse CDI", "type": "integer"}],
                   "meta": {"has_more": False}})
    rsps.add(responses.PUT, TICKET_URL, json={"ticket": {"id": 42, "tags": ["vip"]}})
    connector = make_connector()
    result = connector.write(WriteRequest("42", fields={"27642": "81", "deskpulse cdi": "82"}))
    assert (result.outcome, result.tags) == ("applied", ["vip"])
    body = json.loads(rsps.calls[-1].request.body)
    assert body == {"ticket": {"custom_fields": [{"id": 27642, "value": "81"}, {"id": 27642, "value": "82"}]}}
    connector.write(WriteRequest("42", fields={"Deskpulse CDI": "83"}))
    assert sum(1 for c in rsps.calls if "ticket_fields" in c.request.url) == 1  # titles looked up once


def test_unknown_field_title_is_refused_without_a_write(rsps: Any) -> None:
    rsps.add(responses.GET, f"{BASE}/api/v2/ticket_fields.json",
             json={"ticket_fields": [], "meta": {"has_more": False}})
    result = make_connector().write(WriteRequest("42", fields={"nope": "1"}))
    assert result.outcome == "refused" and "nope" in result.detail
    assert [c.request.method for c in rsps.calls] == ["GET"]


def test_missing_ticket_is_gone(rsps: Any) -> None:
    rsps.add(responses.PUT, TAGS_URL, status=404, json={"error": "RecordNotFound", "description": "Not found"})
    result = make_connector().write(WriteRequest("42", add_tags=["x"]))
    assert result.outcome == "gone" and "404" in result.detail
    assert len(rsps.calls) == 1


def test_closed_ticket_422_is_refused_with_the_vendor_label(rsps: Any) -> None:
    rsps.add(responses.PUT, TAGS_URL, status=422,
             json={"error": "RecordInvalid", "description": "Record validation errors",
                   "details": {"status": [{"description": "Status: closed prevents ticket update"}]}})
    result = make_connector().write(WriteRequest("42", add_tags=["x"], remove_tags=["y"]))
    assert result.outcome == "refused" and "RecordInvalid" in result.detail
    assert TOKEN not in result.detail
    assert len(rsps.calls) == 1  # the remove is not attempted after a refusal


def test_non_numeric_ticket_id_is_refused_before_any_call(rsps: Any) -> None:
    result = make_connector().write(WriteRequest("../users/1", add_tags=["x"]))
    assert result.outcome == "refused" and len(rsps.calls) == 0
