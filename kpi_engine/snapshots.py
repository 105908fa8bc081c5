"""Weekly KPI snapshots: the catalog of one ISO week, stored in ``kpi_snapshots`` for trends.

Why stored: the digest shows eight weeks of trend and the daemon refreshes the current and
the last week after every sync; recomputing eight weeks for every preview would be wasted
work. A complete week's snapshot is reused as is (the digest reads, never recomputes), and
``refresh=True`` (the daemon) recomputes and replaces it, so late-arriving data (a rating,
a reopen) still reaches the stored week.
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import timedelta
from typing import Any

from config.settings import CostSettings, KpiSettings, SlaSettings
from kpi_engine.engine import compute
from kpi_engine.periods import Period, iso_week_label, iso_week_start, local_date


def week_period(week: str, timezone: str) -> Period:
    """``YYYY-Www`` -> [Monday 00:00, next Monday 00:00) in the reporting timezone."""
    monday = iso_week_start(week)
    return Period.from_dates(monday, monday + timedelta(days=7), timezone)


def current_and_last_week(now: int, timezone: str) -> list[str]:
    """The ISO weeks the daemon keeps fresh: the one containing ``now`` and the one before."""
    today = local_date(int(now), timezone)
    return [iso_week_label(today - timedelta(days=7)), iso_week_label(today)]


def _stored(conn: sqlite3.Connection, week: str, scope: str, timezone: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT kpis FROM kpi_snapshots WHERE period = ? AND scope = ?", [week, scope]).fetchone()
    if row is None:
        return None
    return {"period": week_period(week, timezone).as_json(), "kpis": json.loads(row[0])}


def snapshot_week(conn: sqlite3.Connection, *, kpi: KpiSettings, sla: SlaSettings, costs: CostSettings,
                  week: str, source: str | None = None, now: int | None = None,
                  refresh: bool = False) -> dict[str, Any]:
    """The week's KPIs (``compute()`` shape) for scope ``source`` or ``all``.

    A stored snapshot is returned as is unless ``refresh``; otherwise the week is computed and
    stored when it is complete (or when ``refresh`` asks for it, e.g. the current week).
    Raises ValueError for a malformed week.
    """
    now = int(time.time()) if now is None else int(now)
    scope = source or "all"
    period = week_period(week, kpi.timezone)
    if not refresh:
        stored = _stored(conn, week, scope, kpi.timezone)
        if stored is not None:
            return stored
    result = compute(conn, kpi=kpi, sla=sla, costs=costs, since=period.since, until=period.until,
                     source=source, now=now)
    if refresh or period.until <= now:
        conn.execute(
            "INSERT INTO kpi_snapshots (period, scope, since, until, computed_at, kpis) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(period, scope) DO UPDATE SET since=excluded.since, until=excluded.until, "
            "computed_at=excluded.computed_at, kpis=excluded.kpis",
            [week, scope, period.since, period.until, now, json.dumps(result["kpis"])])
        if conn.in_transaction:
            conn.commit()
    return result


def load_snapshots(conn: sqlite3.Connection, weeks: list[str], scope: str = "all") -> dict[str, dict[str, Any]]:
    """Stored KPIs (the inner ``kpis`` dict) per week; weeks without a snapshot are absent."""
    if not weeks:
        return {}
    marks = ", ".join("?" * len(weeks))
    rows = conn.execute(f"SELECT period, kpis FROM kpi_snapshots WHERE scope = ? AND period IN ({marks})",
                        [scope, *weeks]).fetchall()
    return {period: json.loads(kpis) for period, kpis in rows}
