"""Intercom payload mapping: the real fixtures, parts -> messages/events, ratings, companies, HTML."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from connectors.errors import ParseError
from connectors.intercom.mapping import (
    channel_of,
    html_to_text,
    map_company,
    map_contact,
    map_conversation,
    parse_list_item,
)


def load(fixtures_dir: Path, name: str) -> Any:
    return json.loads((fixtures_dir / name).read_text(encoding="utf-8"))


def part(pid: str, part_type: str, body: str | None, at: int, author_type: str, author_id: str = "7",
         **extra: Any) -> dict[str, Any]:
    return {"type": "conversation_part", "id": pid, "part_type": part_type, "body": body, "created_at": at,
            "updated_at": at, "author": {"type": author_type, "id": author_id}, "redacted": False, **extra}


def with_parts(conv: dict[str, Any], parts: list[dict[str, Any]], total: int | None = None) -> dict[str, Any]:
    conv = copy.deepcopy(conv)
    conv["conversation_parts"] = {"type": "conversation_part.list", "conversation_parts": parts,
                                  "total_count": len(parts) if total is None else total}
    return conv


def test_search_page_fixture_items_parse(fixtures_dir: Path) -> None:
    page = load(fixtures_dir, "intercom_conversations_search_page.json")
    item = page["conversations"][0]
    assert parse_list_item(item) == ("378", 1719492843)
    assert "conversation_parts" not in item  # search items never carry parts
    rows, truncated = map_conversation(item, organization_id="org-1")
    ticket = rows["tickets"][0]
    assert not truncated
    assert ticket["id"] == "378"
    assert (ticket["status"], ticket["vendor_status"]) == ("closed", "closed")
    assert ticket["priority"] == "not_priority"
    assert ticket["channel"] == "chat"  # source.type conversation
    assert ticket["requester_id"] == "667d60ea8a68186f43bafdec"
    assert ticket["organization_id"] == "org-1"
    assert (ticket["assignee_id"], ticket["group_id"]) == ("991267715", "5017691")
    assert ticket["created_at"] == ticket["updated_at"] == 1719492843
    assert "severity" not in ticket  # the engine computes severity from priority
    [desc] = rows["messages"]
    assert desc["kind"] == "description"
    assert desc["author_role"] == "agent"  # admin_initiated: the admin wrote the opening message
    assert desc["body"] == "this is the message body"


def test_attribute_update_parts_become_events_not_agent_replies(fixtures_dir: Path) -> None:
    conv = load(fixtures_dir, "intercom_conversation_with_parts_after_custom_attr_update.json")
    rows, _ = map_conversation(conv)
    ticket = rows["tickets"][0]
    assert ticket["custom_fields"] == {"issue_type": "Billing", "priority": "High"}
    assert ticket["updated_at"] == 1719492834
    assert [m["kind"] for m in rows["messages"]] == ["description"]  # the two bot parts have no body
    events = rows["ticket_events"]
    assert [(e["field"], e["actor_id"]) for e in events] == [("custom_attributes", "991267562")] * 2
    assert {e["id"] for e in events} == {"96:custom_attributes", "97:custom_attributes"}
    assert "conversation_parts" not in ticket["raw"]  # parts live in messages/events, not twice in raw


def test_user_reply_part_is_a_customer_message_and_a_reopen(fixtures_dir: Path) -> None:
    conv = load(fixtures_dir, "intercom_conversation_with_user_reply_part.json")
    rows, _ = map_conversation(conv)
    reply = [m for m in rows["messages"] if m["id"] == "99"][0]
    assert reply["author_role"] == "customer"
    assert reply["public"] == 1
    assert reply["body"] == "Thanks again :)"
    assert reply["author_id"] == "667d60f18a68186f43bafdf4"
    [event] = rows["ticket_events"]
    assert (event["field"], event["old_value"], event["new_value"]) == ("status", "open", "open")
    assert rows["tickets"][0]["status"] == "open"
    assert rows["tickets"][0]["solved_at"] is None


def test_parts_authors_visibility_and_history(fixtures_dir: Path) -> None:
    base = load(fixtures_dir, "intercom_conversation_with_user_reply_part.json")
    conv = with_parts(base, [
        part("1", "comment", "<p>Auto reply</p>", 100, "bot"),
        part("2", "note", "<p>internal</p>", 110, "admin"),
        part("3", "assignment", None, 120, "admin", assigned_to={"type": "admin", "id": "55"}),
        part("4", "assignment", None, 121, "bot", assigned_to={"type": "team", "id": "66"}),
        part("5", "close", "<p>Done!</p>", 130, "admin"),
        part("6", "open", None, 140, "user", "u1"),
        part("7", "snoozed", None, 150, "admin"),
        part("8", "assignment", None, 160, "admin", assigned_to={"type": "nobody_admin", "id": None}),
        part("9", "comment", "<p>lead here</p>", 170, "lead", "l1"),
        part("10", "comment", "<p>team voice</p>", 175, "team", "t1"),
        part("11", "comment", None, 180, "admin"),
    ])
    rows, _ = map_conversation(conv)
    msgs = {m["id"]: m for m in rows["messages"]}
    assert (msgs["1"]["author_role"], msgs["1"]["public"]) == ("bot", 1)  # a bot is never an agent reply
    assert (msgs["2"]["author_role"], msgs["2"]["public"]) == ("agent", 0)
    assert (msgs["5"]["author_role"], msgs["5"]["body"]) == ("agent", "Done!")
    assert msgs["9"]["author_role"] == "customer"
    assert msgs["10"]["author_role"] == "agent"
    assert "11" not in msgs and "3" not in msgs  # no body, no message
    events = [(e["field"], e["old_value"], e["new_value"]) for e in rows["ticket_events"]]
    assert events == [("assignee_id", None, "55"), ("group_id", None, "66"), ("status", "open", "closed"),
                      ("status", "closed", "open"), ("status", "open", "pending"), ("assignee_id", "55", None)]


def test_state_statistics_and_solved_at(fixtures_dir: Path) -> None:
    conv = load(fixtures_dir, "intercom_conversation_with_user_reply_part.json")
    conv.update(state="snoozed", open=True)
    assert map_conversation(conv)[0]["tickets"][0]["status"] == "pending"
    # time_to_* leave out-of-office time out and start at the customer's first message (OAS
    # conversation_statistics): they are not calendar seconds since creation; the timestamps are
    conv.update(state="closed", open=False, created_at=1000, statistics={
        "type": "conversation_statistics", "time_to_admin_reply": 42, "first_admin_reply_at": 1600,
        "time_to_first_close": 500, "first_close_at": 1900, "time_to_last_close": 700, "last_close_at": 2500,
        "count_reopens": 2})
    ticket = map_conversation(conv)[0]["tickets"][0]
    assert ticket["status"] == "closed"
    assert ticket["solved_at"] == 2500
    assert ticket["vendor_first_reply_s"] == 600  # first_admin_reply_at - created_at, not time_to_admin_reply
    assert ticket["vendor_first_resolution_s"] == 900  # first_close_at - created_at
    assert ticket["vendor_full_resolution_s"] == 1500  # last_close_at - created_at
    assert ticket["vendor_reopens"] == 2
    assert ticket["vendor_metrics"]["count_reopens"] == 2
    assert ticket["vendor_metrics"]["time_to_admin_reply"] == 42  # Intercom's own figure stays available
    conv["statistics"] = {"time_to_admin_reply": 42, "time_to_first_close": 500}  # durations, no timestamps
    conv = with_parts(conv, [part("1", "close", None, 1900, "admin"), part("2", "open", None, 1950, "user"),
                             part("3", "close", None, 2100, "admin")])
    ticket = map_conversation(conv)[0]["tickets"][0]
    assert ticket["vendor_first_reply_s"] is None and ticket["vendor_first_resolution_s"] is None
    assert ticket["solved_at"] == 2100  # no statistics: the last close part


def test_rating_row(fixtures_dir: Path) -> None:
    conv = load(fixtures_dir, "intercom_conversation_with_user_reply_part.json")
    conv["conversation_rating"] = {"rating": 4, "remark": "nice", "created_at": 1719500000,
                                   "contact": {"type": "contact", "id": "c9"},
                                   "teammate": {"type": "admin", "id": "a1"}}
    [rating] = map_conversation(conv)[0]["ratings"]
    assert rating["id"] == "conv-387"
    assert (rating["kind"], rating["score_raw"], rating["score_1_5"]) == ("csat", "4", 4.0)
    assert (rating["requester_id"], rating["assignee_id"], rating["comment"]) == ("c9", "a1", "nice")
    assert rating["created_at"] == 1719500000
    conv["conversation_rating"]["rating"] = 9
    with pytest.raises(ParseError):
        map_conversation(conv)


def test_parts_cap_is_recorded(fixtures_dir: Path) -> None:
    conv = load(fixtures_dir, "intercom_conversation_with_user_reply_part.json")
    rows, truncated = map_conversation(with_parts(conv, [part("1", "comment", "x", 5, "user")], total=740))
    assert truncated
    assert rows["tickets"][0]["vendor_metrics"]["parts_truncated"] is True
    assert rows["tickets"][0]["vendor_metrics"]["parts_total"] == 740
    many = [part(str(i), "comment", "x", i, "user") for i in range(1, 501)]
    assert map_conversation(with_parts(conv, many))[1]  # exactly 500 returned: assume the cap was hit
    rows, truncated = map_conversation(with_parts(conv, many[:3]))
    assert not truncated and "parts_truncated" not in rows["tickets"][0]["vendor_metrics"]
    # the earliest part's previous status is unknown when history was cut off
    rows, _ = map_conversation(with_parts(conv, [part("1", "close", None, 5, "admin")], total=900))
    assert rows["ticket_events"][0]["old_value"] is None


def test_bad_records_raise(fixtures_dir: Path) -> None:
    conv = load(fixtures_dir, "intercom_conversation_with_user_reply_part.json")
    with pytest.raises(ParseError):
        map_conversation({**conv, "created_at": "corrupt"})
    with pytest.raises(ParseError):
        parse_list_item({"id": "1", "updated_at": "corrupt"})
    with pytest.raises(ParseError):
        parse_list_item({"updated_at": 5})


@pytest.mark.parametrize(("html", "text"), [
    ("<p>Hello&nbsp;<b>there</b> &amp; welcome</p><p>Line two</p>", "Hello there & welcome\nLine two"),
    ("first<br>second<br/>third", "first\nsecond\nthird"),
    ("<ul><li>a</li><li>b &lt;c&gt;</li></ul>", "a\nb <c>"),
    ("plain text, no markup", "plain text, no markup"),
    ("<p></p>", ""),
])
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_html_to_text_keeps_none() -> None:
    assert html_to_text(None) is None


@pytest.mark.parametrize(("source", "channel"), [
    ({"type": "email", "delivered_as": "customer_initiated"}, "email"),
    ({"type": "conversation", "delivered_as": "customer_initiated"}, "chat"),
    ({"type": "conversation", "delivered_as": "automated"}, "api"),
    ({"type": "phone_call", "delivered_as": "admin_initiated"}, "phone"),
    ({"type": "whatsapp"}, "whatsapp"),
    ({}, None),
])
def test_channel(source: dict[str, Any], channel: str | None) -> None:
    assert channel_of(source) == channel


def test_company_value_and_age() -> None:
    company = {"type": "company", "id": "c1", "name": "Xylo", "created_at": 2000, "remote_created_at": 1000,
               "updated_at": 3000, "monthly_spend": 250, "custom_attributes": {"arr": "120,000.50"}}
    row = map_company(company, "arr")
    assert (row["value"], row["created_at"], row["updated_at"]) == (120000.5, 1000, 3000)
    assert map_company(company, "monthly_spend")["value"] == 250.0  # a top-level field works too
    assert map_company({**company, "remote_created_at": None}, "missing")["value"] is None
    assert map_company({**company, "remote_created_at": None}, "arr")["created_at"] == 2000


def test_contact_company_link() -> None:
    contact = {"type": "contact", "id": "k1", "role": "lead", "email": "a@b.example", "name": "A",
               "external_id": 70, "created_at": 5, "updated_at": 6,
               "companies": {"type": "list", "data": [{"type": "company", "id": "c7"}], "total_count": 1}}
    row = map_contact(contact)
    assert (row["role"], row["organization_id"], row["external_id"]) == ("customer", "c7", "70")
    assert map_contact({**contact, "companies": {"type": "list", "data": []}})["organization_id"] is None


# -- API version 2.16 fields (issue 11; API-NOTES 6.1) ---------------------------------------------------------
def test_aht_is_the_adjusted_handling_time_not_the_wall_clock(fixtures_dir: Path) -> None:
    """OAS 2.16 ``conversation_statistics``: ``handling_time`` is "time from conversation assignment to
    conversation close" (wall clock); ``adjusted_handling_time`` is the active time. Only the latter is effort."""
    conv = load(fixtures_dir, "intercom_conversation_with_user_reply_part.json")
    conv.update(state="closed", open=False, statistics={"handling_time": 86400, "adjusted_handling_time": 1800,
                                                        "last_close_at": conv["updated_at"]})
    [entry] = map_conversation(conv)[0]["time_entries"]
    assert entry["seconds"] == 1800
    conv["statistics"] = {"handling_time": 86400, "adjusted_handling_time": None}  # 2.16: nullable
    assert map_conversation(conv)[0]["time_entries"] == []
    conv["statistics"] = {"handling_time": 86400}  # a version with only the wall-clock figure: no effort
    assert map_conversation(conv)[0]["time_entries"] == []
    conv["statistics"] = {"time_to_admin_reply": 60}  # 2.11 has neither: AHT stays null
    assert map_conversation(conv)[0]["time_entries"] == []


