"""Tiny store builders for the CDI tests: tickets, messages and history written in a few lines each."""

from __future__ import annotations

import itertools
from typing import Any

from sync.store import Store

T = 1_772_366_400  # 2026-03-01 12:00:00 UTC: the tests' "now"
DAY = 86400
_ids = itertools.count(1)


def org(store: Store, oid: str, *, name: str | None = None, value: float | None = None,
        created_at: int | None = None, source: str = "zd") -> None:
    store.upsert("organizations", [{"source": source, "id": oid, "name": name or f"Org {oid}", "value": value,
                                    "created_at": created_at}])


def person(store: Store, pid: str, *, org_id: str | None = None, created_at: int | None = None,
           name: str | None = None, source: str = "zd") -> None:
    store.upsert("people", [{"source": source, "id": pid, "name": name or f"Person {pid}", "role": "customer",
                             "organization_id": org_id, "created_at": created_at}])


def ticket(store: Store, *, org_id: str | None, requester: str = "p0", created: int, status: str = "open",
           solved: int | None = None, updated: int | None = None, source: str = "zd", severity: int = 1,
           **flags: Any) -> str:
    tid = f"t{next(_ids)}"
    store.upsert("tickets", [{"source": source, "id": tid, "status": status, "organization_id": org_id,
                              "requester_id": requester, "created_at": created, "solved_at": solved,
                              "updated_at": updated if updated is not None else max(created, solved or created),
                              "severity": severity, "is_spam": flags.get("is_spam", 0),
                              "is_merged": flags.get("is_merged", 0)}])
    return tid


def message(store: Store, tid: str, body: str, at: int, *, role: str = "customer", public: int = 1,
            source: str = "zd") -> str:
    mid = f"m{next(_ids)}"
    store.upsert("messages", [{"source": source, "id": mid, "ticket_id": tid, "author_id": "x", "author_role": role,
                               "public": public, "body": body, "created_at": at}])
    return mid


def status_event(store: Store, tid: str, at: int, old: str, new: str, source: str = "zd") -> None:
    store.upsert("ticket_events", [{"source": source, "id": f"e{next(_ids)}", "ticket_id": tid, "created_at": at,
                                    "field": "status", "old_value": old, "new_value": new}])


def history(store: Store, account: str, day_cdis: dict[str, int], source: str = "zd") -> None:
    store.conn.executemany(
        "INSERT INTO cdi_history (day, account, source, cdi, band, priority, components, computed_at) "
        "VALUES (?, ?, ?, ?, 'green', 0, '{}', 0)", [(d, account, source, c) for d, c in day_cdis.items()])
