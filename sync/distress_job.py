"""The Customer Distress Index over the store: refresh it, and read it for one view.

Refreshing scores new customer messages (sentiment), backfills missing days of CDI history (so a trend means
something on a fresh install) and records today's snapshot in ``cdi_history``. The daemon runs it after every
sync (:mod:`sync.pipeline`), write-back before it plans (:func:`sync.writeback.ensure_fresh_cdi`), and
``deskpulse distress`` and the demo through :func:`distress_view`.
"""

from __future__ import annotations

from config.errors import UsageError
from config.settings import Settings
from kpi_engine import distress_latest
from kpi_engine.distress import CdiResult
from sync.store import Store


def refresh_cdi(store: Store, settings: Settings, now: int) -> CdiResult:
    """Score, backfill and record today's CDI over every active account of every source, and keep it as the
    latest (the report reuses it until the next sync); returns it."""
    return distress_latest.refresh(store.conn, settings=settings.distress, as_of=now, tz=settings.kpi.timezone,
                                   sla=settings.sla, customers=settings.customers)


def distress_view(store: Store, settings: Settings, *, now: int, source: str | None = None) -> CdiResult:
    """Today's CDI, refreshed; with ``source``, only the accounts with tickets there are kept.

    ``source`` only filters what is shown: the CDI is always computed (and recorded) over every active account
    of every source, so a filtered view never rewrites today's history with ranks taken among a smaller
    population, and an account's CDI is the same whichever view shows it. A source with no tickets in the store
    is a usage error naming the known ones.
    """
    if source is not None and store.scalar("SELECT 1 FROM tickets WHERE source = ? LIMIT 1", [source]) is None:
        known = [r["source"] for r in store.query("SELECT DISTINCT source FROM tickets ORDER BY source")]
        raise UsageError(f"no tickets from source '{source}' in the store (known: {', '.join(known) or 'none'})")
    result = refresh_cdi(store, settings, now)
    if source is not None:
        result.accounts = [a for a in result.accounts if source in (a.sources or [a.source])]
        result.source = source
        result.notes.append(f"Showing source '{source}' only; ranks are among all {result.active_accounts} "
                            "active accounts of every source.")
    return result
