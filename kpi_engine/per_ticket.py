"""Per-ticket measurements, with exactly the catalog's definitions, for checks against vendor metrics.

The catalog aggregates; these return the per-ticket values it aggregates (computed by the
same TEMP-table SQL over all time), so a test can compare ticket by ticket with, say,
Zendesk's ``reply_time_in_minutes`` or Intercom's ``time_to_admin_reply``.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from config.settings import CostSettings, KpiSettings, SlaSettings
from kpi_engine import facts
from kpi_engine.periods import Period
from kpi_engine.workspace import Workspace, list_sources

Key = tuple[str, str]
T = TypeVar("T")


def _with_facts(conn: sqlite3.Connection, kpi: KpiSettings, source: str | None, now: int | None,
                read: Callable[[Workspace], T]) -> T:
    now = int(time.time()) if now is None else int(now)
    ws = Workspace(conn, kpi=kpi, sla=SlaSettings(), costs=CostSettings(), period=Period(0, now + 1, kpi.timezone),
                   sources=[source] if source else list_sources(conn), by=None, now=now)
    try:
        if not ws.sources:
            return cast(T, {})
        facts.build(ws)
        return read(ws)
    finally:
        ws.close()


def first_reply_times(conn: sqlite3.Connection, *, kpi: KpiSettings | None = None, source: str | None = None,
                      now: int | None = None) -> dict[Key, tuple[int, int | None]]:
    """(calendar, business) seconds from creation to the first agent reply, for replied tickets."""
    kpi = kpi or KpiSettings()

    def read(ws: Workspace) -> dict[Key, tuple[int, int | None]]:
        bus = f"MAX({ws.bexpr('bf', 'm.first_reply_at')} - k.created_at_business, 0)" if ws.business else "NULL"
        rows = ws.rows(f"""SELECT k.source, k.ticket_id, MAX(m.first_reply_at - k.created_at, 0), {bus}
            FROM _kpi_tickets k JOIN _kpi_messages m ON m.ticket_rowid = k.ticket_rowid
                {ws.bjoin('bf', 'm.first_reply_at')} WHERE m.first_reply_at IS NOT NULL""")
        return {(s, i): (cal, b) for s, i, cal, b in rows}

    return _with_facts(conn, kpi, source, now, read)


def response_times(conn: sqlite3.Connection, *, kpi: KpiSettings | None = None, source: str | None = None,
                   now: int | None = None) -> dict[Key, list[tuple[int, int | None]]]:
    """Every response of every ticket: (calendar, business) seconds, in reply order."""
    kpi = kpi or KpiSettings()

    def read(ws: Workspace) -> dict[Key, list[tuple[int, int | None]]]:
        out: dict[Key, list[tuple[int, int | None]]] = {}
        for s, i, seq in ws.rows("SELECT k.source, k.ticket_id, m.sequence FROM _kpi_tickets k "
                                 "JOIN _kpi_messages m ON m.ticket_rowid = k.ticket_rowid "
                                 "WHERE m.sequence IS NOT NULL"):
            found = facts.runs(seq, ws.business)
            if found:
                out[(s, i)] = [(max(rs - cs, 0), None if cb is None or rb is None else max(rb - cb, 0))
                               for cs, cb, rs, rb in found]
        return out

    return _with_facts(conn, kpi, source, now, read)


def resolution_facts(conn: sqlite3.Connection, *, kpi: KpiSettings | None = None, source: str | None = None,
                     now: int | None = None) -> dict[Key, dict[str, Any]]:
    """Per solved ticket: full/first resolution, reopens and time in statuses (calendar seconds)."""
    from kpi_engine.facts import FIRST_SOLVE, REOPENS

    kpi = kpi or KpiSettings()

    def read(ws: Workspace) -> dict[Key, dict[str, Any]]:
        waits = facts.wait_sql(False)
        rows = ws.rows(f"""SELECT k.source, k.ticket_id, MAX(k.solved_at - k.created_at, 0),
                MAX({FIRST_SOLVE} - k.created_at, 0), {REOPENS},
                {waits['requester']}, {waits['agent']}, {waits['on_hold']}
            FROM _kpi_tickets k LEFT JOIN _kpi_status_history e ON e.ticket_rowid = k.ticket_rowid
            WHERE k.solved_at IS NOT NULL""")
        names = ("full_resolution_s", "first_resolution_s", "reopens", "requester_wait_s", "agent_wait_s",
                 "on_hold_s")
        return {(r[0], r[1]): dict(zip(names, r[2:], strict=True)) for r in rows}

    return _with_facts(conn, kpi, source, now, read)
