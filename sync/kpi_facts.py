"""Refreshing the stored KPI facts from the CLI, with a status line while it runs.

Why here and not only inside ``compute()``: a full rebuild (after an upgrade or a change of the
settings the facts depend on) takes about a minute per million tickets, and a user watching a
terminal should see why ``deskpulse kpi`` or ``deskpulse sync`` is busy.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext

from rich.console import Console

from config.settings import KpiSettings
from kpi_engine import fact_store
from sync.store import Store

logger = logging.getLogger("deskpulse.kpi")


def refresh_kpi_facts(store: Store, kpi: KpiSettings, console: Console | None, *, now: int | None = None) -> int:
    """``fact_store.refresh`` with a status line on a terminal (``console``; None in the daemon's jobs);
    returns the tickets recomputed."""
    full, dirty = fact_store.stale(store.conn, kpi)
    if not full and not dirty:
        return 0
    if full:
        tickets = store.conn.execute("SELECT COUNT(*) FROM tickets").fetchone()[0]
        what = f"building KPI facts for {tickets:,} tickets (once after an upgrade or a settings change)"
    else:
        what = f"updating KPI facts for {dirty:,} changed tickets"
    with console.status(what) if console is not None else nullcontext():
        count = fact_store.refresh(store.conn, kpi, now=now)
    if count:
        logger.info("KPI facts %s for %d tickets", "rebuilt" if full else "updated", count)
    return count
