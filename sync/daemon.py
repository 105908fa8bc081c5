"""The daemon: sync, refresh KPIs and distress, write back, and post the digest on a schedule.

``deskpulse daemon`` (:mod:`sync.cli.daemon`) runs it; this module never imports the CLI.

APScheduler 3.x with every reliability option explicit (STYLE.md #9): stable
job ids, ``coalesce=True``, ``max_instances=1``, a misfire grace time, and a
single worker thread so two jobs never write the store at once. A failing job
is logged and recorded, never fatal; a source that keeps failing backs off
exponentially and says so in ``deskpulse status``. SIGTERM, SIGHUP and SIGINT
set a stop event that the sync's HTTP client watches: a Retry-After, back-off or
pacing wait and a request in flight end at once, the page being read is not
committed (a page already being committed finishes), and the daemon exits 0.
"""

from __future__ import annotations

import fcntl
import functools
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from config.errors import DeskpulseError
from config.settings import Settings
from sync.store import Store

log = logging.getLogger("deskpulse.daemon")
DAYS = {"mon": "mon", "tue": "tue", "wed": "wed", "thu": "thu", "fri": "fri", "sat": "sat", "sun": "sun"}
MAX_BACKOFF_S = 6 * 3600
# SIGHUP too: a closed terminal or a supervisor's stop must not kill the daemon mid-page by default action
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class DaemonLockedError(DeskpulseError):
    """Another daemon already runs on this store."""

    exit_code = 2


class StoreLock:
    """An exclusive ``flock`` next to the database: one daemon per store, released by the OS on any exit.

    The lock file sits beside the *resolved* database path: a second daemon reaching the same file through a
    symlink (of the file or of a folder above it) or a relative path must find the same lock.
    """

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.path = Path(f"{Path(db_path).resolve()}.daemon.lock")
        self.fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise DaemonLockedError(
                f"another deskpulse daemon (pid {holder}) is already running on {self.db_path}; "
                "stop it first or use another --db") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def digest_trigger(settings: Settings) -> CronTrigger:
    """The weekly digest time, in the reporting timezone (DST handled by the trigger's zone)."""
    day, hhmm = settings.schedule.digest.split()
    hour, minute = (int(x) for x in hhmm.split(":"))
    return CronTrigger(day_of_week=DAYS[day], hour=hour, minute=minute, timezone=settings.kpi.timezone)


