"""Effort and cost: agent handle time from real effort data, cost per ticket, and CDI band counts.

AHT is only ever computed from ``time_entries`` (Freshdesk time entries, a Zendesk
time-tracking field or Intercom handling time, as the connectors store them):
total tracked seconds / tickets with tracked time, for tickets solved in the period.
Without effort data it is null; nothing is estimated from reply counts.

Cost: ``[costs] monthly_total`` pro-rated by days (each calendar month contributes
its share of days inside the period) / tickets created (or solved).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from config.settings import CostSettings
from kpi_engine.family import Family, Finish, collect_nothing
from kpi_engine.partials import num
from kpi_engine.periods import Period, local_date, month_buckets
from kpi_engine.stats import ratio, rounded
from kpi_engine.workspace import Workspace, sql_list

AHT_NULL_REASON = ("no effort data: needs time entries (Freshdesk time entries, a configured Zendesk "
                   "time-tracking field or Intercom handling time) for tickets solved in the period")


def collect(ws: Workspace) -> None:
    # CROSS JOIN fixes the loop order: over a long period every time entry looks its ticket up (the other
    # order scans every ticket); over a short one the tickets solved in it look their time entries up
    tables = ("time_entries x CROSS JOIN _kpi_period_facts k" if ws.wide
              else "_kpi_period_facts k CROSS JOIN time_entries x")
    for key_value, seconds, tickets in ws.rows(f"""SELECT {ws.key('k.solved_at')} AS key, SUM(x.seconds),
            COUNT(DISTINCT k.ticket_rowid) FROM {tables} ON k.source = x.source AND k.ticket_id = x.ticket_id
            WHERE {ws.during('k.solved_at')} AND x.seconds > 0 GROUP BY key"""):
        ws.parts.add(key_value, "aht_seconds", seconds or 0)
        ws.parts.add(key_value, "aht_tickets", tickets or 0)


def period_cost(costs: CostSettings, view: Period) -> float | None:
    """The configured monthly cost pro-rated over the days of ``view``: each month gives days-inside / days."""
    if costs.monthly_total is None:
        return None
    total = 0.0
    first, last = local_date(view.since, view.timezone), local_date(view.until, view.timezone)
    for b in month_buckets(view):
        m = date.fromisoformat(b.label + "-01")
        nxt = date(m.year + (m.month == 12), m.month % 12 + 1, 1)
        inside = (min(nxt, last) - max(m, first)).days
        total += costs.monthly_total * inside / (nxt - m).days
    return total


def cdi_bands(ws: Workspace, source: str | None) -> dict[str, int | None]:
    """Accounts per CDI band on the latest day in ``cdi_history`` (null when it is empty)."""
    where = f"WHERE source IN {sql_list([source])}" if source else ""
    try:
        day = ws.conn.execute(f"SELECT MAX(day) FROM cdi_history {where}").fetchone()[0]
    except Exception:  # noqa: BLE001 - a store without the analytics migration has no CDI
        day = None
    out: dict[str, int | None] = {"cdi_red": None, "cdi_yellow": None, "cdi_green": None}
    if day is None:
        return out
    extra = f"AND source IN {sql_list([source])}" if source else ""
    counts = dict(ws.conn.execute(
        f"SELECT band, COUNT(*) FROM cdi_history WHERE day = ? {extra} GROUP BY band", [day]).fetchall())
    for band in ("red", "yellow", "green"):
        out[f"cdi_{band}"] = int(counts.get(band, 0))
    return out


def finalize(part: dict[str, Any], finish: Finish) -> dict[str, Any]:
    cost = period_cost(finish.costs, finish.view) if finish.view is not None else None
    return {
        "aht_mean_s": rounded(ratio(num(part, "aht_seconds"), num(part, "aht_tickets")), 1),
        "cost_per_ticket": rounded(ratio(cost, num(part, "created"))),
        "cost_per_resolved_ticket": rounded(ratio(cost, num(part, "solved"))),
    }


def finalize_cdi(part: dict[str, Any], finish: Finish) -> dict[str, Any]:
    """The CDI band counts (:func:`cdi_bands`, read once per computation by the engine; null in breakdowns)."""
    return dict(finish.cdi or {"cdi_red": None, "cdi_yellow": None, "cdi_green": None})


FAMILY = Family("effort", collect, finalize)
#: the distress counts: from cdi_history, not from the tickets of the period (nothing to collect)
DISTRESS = Family("distress", collect_nothing, finalize_cdi, needs_tickets=False)
