"""The mappers parse every example Intercom's OpenAPI descriptions give for the endpoints the connector uses.

Each response example (2.11 and 2.16; ``tests/intercom_spec.py`` reads the files in place) of the
conversations search/retrieve/update, contacts search/retrieve, companies scroll/retrieve, admins, teams and
tags operations goes through ``connectors/intercom/mapping.py`` (or, for tags, the fields the connector reads) and
must give sane rows: the ids and timestamps of the example, normalized statuses, plain-text bodies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.intercom.mapping import (
    map_admin,
    map_company,
    map_contact,
    map_conversation,
    map_team,
    parse_list_item,
)
from tests.intercom_spec import VERSIONS, available, raw_spec

#: (path, method) -> (where the records are in the body, which checker)
OPERATIONS: dict[tuple[str, str], tuple[str | None, str]] = {
    ("/conversations/search", "post"): ("conversations", "conversation"),
    ("/conversations", "get"): ("conversations", "conversation"),
    ("/conversations/{conversation_id}", "get"): (None, "conversation"),
    ("/conversations/{conversation_id}", "put"): (None, "conversation"),
    ("/conversations/{id}/merge", "post"): (None, "conversation"),  # 2.16: a merged primary conversation
    ("/contacts/search", "post"): ("data", "contact"),
    ("/contacts/{contact_id}", "get"): (None, "contact"),
    ("/companies/scroll", "get"): ("data", "company"),
    ("/companies/{company_id}", "get"): (None, "company"),
    ("/admins", "get"): ("admins", "admin"),
    ("/teams", "get"): ("teams", "team"),
    ("/tags", "get"): ("data", "tag"),
    ("/tags", "post"): (None, "tag"),
    ("/conversations/{conversation_id}/tags", "post"): (None, "tag"),
}


def _examples() -> Iterator[Any]:
    if not available():
        return
    for version in VERSIONS:
        spec = raw_spec(version)
        for (path, method), (key, kind) in OPERATIONS.items():
            operation = spec["paths"].get(path, {}).get(method)
            if operation is None:
                continue
            content = operation["responses"].get("200", {}).get("content", {}).get("application/json", {})
            for name, example in (content.get("examples") or {}).items():
                yield pytest.param(kind, key, example["value"], id=f"{version} {method.upper()} {path} {name}")


EXAMPLES = list(_examples())


def check_conversation(conv: dict[str, Any]) -> None:
    cid, updated = parse_list_item(conv)
    rows, truncated = map_conversation(conv, organization_id="org-1", synced_at=1)
    [ticket] = rows["tickets"]
    assert (ticket["id"], ticket["updated_at"]) == (str(conv["id"]), updated) and cid == ticket["id"]
    assert isinstance(ticket["created_at"], int) and ticket["created_at"] <= ticket["updated_at"]
    assert ticket["status"] in ("open", "pending", "closed")
    assert ticket["priority"] in (None, "priority", "not_priority", "low", "medium", "high", "urgent")
    assert ticket["is_merged"] == 0  # the merge example returns the surviving primary
    assert ticket["assignee_id"] != "0" and ticket["group_id"] != "0"
    assert isinstance(ticket["custom_fields"], dict) and isinstance(ticket["tags"], list)
    for first, offset in (("first_admin_reply_at", "vendor_first_reply_s"), ("first_close_at",
                                                                             "vendor_first_resolution_s")):
        at = (conv.get("statistics") or {}).get(first)
        assert ticket[offset] == (at - ticket["created_at"] if at is not None and at >= ticket["created_at"]
                                  else None)
    parts = (conv.get("conversation_parts") or {}).get("conversation_parts") or []
    assert not truncated or len(parts) >= 500
    for message in rows["messages"]:
        assert message["ticket_id"] == ticket["id"]
        assert message["body"] and "<p>" not in message["body"]
        assert message["author_role"] in ("customer", "agent", "bot", "system")
    for event in rows["ticket_events"]:
        assert event["ticket_id"] == ticket["id"] and event["field"]
    for rating in rows["ratings"]:
        assert 1 <= rating["score_1_5"] <= 5 and isinstance(rating["created_at"], int)
    for entry in rows["time_entries"]:
        assert entry["seconds"] > 0


def check_contact(contact: dict[str, Any]) -> None:
    row = map_contact(contact)
    assert row["id"] == str(contact["id"]) and row["role"] == "customer"
    assert row["updated_at"] == contact.get("updated_at")


def check_company(company: dict[str, Any]) -> None:
    row = map_company(company, "monthly_spend")
    assert row["id"] == str(company["id"]) and row["name"] == company.get("name")
    assert row["value"] == (None if company.get("monthly_spend") is None else float(company["monthly_spend"]))
    assert row["created_at"] in (company.get("remote_created_at"), company.get("created_at"))


def check_admin(admin: dict[str, Any]) -> None:
    row = map_admin(admin)
    assert row["id"] == str(admin["id"]) and row["role"] == "agent"


def check_team(team: dict[str, Any]) -> None:
    row = map_team(team)
    assert row["id"] == str(team["id"]) and row["name"] == team.get("name")


def check_tag(tag: dict[str, Any]) -> None:
    """The connector keys tags by name and attaches them by id (``IntercomConnector._tag_id``)."""
    assert str(tag["id"]) and isinstance(tag["name"], str)


CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "conversation": check_conversation, "contact": check_contact, "company": check_company,
    "admin": check_admin, "team": check_team, "tag": check_tag,
}


@pytest.mark.skipif(not available(), reason="Intercom OpenAPI files not found (../shared/vendor-specs)")
@pytest.mark.parametrize(("kind", "key", "body"), EXAMPLES)
def test_mapper_parses_every_spec_example(kind: str, key: str | None, body: Any) -> None:
    records = body if key is None else body[key]
    records = records if isinstance(records, list) else [records]
    assert records or key is not None
    for record in records:
        CHECKS[kind](record)


@pytest.mark.skipif(not available(), reason="Intercom OpenAPI files not found (../shared/vendor-specs)")
def test_every_operation_has_examples_in_some_version() -> None:
    """The walk above is not vacuous: every operation listed contributes examples."""
    for path, method in OPERATIONS:
        assert any(f" {method.upper()} {path} " in param.id for param in EXAMPLES), (method, path)