class Daemon:
    """Owns the scheduler and the job bodies; job bodies come from :mod:`sync.pipeline`."""

    def __init__(self, settings: Settings, db_path: Path, *, pipeline: Any = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.db_path = db_path
        self.stop = threading.Event()
        self.clock = clock
        if pipeline is None:
            from sync.pipeline import Pipeline

            pipeline = Pipeline(settings, db_path, stop=self.stop)
        self.pipeline = pipeline
        self.jobs_changed = threading.Event()  # jobs never call scheduler.get_jobs(): it deadlocks at shutdown
        self.failures: dict[str, int] = {}
        self.backoff_until: dict[str, float] = {}
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "max_instances": 1,
                          "misfire_grace_time": settings.schedule.misfire_grace_s},
            timezone=settings.kpi.timezone,
        )
        self.scheduler.add_listener(self._on_event, EVENT_JOB_ERROR | EVENT_JOB_EXECUTED | EVENT_JOB_MISSED)

    # -- jobs ---------------------------------------------------------------------------------------
    def add_jobs(self, *, first_run_now: bool = True) -> None:
        every = self.settings.schedule.sync_every_s
        now = datetime.fromtimestamp(self.clock(), UTC)
        for source in self.settings.sources:
            self.scheduler.add_job(self.sync_job, IntervalTrigger(seconds=every, timezone=UTC), args=[source.name],
                                   id=f"sync:{source.name}", name=f"sync {source.name}", replace_existing=True,
                                   next_run_time=now if first_run_now else None)
        self.scheduler.add_job(self.digest_job, digest_trigger(self.settings), id="digest", name="weekly digest",
                               replace_existing=True)

    def sync_job(self, source: str) -> None:
        """Sync one source, then refresh KPIs/distress and (if enabled) write back. Backs off on failure."""
        if self.stop.is_set():
            return
        if self.clock() < self.backoff_until.get(source, 0):
            log.info("source %s: backing off after %d failures, skipping this run", source,
                     self.failures.get(source, 0))
            return
        ok = self.pipeline.sync(source)
        if ok:
            self.failures.pop(source, None)
            self.backoff_until.pop(source, None)
        else:
            n = self.failures.get(source, 0) + 1
            self.failures[source] = n
            delay = min(self.settings.schedule.sync_every_s * 2 ** (n - 2), MAX_BACKOFF_S) if n > 1 else 0
            self.backoff_until[source] = self.clock() + delay
            if delay:
                log.warning("source %s failed %d times in a row; next attempt in %ds", source, n, delay)
        if not self.stop.is_set():
            self.pipeline.refresh(writeback=self.settings.writeback.enabled)
        self.jobs_changed.set()

    def digest_job(self) -> None:
        """The digest at its minute, and the catch-up on start and every sync interval: the current digest
        week is posted when due and not yet posted (a daemon down or busy at the digest minute still posts
        it; a failed post is retried with back-off); otherwise a no-op. Exactly-once is the outbox claim's job
        (sync.digest_job), so running this often, or next to an operator's post, never posts twice."""
        if not self.stop.is_set():
            self.pipeline.digest()
        self.jobs_changed.set()

    def add_digest_catchup(self) -> None:
        """Start-up hook: the digest job once right after the first syncs (queued behind them on the single
        worker, so it reads fresh data), then every sync interval (at least a minute)."""
        start = datetime.now(UTC) + timedelta(seconds=1)  # the scheduler's own (wall) clock
        self.scheduler.add_job(self.digest_job, IntervalTrigger(seconds=max(self.settings.schedule.sync_every_s, 60),
                                                                timezone=UTC),
                               id="digest-catchup", name="digest catch-up", replace_existing=True,
                               next_run_time=start)

    def run_once(self) -> list[str]:
        """``daemon --once``: every job once, in the scheduled order; returns the ids of the jobs that failed.

        Each source's sync, then one refresh (KPI snapshot, sentiment + distress, write-back when enabled),
        then the digest job, which posts the current digest week when it is due and not posted yet (the same
        catch-up the daemon runs; without a Slack destination it does nothing). A job that fails is logged and
        recorded (meta ``job_error:<id>``) like a scheduled one, and the next job still runs: the caller exits 1
        when this list is not empty. A digest left "not posted" (backing off after a failed post, an unknown
        outcome to resolve, another process posting it) counts as failed, as it does for ``digest --post``.
        """
        failed: list[str] = []
        jobs: list[tuple[str, Callable[[], object]]] = [
            (f"sync:{s.name}", functools.partial(self.pipeline.sync, s.name)) for s in self.settings.sources]
        jobs.append(("refresh", lambda: self.pipeline.refresh(writeback=self.settings.writeback.enabled)))
        jobs.append(("digest", self.pipeline.digest))
        for job_id, body in jobs:
            if self.stop.is_set():
                log.warning("stop requested: job %s and the rest not run", job_id)
                break
            try:
                result = body()
            except Exception as exc:  # noqa: BLE001 - one failed job must not skip the others
                log.error("job %s failed: %s: %s", job_id, type(exc).__name__, exc)
                self._record_meta(f"job_error:{job_id}", {"at": int(self.clock()),
                                                          "error": f"{type(exc).__name__}: {exc}"[:500]})
                failed.append(job_id)
                continue
            # sync answers False when a stream failed; refresh how many writes failed; digest its outcome
            if result is False:
                log.error("job %s failed (see the stream errors above)", job_id)
            elif job_id == "refresh" and isinstance(result, int) and result > 0:
                log.error("job refresh failed: %d write(s) failed", result)
            elif job_id == "digest" and isinstance(result, str) and result.startswith("not posted"):
                log.error("job digest failed: %s", result)
            else:
                continue
            failed.append(job_id)
        return failed

    # -- bookkeeping --------------------------------------------------------------------------------
    def _on_event(self, event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_ERROR:
            log.error("job %s failed: %s: %s", event.job_id, type(event.exception).__name__, event.exception)
            self._record_meta(f"job_error:{event.job_id}",
                              {"at": int(self.clock()), "error": f"{type(event.exception).__name__}: "
                                                                 f"{event.exception}"[:500]})
        elif event.code == EVENT_JOB_MISSED:
            log.warning("job %s missed its run time (coalesced)", event.job_id)

    def _record_meta(self, key: str, value: Any) -> None:
        with Store(self.db_path) as store, store.transaction():
            store.conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                               "SET value = excluded.value", [key, json.dumps(value)])

    def record_jobs(self) -> None:
        """What ``deskpulse status`` shows as the next run of every job."""
        jobs = []
        for job in self.scheduler.get_jobs():
            nxt = getattr(job, "next_run_time", None)
            entry = {"id": job.id, "next_run": nxt.isoformat() if nxt else None}
            source = job.id.removeprefix("sync:") if job.id.startswith("sync:") else None
            if source and self.failures.get(source):
                entry["failures"] = self.failures[source]
                entry["backoff_until"] = datetime.fromtimestamp(self.backoff_until[source], UTC).isoformat()
            jobs.append(entry)
        self._record_meta("daemon_jobs", jobs)

    # -- lifecycle ----------------------------------------------------------------------------------
    def request_stop(self, signum: int | None = None, _frame: object = None) -> None:
        """SIGTERM, SIGHUP or SIGINT: a wait (Retry-After, back-off, pacing) or a request in flight ends now,
        the page being read is not committed (the next run resumes from the last committed one), exit 0."""
        if not self.stop.is_set():
            what = signal.Signals(signum).name if signum is not None else "stop"
            log.warning("%s received: stopping (the sync in progress ends at once and resumes next run)", what)
        self.stop.set()

    def run(self) -> None:
        """Run until SIGTERM, SIGHUP or SIGINT. Returns once the running job has stopped."""
        lock = StoreLock(self.db_path)
        lock.acquire()
        health = None
        try:
            Store(self.db_path).close()  # migrate before the first job
            for sig in STOP_SIGNALS:
                signal.signal(sig, self.request_stop)
            self.add_jobs()
            self.add_digest_catchup()  # a week whose digest minute passed while down (or busy) is posted now
            from sync import health as health_endpoint

            health = health_endpoint.start(self)  # /metrics and /healthz on [daemon] listen
            self.scheduler.start()
            self.record_jobs()
            log.warning("daemon started: %d source(s), sync every %s, digest %s (%s)", len(self.settings.sources),
                        self.settings.schedule.sync_every, self.settings.schedule.digest, self.settings.kpi.timezone)
            while not self.stop.wait(0.5):
                if self.jobs_changed.is_set():
                    self.jobs_changed.clear()
                    self.record_jobs()
            self.scheduler.shutdown(wait=True)
            log.warning("daemon stopped")
        finally:
            if health is not None:
                health.stop()
            lock.release()