def test_rating_is_dated_when_answered_where_the_version_says(fixtures_dir: Path) -> None:
    """``conversation_rating.created_at`` is when the rating was requested (OAS text); 2.16's ``updated_at``
    is the answer. Without it (2.11) the request time is all there is."""
    conv = load(fixtures_dir, "intercom_conversation_with_user_reply_part.json")
    conv["conversation_rating"] = {"rating": 5, "remark": "", "created_at": 1719500000, "updated_at": 1719590000,
                                   "contact": {"type": "contact", "id": "c9"},
                                   "teammate": {"type": "admin", "id": "a1"}}
    [rating] = map_conversation(conv)[0]["ratings"]
    assert rating["created_at"] == 1719590000
    assert rating["comment"] is None  # 2.11 requires a remark: "" means none
    del conv["conversation_rating"]["updated_at"]
    assert map_conversation(conv)[0]["ratings"][0]["created_at"] == 1719500000


@pytest.mark.parametrize(("priority", "stored"), [
    ("none", "not_priority"), ("None", "not_priority"), ("urgent", "urgent"), ("high", "high"), ("low", "low"),
    ("medium", "medium"), ("priority", "priority"), ("not_priority", "not_priority"), (None, None)])
def test_priority_none_is_stored_like_not_priority(fixtures_dir: Path, priority: str | None,
                                                   stored: str | None) -> None:
    """2.16's "none" (OAS 2.16 priority enum none/low/medium/high/urgent) means what 2.11's not_priority does."""
    conv = load(fixtures_dir, "intercom_conversation_with_user_reply_part.json")
    conv["priority"] = priority
    assert map_conversation(conv)[0]["tickets"][0]["priority"] == stored


