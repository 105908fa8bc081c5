"""Refreshing the stored KPI facts, with a status line on a terminal while it runs; checking a ``--source``.

Why here and not only inside ``compute()``: a full rebuild (after an upgrade or a change of the
settings the facts depend on) takes about a minute per million tickets, and a user watching a
terminal should see why ``deskpulse kpi`` or ``deskpulse sync`` is busy.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from typing import Any

from rich.console import Console

from config.errors import UsageError
from config.settings import KpiSettings, Settings
from kpi_engine import fact_store
from kpi_engine.workspace import list_sources
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


def check_source(conn: Any, settings: Settings, source: str | None) -> None:
    """A ``--source`` that names neither a configured source nor one with data in the store: a usage error
    listing the known ones (``deskpulse kpi`` and ``deskpulse report`` filter by it)."""
    if source is None:
        return
    known = {s.name for s in settings.sources} | set(list_sources(conn))
    known |= {r[0] for r in conn.execute("SELECT DISTINCT source FROM ratings").fetchall()}
    if source not in known:
        raise UsageError(f"unknown source '{source}' (known: {', '.join(sorted(known)) or 'none'})")
