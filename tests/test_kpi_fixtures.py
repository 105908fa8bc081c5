"""A tiny helpdesk builder for hand-computed KPI tests (and checks of the builder itself).

Times are given as hours after T0 (Monday 2026-03-02 00:00 UTC) so a test's arithmetic
reads in hours; :func:`h` converts.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from config.settings import CostSettings, KpiSettings, SlaSettings
from kpi_engine.engine import compute
from sync.store import Store

T0 = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp())  # a Monday
HOUR = 3600
DAY = 86400


def h(hours: float) -> int:
    return T0 + int(round(hours * HOUR))


class Desk:
    """Builds tickets, messages, events, ratings in a real Store (in memory)."""

    def __init__(self, path: Any = ":memory:") -> None:
        self.store = Store(path)
        self._ids = itertools.count(1)

    def ticket(self, tid: str, created: int, *, status: str = "open", solved: int | None = None,
               source: str = "zd", severity: int | None = 1, requester: str | None = "u1",
               org: str | None = None, assignee: str | None = "a1", group: str | None = "g1",
               channel: str | None = "email", tags: list[str] | None = None, priority: str | None = None,
               spam: int = 0, merged: int = 0, **extra: Any) -> str:
        row = {"source": source, "id": tid, "subject": f"t{tid}", "status": status, "vendor_status": status,
               "priority": priority, "severity": severity, "channel": channel, "requester_id": requester,
               "organization_id": org, "assignee_id": assignee, "group_id": group, "tags": tags or [],
               "custom_fields": {}, "created_at": created, "updated_at": solved or created, "solved_at": solved,
               "is_spam": spam, "is_merged": merged, **extra}
        self.store.upsert("tickets", [row])
        return tid

    def msg(self, tid: str, at: int, role: str | None, *, public: int = 1, kind: str = "comment",
            source: str = "zd") -> None:
        self.store.upsert("messages", [{"source": source, "id": f"m{next(self._ids)}", "ticket_id": tid,
                                        "author_id": role, "author_role": role, "public": public, "kind": kind,
                                        "body": "x", "created_at": at}])

    def desc(self, tid: str, at: int, role: str = "customer", source: str = "zd") -> None:
        self.msg(tid, at, role, kind="description", source=source)

    def event(self, tid: str, at: int, field: str, old: str | None, new: str | None, source: str = "zd") -> None:
        self.store.upsert("ticket_events", [{"source": source, "id": f"e{next(self._ids)}", "ticket_id": tid,
                                             "created_at": at, "field": field, "old_value": old,
                                             "new_value": new}])

    def status(self, tid: str, at: int, old: str | None, new: str, source: str = "zd") -> None:
        self.event(tid, at, "status", old, new, source)

    def rating(self, kind: str, at: int, *, tid: str | None = None, score_1_5: float | None = None,
               score: float | None = None, source: str = "zd", requester: str | None = None,
               assignee: str | None = None) -> None:
        self.store.upsert("ratings", [{"source": source, "id": f"r{next(self._ids)}", "ticket_id": tid,
                                       "requester_id": requester, "assignee_id": assignee, "kind": kind,
                                       "score_raw": str(score if score is not None else score_1_5),
                                       "score_1_5": score_1_5, "score": score, "created_at": at}])

    def time_entry(self, tid: str, seconds: int, at: int, source: str = "zd") -> None:
        self.store.upsert("time_entries", [{"source": source, "id": f"te{next(self._ids)}", "ticket_id": tid,
                                            "agent_id": "a1", "seconds": seconds, "created_at": at}])

    def kpis(self, since: int, until: int, *, by: str | None = None, source: str | None = None,
             now: int | None = None, kpi: KpiSettings | None = None, sla: SlaSettings | None = None,
             costs: CostSettings | None = None) -> dict[str, Any]:
        return compute(self.store.conn, kpi=kpi or KpiSettings(), sla=sla or SlaSettings(),
                       costs=costs or CostSettings(), since=since, until=until, source=source, by=by,
                       now=now if now is not None else until)


WEEKDAYS_9_17 = {d: "09:00-17:00" for d in ("mon", "tue", "wed", "thu", "fri")}


def test_builder_round_trip() -> None:
    desk = Desk()
    desk.ticket("1", h(0), status="solved", solved=h(5))
    desk.desc("1", h(0))
    desk.msg("1", h(2), "agent")
    assert desk.store.scalar("SELECT COUNT(*) FROM messages WHERE ticket_id = '1'") == 2
    assert desk.kpis(h(0), h(24))["kpis"]["tickets_created"] == 1
