"""Freshdesk payload mapping: the real fixtures, status/channel/CSAT maps, solved_at, time entries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.errors import ParseError
from connectors.freshdesk.mapping import (
    CSAT_1_5,
    channel,
    hhmm_seconds,
    is_merge_note,
    map_agent,
    map_company,
    map_conversation,
    map_description,
    map_rating,
    map_ticket,
    map_time_entry,
    normalize_status,
    solved_at,
)
from connectors.normalize import to_epoch
from connectors.pagination import link_next


def _fixture(fixtures_dir: Path, name: str) -> list[dict]:
    return json.loads((fixtures_dir / name).read_text(encoding="utf-8"))


def test_tickets_list_fixture_maps_to_a_ticket_row(fixtures_dir: Path) -> None:
    ticket = _fixture(fixtures_dir, "freshdesk_tickets_list_page.json")[0]
    row = map_ticket(ticket)
    assert row["id"] == "21"
    assert row["status"] == "closed" and row["vendor_status"] == "5"
    assert row["priority"] == "1"
    assert row["channel"] == "email"  # source 10: outbound email
    assert row["requester_id"] == "67042965499"
    assert row["organization_id"] == "67001265522"
    assert row["assignee_id"] == "67013469919"
    assert row["group_id"] is None
    assert row["created_at"] == to_epoch("2022-11-16T15:59:28Z")
    assert row["solved_at"] == to_epoch("2022-11-16T15:59:28Z")
    assert row["vendor_first_reply_s"] is None  # first_responded_at is null
    assert row["vendor_metrics"]["status_updated_at"] == "2022-11-16T15:59:28Z"
    assert row["is_spam"] == 0 and row["tags"] == [] and row["custom_fields"] == {}
    assert "source" not in row
    desc = map_description(ticket)
    assert desc is not None
    assert desc["id"] == "desc-21" and desc["kind"] == "description" and desc["body"] == "Test"
    # An outbound email (source 10) is written by the agent, not by the requester.
    assert desc["author_role"] == "agent" and desc["author_id"] == "67013469919"


def test_conversations_fixture_maps_notes_and_replies(fixtures_dir: Path) -> None:
    convs = _fixture(fixtures_dir, "freshdesk_conversations_list.json")
    rows = [map_conversation(c, ticket_id="1", requester_id="99", agent_ids={"1"}) for c in convs]
    note, reply = rows
    assert (note["author_role"], note["public"], note["kind"]) == ("agent", 0, "note")
    assert (reply["author_role"], reply["public"], reply["kind"]) == ("agent", 1, "comment")
    assert reply["body"] == "This is a reply" and reply["ticket_id"] == "1"
    assert reply["created_at"] == to_epoch("2016-05-19T05:36:14Z")


def test_incoming_conversation_is_the_customer_even_without_agent_knowledge() -> None:
    conv = {"id": 7, "incoming": True, "private": False, "user_id": 5, "body_text": "hi",
            "created_at": "2024-01-01T00:00:00Z"}
    assert map_conversation(conv, ticket_id="3", requester_id="5", agent_ids=set())["author_role"] == "customer"
    outgoing_by_requester = {**conv, "incoming": False}
    row = map_conversation(outgoing_by_requester, ticket_id="3", requester_id="5", agent_ids={"8"})
    assert row["author_role"] == "customer"
    by_agent = {**conv, "incoming": False, "user_id": 8}
    assert map_conversation(by_agent, ticket_id="3", requester_id="5", agent_ids={"8"})["author_role"] == "agent"


def test_description_falls_back_to_html_and_belongs_to_the_requester() -> None:
    ticket = {"id": 4, "source": 2, "requester_id": 9, "responder_id": 1, "created_at": "2024-01-01T00:00:00Z",
              "description": "<div>Hello &amp; <b>help</b></div>"}
    desc = map_description(ticket)
    assert desc is not None
    assert desc["body"] == "Hello & help" and desc["author_role"] == "customer" and desc["author_id"] == "9"
    assert map_description({"id": 4, "created_at": "2024-01-01T00:00:00Z"}) is None


@pytest.mark.parametrize(("code", "spam", "deleted", "expected"), [
    (2, False, False, "open"), (3, False, False, "pending"), (4, False, False, "solved"),
    (5, False, False, "closed"), (6, False, False, "open"), (7, False, False, "open"),
    (2, True, False, "deleted"), (4, False, True, "deleted"),
])
def test_status_map(code: int, spam: bool, deleted: bool, expected: str) -> None:
    assert normalize_status(code, spam=spam, deleted=deleted) == expected


def test_custom_status_keeps_its_number_and_spam_is_flagged() -> None:
    base = {"id": 1, "status": 7, "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-02T00:00:00Z"}
    row = map_ticket(base)
    assert (row["status"], row["vendor_status"]) == ("open", "7")
    spam = map_ticket({**base, "spam": True})
    assert (spam["status"], spam["is_spam"]) == ("deleted", 1)
    assert map_ticket({**base, "deleted": True})["status"] == "deleted"
    assert map_ticket(base, spam=True)["is_spam"] == 1


@pytest.mark.parametrize(("code", "expected"), [(1, "email"), (2, "web"), (3, "phone"), (7, "chat"), (9, "web"),
                                                (10, "email"), (4, "other"), (None, "other")])
def test_channel_map(code: int | None, expected: str) -> None:
    assert channel(code) == expected


def test_csat_scale_is_monotone_and_respects_the_satisfied_set() -> None:
    custom = [-103, -102, -101, 100, 101, 102, 103]
    scores = [CSAT_1_5[v] for v in custom]
    assert scores == sorted(scores) and len(set(scores)) == len(scores)
    assert all(CSAT_1_5[v] >= 4 for v in (101, 102, 103))
    assert all(CSAT_1_5[v] <= 2 for v in (-101, -102, -103))
    assert CSAT_1_5[100] == 3 and (CSAT_1_5[103], CSAT_1_5[-103]) == (5, 1)
    assert CSAT_1_5[1] >= 4 and CSAT_1_5[3] <= 2  # classic: 1 awesome, 3 not good


def test_rating_row_and_bad_ratings() -> None:
    rating = {"id": 5, "ticket_id": 9, "user_id": 3, "agent_id": 2, "feedback": "great",
              "ratings": {"default_question": 102, "question_1": -103}, "created_at": "2024-03-01T10:00:00Z"}
    row = map_rating(rating)
    assert row["kind"] == "csat" and row["score_raw"] == "102" and row["score_1_5"] == CSAT_1_5[102]
    assert (row["ticket_id"], row["requester_id"], row["assignee_id"]) == ("9", "3", "2")
    with pytest.raises(ParseError):
        map_rating({**rating, "ratings": {}})
    with pytest.raises(ParseError):
        map_rating({**rating, "ratings": {"default_question": 55}})


def test_solved_at_uses_the_resolve_not_the_auto_close() -> None:
    resolved_then_closed = {"resolved_at": "2024-01-01T00:00:00Z", "closed_at": "2024-01-05T00:00:00Z"}
    assert solved_at(resolved_then_closed) == to_epoch("2024-01-01T00:00:00Z")
    reopened_and_closed = {**resolved_then_closed, "reopened_at": "2024-01-02T00:00:00Z"}
    assert solved_at(reopened_and_closed) == to_epoch("2024-01-05T00:00:00Z")
    closed_then_resolved = {"resolved_at": "2024-02-01T00:00:00Z", "closed_at": "2024-01-05T00:00:00Z",
                            "reopened_at": "2024-01-20T00:00:00Z"}
    assert solved_at(closed_then_resolved) == to_epoch("2024-02-01T00:00:00Z")
    assert solved_at({"closed_at": "2024-01-05T00:00:00Z"}) == to_epoch("2024-01-05T00:00:00Z")
    assert solved_at({}) is None


def test_first_reply_from_stats() -> None:
    row = map_ticket({"id": 1, "status": 2, "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T05:00:00Z",
                      "stats": {"first_responded_at": "2024-01-01T01:30:00Z"}})
    assert row["vendor_first_reply_s"] == 5400


@pytest.mark.parametrize("bad", [{"status": 2, "created_at": "2024-01-01T00:00:00Z", "updated_at": "x"},
                                 {"id": 1, "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"},
                                 {"id": 1, "status": 2, "created_at": "garbage", "updated_at": "2024-01-01T00:00:00Z"},
                                 {"id": 1, "status": "two", "created_at": "2024-01-01T00:00:00Z",
                                  "updated_at": "2024-01-01T00:00:00Z"}])
def test_malformed_tickets_raise_parse_errors(bad: dict) -> None:
    with pytest.raises(ParseError):
        map_ticket(bad)


def test_time_entry_hh_mm_and_other_records() -> None:
    entry = {"id": 1, "ticket_id": 2, "agent_id": 3, "time_spent": "01:30", "executed_at": "2024-01-01T10:00:00Z",
             "created_at": "2024-01-02T10:00:00Z"}
    row = map_time_entry(entry)
    assert row["seconds"] == 5400 and row["created_at"] == to_epoch("2024-01-01T10:00:00Z")
    assert hhmm_seconds("00:05") == 300 and hhmm_seconds("12:00") == 43200
    with pytest.raises(ParseError):
        hhmm_seconds("90 minutes")
    company = map_company({"id": 8, "name": "Acme", "custom_fields": {"arr": "1200.5"}}, "arr")
    assert company["value"] == 1200.5
    assert map_company({"id": 8, "custom_fields": {"arr": "n/a"}}, "arr")["value"] is None
    agent = map_agent({"id": 4, "contact": {"name": "Ann", "email": "ann@x"}})
    assert (agent["role"], agent["name"], agent["email"]) == ("agent", "Ann", "ann@x")


def test_link_header_and_merge_note() -> None:
    header = '<https://acme.freshdesk.com/api/v2/tickets?page=2&per_page=100>; rel="next"'
    assert link_next(header) == "https://acme.freshdesk.com/api/v2/tickets?page=2&per_page=100"
    assert link_next('<https://x/api/v2/tickets?page=1>; rel="prev"') is None
    assert link_next(None) is None
    assert is_merge_note({"public": 0, "body": "This ticket is closed and merged into ticket #12"})
    # Freshdesk lets the agent make the merge note public (API-NOTES 6.3): visibility proves nothing,
    # but a customer quoting the phrase is not a merge.
    assert is_merge_note({"public": 1, "author_role": "agent", "body": "merged into ticket #12"})
    assert not is_merge_note({"public": 1, "author_role": "customer", "body": "was it merged into ticket #12?"})
