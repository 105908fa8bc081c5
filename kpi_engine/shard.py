"""One shard of a KPI computation: every family's partials for a slice of the tickets.

Why its own module: :mod:`kpi_engine.engine` runs it in-process and :mod:`kpi_engine.parallel` runs it
in worker processes (and for the shard it keeps). Both import it; neither imports the other's caller,
so the engine and its parallel runner form no import cycle.
"""

from __future__ import annotations

import sqlite3

from config.settings import CostSettings, KpiSettings, SlaSettings
from kpi_engine.partials import Parts
from kpi_engine.periods import Period
from kpi_engine.registry import FAMILIES
from kpi_engine.workspace import Shard, Workspace


def collect_parts(conn: sqlite3.Connection, *, kpi: KpiSettings, sla: SlaSettings, costs: CostSettings,
                  period: Period, sources: list[str], by: str | None, now: int, source: str | None,
                  shard: Shard | None = None, families: frozenset[str] | None = None,
                  kpis: frozenset[str] | None = None) -> Parts:
    """Every family's partials for one shard of the tickets, from the facts ``fact_store.prepare`` made current.

    With no ticket source at all only the families that need no tickets run (survey responses).
    ``families``: only these (by name; None: all), for a caller that asked for the KPIs ``kpis`` only.
    """
    ws = Workspace(conn, kpi=kpi, sla=sla, costs=costs, period=period, sources=sources, by=by, now=now, shard=shard,
                   source=source, families=families, kpis=kpis)
    try:
        if sources:
            ws.open_facts()
        for family in FAMILIES:
            if families is not None and family.name not in families:
                continue
            if sources or not family.needs_tickets:
                family.collect(ws)
    finally:
        ws.close()
    return ws.parts
