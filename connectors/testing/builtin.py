"""The contract specs of the built-in helpdesks (their plugins name them: ``contract="...:ZENDESK"``).

What differs between the three for the contract suite: page sizes, the requests of a quiet run, which
world tickets and messages each API renders, and the simulator hooks a vendor lacks.
"""

from __future__ import annotations

from typing import Any

from connectors.sim.freshdesk.render import conversations as freshdesk_conversations
from connectors.sim.model import Message, Ticket
from connectors.testing.kit import ContractSpec


def _freshdesk_messages(sim: Any, t: Ticket) -> int:
    """Description (from the listing's ``include=description``) + rendered conversations; the trash and spam
    listings carry no description and their conversations answer 404, so nothing is expected for them."""
    if t.deleted or t.spam or not t.messages:
        return 0
    return 1 + len(freshdesk_conversations(sim.world, t))


def _intercom_messages(sim: Any, t: Ticket) -> int:
    return sum(1 for m in t.messages if m.body.strip())


def _intercom_listed(t: Ticket) -> bool:
    """Intercom serves no deleted or spam conversation and publishes no tombstones; a merged-away one it
    serves closed, with a ``merged_secondary_conversation`` part (OAS 2.16 merge: "closed and linked")."""
    return not (t.deleted or t.spam)


def _intercom_add_message(sim: Any, tid: int, body: str) -> None:
    sim.touch(tid, body=body)


def _freshdesk_add_message(sim: Any, tid: int, body: str) -> None:
    """The Freshdesk simulator has no ``add_message`` hook: append to its world and bump the ticket."""
    with sim.lock:
        ticket = sim.world.ticket(tid)
        next_id = 1 + max(m.id for t in sim.world.tickets for m in t.messages)
        ticket.messages.append(Message(next_id, ticket.requester_id, "customer", True, body, int(sim.clock())))
    sim.touch(tid)


def _zendesk_delete(sim: Any, tid: int, spam: bool) -> None:
    """The Zendesk simulator has no ``delete`` hook: mark its world's ticket and touch it. A deleted (or
    spam) ticket stays in the incremental export with ``status: deleted``."""
    with sim.lock:
        ticket = sim.world.ticket(tid)
        ticket.spam, ticket.deleted = (True, ticket.deleted) if spam else (ticket.spam, True)
    sim.touch(tid)


# quiet_run, justified: Zendesk's exports answer end_of_stream on their first page and its two lists fit one
# page of 100, so one request per stream; Freshdesk likewise (lists fit one page of 100; tickets are three
# listings: default, trash, spam; no conversation is fetched when no ticket changed); Intercom one per stream,
# except companies, refreshed at most every companies_refresh_s (6 h), so a quiet run skips them.
_V2 = "/api/v2"
ZENDESK = ContractSpec(
    "zendesk", secret="api_token", ticket_path=f"{_V2}/incremental/tickets", paging={"per_page": 10},
    quiet_run={f"GET {_V2}/{p}": 1 for p in (
        "ticket_fields.json", "groups.json", "incremental/organizations.json",
        "incremental/users/cursor.json", "incremental/tickets/cursor.json",
        "incremental/ticket_events.json", "satisfaction_ratings.json")},
    people=("people",), organizations="organizations", delete=_zendesk_delete)
FRESHDESK = ContractSpec(
    "freshdesk", secret="api_key", ticket_path=f"{_V2}/tickets", paging={},
    connector_paging={"per_page": 10},
    quiet_run={f"GET {_V2}/groups": 1, f"GET {_V2}/agents": 1, f"GET {_V2}/companies": 1,
               f"GET {_V2}/contacts": 1, f"GET {_V2}/tickets": 3,  # tickets, trash, spam
               f"GET {_V2}/surveys/satisfaction_ratings": 1, f"GET {_V2}/time_entries": 1},
    people=("contacts", "agents"), organizations="companies", messages_of=_freshdesk_messages,
    add_message=_freshdesk_add_message)
INTERCOM = ContractSpec(
    "intercom", secret="access_token", ticket_path="/conversations", paging={"per_page": 10},
    quiet_run={"GET /admins": 1, "GET /teams": 1, "POST /contacts/search": 1,
               "POST /conversations/search": 1},
    people=("contacts", "admins"), organizations="companies", messages_of=_intercom_messages,
    listed=_intercom_listed, add_message=_intercom_add_message, delete=None)
