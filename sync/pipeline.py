"""The daemon's job bodies: sync a source, refresh derived data, post the digest.

Each step opens its own store connection (jobs run on the scheduler's worker
thread) and turns failures into log lines and a ``False``/exception the
scheduler records, never a dead daemon.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from config.errors import DeskpulseError
from config.settings import Settings
from connectors.errors import Stopped
from sync.engine import SyncEngine
from sync.store import Store

log = logging.getLogger("deskpulse.pipeline")


def refresh_cdi(store: Store, settings: Settings, now: int) -> None:
    """Score new messages, backfill and record today's CDI in ``cdi_history``: what write-back acts on.

    The daemon runs it after every sync; ``deskpulse writeback`` runs it when the stored CDI predates the
    newest sync (``sync.writeback.ensure_fresh_cdi``).
    """
    from kpi_engine import distress

    distress.refresh(store.conn, settings=settings.distress, as_of=now, tz=settings.kpi.timezone, sla=settings.sla,
                     customers=settings.customers)


class Pipeline:
    def __init__(self, settings: Settings, db_path: Path, *, stop: threading.Event | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.db_path = db_path
        self.stop = stop or threading.Event()
        self.clock = clock

    def sync(self, source: str) -> bool:
        """One incremental sync of one source; True when every stream succeeded."""
        with Store(self.db_path) as store:
            engine = SyncEngine(store, self.settings, stop=self.stop, clock=self.clock)
            report = engine.sync_source(self.settings.source(source))
        log.info("source %s: %d rows in %.1fs%s", source, report.rows, report.seconds,
                 "" if report.ok else " (with errors)")
        return report.ok

    def refresh(self, *, writeback: bool) -> int:
        """KPI snapshot of the current and last week, sentiment + CDI for today, then (if enabled) write-back.

        Returns how many writes failed (``daemon --once`` exits 1 on any).
        """
        from kpi_engine import snapshots

        now = int(self.clock())
        settings = self.settings
        with Store(self.db_path) as store:
            for week in snapshots.current_and_last_week(now, settings.kpi.timezone):
                snapshots.snapshot_week(store.conn, kpi=settings.kpi, sla=settings.sla, costs=settings.costs,
                                        week=week, now=now, refresh=True)
            refresh_cdi(store, settings, now)
            if writeback and not self.stop.is_set():
                from sync.cmd_writeback import ConnectorPool
                from sync.writeback import apply, plan

                pool = ConnectorPool(settings, stop=self.stop)
                try:
                    report = apply(store, settings, plan(store, settings, now=now, connectors=pool), pool)
                except Stopped:  # SIGTERM during a write's wait: the rest is the next run's (the outbox says so)
                    log.warning("write-back stopped; the remaining writes wait for the next run")
                    return 0
                finally:
                    pool.close()
                log.info("write-back: applied %d, gone %d, refused %d, failed %d, left by cap %d", report.applied,
                         report.gone, report.refused, report.failed, report.capped)
                return report.failed
        return 0

    def _week_report(self, store: Store, week: str) -> str | None:
        """Write ``week``'s HTML report into ``[report] dir`` before its digest goes out; the digest's link."""
        if not self.settings.report.dir:
            return None
        from sync.report_job import week_report_url, write_week_report

        try:
            write_week_report(store, self.settings, week, now=int(self.clock()))
        except (OSError, DeskpulseError) as exc:  # the digest still goes out, without a link to a missing page
            log.error("report for %s not written: %s", week, exc)
            return None
        return week_report_url(self.settings, week)

    def digest(self) -> str:
        """Post the current digest week if it is due and not posted (sync.digest_job.post_due): safe to call
        at the digest minute, on start and on every catch-up run; raises when a post fails or is unknown."""
        from sync.digest_job import post_due

        with Store(self.db_path) as store:
            try:
                outcome = post_due(store, self.settings, now=self.clock(), stop=self.stop,
                                   before_post=lambda week: self._week_report(store, week))
            except Stopped as exc:  # SIGTERM while posting: recorded (due again, or unknown), not a job failure
                log.warning("digest: %s; the next run takes it up", exc)
                return "stopped"
        log.info("digest: %s", outcome)
        return outcome