def test_merged_away_conversation_is_flagged_and_the_survivor_is_not(fixtures_dir: Path) -> None:
    """OAS 2.16 ``POST /conversations/{id}/merge``: the secondary "is closed and linked to the primary"; the
    endpoint returns the primary, carrying a ``merged_primary_conversation`` part. The merged-away one
    (``merged_secondary_conversation`` part) is ``is_merged`` like Zendesk's ``closed_by_merge``."""
    conv = load(fixtures_dir, "intercom_conversation_with_user_reply_part.json")
    operator = "991267694"
    secondary = with_parts(conv, [part("1", "comment", "<p>dup</p>", 100, "user", "u1"),
                                  part("2", "merged_secondary_conversation", None, 200, "bot", operator),
                                  part("3", "close", None, 200, "bot", operator)])
    secondary.update(state="closed", open=False)
    rows, _ = map_conversation(secondary)
    assert rows["tickets"][0]["is_merged"] == 1
    assert [m["id"] for m in rows["messages"]][-1] == "1"  # the body-less merge part is no message
    primary = with_parts(conv, [part("9", "merged_primary_conversation", None, 200, "bot", operator)])
    assert map_conversation(primary)[0]["tickets"][0]["is_merged"] == 0
    assert map_conversation(conv)[0]["tickets"][0]["is_merged"] == 0
