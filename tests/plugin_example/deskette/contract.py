"""What the public contract kit needs to know about Deskette: its simulator has every conventional hook."""

from __future__ import annotations

from connectors.testing.kit import ContractSpec

# A quiet run: organizations and people fit one page of 100, and the tickets re-read since the bookmark
# (the lookback window) fit one page too.
CONTRACT = ContractSpec(
    "deskette", secret="api_key", ticket_path="/api/tickets", paging={"per_page": 10},
    quiet_run={"GET /api/organizations": 1, "GET /api/people": 1, "GET /api/tickets": 1},
    people=("people",), organizations="organizations")
