"""The pipeline's runs: the daemon's job bodies (sync a source, refresh derived data, post the digest) and the
whole-store sync ``deskpulse sync`` and the demo run.

Each step opens its own store connection (jobs run on the scheduler's worker
thread) and turns failures into log lines and a ``False``/exception the
scheduler records, never a dead daemon.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from config.errors import DeskpulseError
from config.settings import Settings
from connectors.errors import Stopped
from sync.connector_pool import ConnectorPool
from sync.distress_job import refresh_cdi
from sync.engine import SourceReport, SyncEngine, stop_on_signals
from sync.kpi_facts import refresh_kpi_facts
from sync.store import Store

__all__ = ["Pipeline", "refresh_cdi", "sync_and_refresh"]

log = logging.getLogger("deskpulse.pipeline")
sync_log = logging.getLogger("deskpulse.sync")  # the name ``deskpulse sync``'s log lines have always carried


def sync_and_refresh(store: Store, settings: Settings, *, only: str | None = None, full: bool = False,
                     on_page: Callable[[str, str, object, int], None] | None = None,
                     console: Console | None = None) -> list[SourceReport]:
    """Sync every configured source (or ``only`` one), then bring the KPI facts up to date.

    What ``deskpulse sync`` and the demo run (the daemon syncs one source per job, :meth:`Pipeline.sync`).
    SIGTERM/SIGINT stop at once (the next run resumes from the last committed page), and a stopped run leaves
    the KPI facts to the next KPI run. A facts refresh that fails is not the sync's failure: its data is
    committed, so it is logged and left to the next KPI run. ``on_page`` and ``console`` feed a terminal's
    progress display; the pipeline prints nothing itself.
    """
    engine = SyncEngine(store, settings, on_page=on_page)
    with stop_on_signals(engine.stop):
        reports = engine.sync_all(only=only, full=full)
    try:
        if not engine.stop.is_set():
            refresh_kpi_facts(store, settings.kpi, console)
    except sqlite3.Error as exc:
        sync_log.warning("KPI facts not refreshed (%s); the next KPI run will do it", exc)
    return reports


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
