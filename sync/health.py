"""The daemon's ``/metrics`` (Prometheus text format) and ``/healthz`` endpoint.

Why most numbers are read from the store at scrape time: ``sync_state``, ``outbox``, ``meta`` and
``kpi_dirty`` already hold the truth (last success, rows, errors, what waits to be written or posted), they
survive a restart, and a second reader cannot disagree with ``deskpulse status``. :class:`StoreCollector`
opens its own read-only connection per scrape, so a scrape never writes, never takes the writer's lock, and
never shares the job thread's connection. What only this process knows (HTTP requests, 429 answers and
retries since start, job durations and outcomes) comes from in-process counters: ``connectors.http``
counts every request and retry per source and stream (the sync engine labels each stream's requests with its
name; :class:`TimedPipeline` labels the write-back's ``writeback`` and the digest's ``digest``);
:class:`TimedPipeline` times every job body.

``/healthz`` is 200 when every source succeeded within ``[daemon] healthy_within`` sync intervals and the
scheduler runs; otherwise 503 with a small JSON body naming the late or failing sources (stored errors are
already redacted; they are redacted again and cut short here, so no secret is ever served).

The server is the standard library's ``ThreadingHTTPServer`` in a daemon thread: loopback by default, at
most :data:`MAX_IN_FLIGHT` requests answered at once (more get a quick 503), a socket timeout per request,
and stopped with the daemon.
"""

from __future__ import annotations

import json
import logging
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from config.settings import Settings
from connectors.http import counting_as, http_counts
from sync.redaction import Redactor

log = logging.getLogger("deskpulse.health")

MAX_IN_FLIGHT = 8
REQUEST_TIMEOUT_S = 5.0
ERROR_CHARS = 200
#: job durations: a refresh takes seconds, a first backfill hours
DURATION_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600, 4 * 3600, float("inf"))
#: outbox kinds as the metric shows them: ``ticket`` rows are the distress write-backs
OUTBOX_KINDS = {"ticket": "writeback"}


def _iso(ts: int | float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts is not None else None


def read_only(db_path: Path) -> sqlite3.Connection:
    """A read-only connection (``mode=ro``): a scrape never writes the store, whatever it runs."""
    conn = sqlite3.connect(f"{Path(db_path).resolve().as_uri()}?mode=ro", uri=True, timeout=5.0,
                           check_same_thread=False)
    conn.execute("PRAGMA query_only=ON")
    return conn


def _rows(conn: sqlite3.Connection, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Rows of ``sql``, or none when its table does not exist yet (a store older than the feature)."""
    try:
        return conn.execute(sql, params or []).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise


# -- in-process metrics -----------------------------------------------------------------------------------
class DaemonMetrics:
    """What only the running process knows: job durations and outcomes, its start time, its scheduler."""

    def __init__(self, registry: CollectorRegistry, *, clock: Callable[[], float] = time.time) -> None:
        self.started_at = clock()
        self.durations = Histogram("deskpulse_job_duration_seconds", "How long each job body ran, by job",
                                   ["job"], registry=registry, buckets=DURATION_BUCKETS)
        self.runs = Counter("deskpulse_job_runs", "Job runs by outcome: ok, failed (a stream, write or post "
                            "failed) or error (the job raised)", ["job", "outcome"], registry=registry)
        self.missed = Counter("deskpulse_job_missed", "Scheduled runs missed (coalesced) by job", ["job"],
                              registry=registry)

    def observe(self, job: str, seconds: float, outcome: str) -> None:
        self.durations.labels(job=job).observe(seconds)
        self.runs.labels(job=job, outcome=outcome).inc()

    def on_job_event(self, event: JobExecutionEvent) -> None:
        """APScheduler listener: a missed run is visible only here (the job body never ran; the bodies that
        did run count themselves through :class:`TimedPipeline`)."""
        if event.code == EVENT_JOB_MISSED:
            self.missed.labels(job=event.job_id).inc()


class TimedPipeline:
    """Wraps the daemon's pipeline: every job body (``sync:<source>``, ``refresh``, ``digest``) is timed and
    its outcome counted; everything else is passed through unchanged.

    The HTTP requests of ``refresh`` (only its write-back talks to a helpdesk) count under the stream label
    ``writeback``, those of ``digest`` (Slack, source ``slack``) under ``digest``: no sync stream runs there to
    name them, and ``deskpulse_http_*`` should still say which job spent a helpdesk's rate limit.
    """

    def __init__(self, inner: Any, metrics: DaemonMetrics) -> None:
        self._inner = inner
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _timed(self, job: str, body: Callable[[], Any], failed: Callable[[Any], bool]) -> Any:
        started = time.monotonic()
        try:
            result = body()
        except BaseException:
            self._metrics.observe(job, time.monotonic() - started, "error")
            raise
        self._metrics.observe(job, time.monotonic() - started, "failed" if failed(result) else "ok")
        return result

    def sync(self, source: str) -> Any:
        return self._timed(f"sync:{source}", lambda: self._inner.sync(source), lambda ok: ok is False)

    def refresh(self, **kwargs: Any) -> Any:
        with counting_as("writeback"):
            return self._timed("refresh", lambda: self._inner.refresh(**kwargs),
                               lambda n: isinstance(n, int) and not isinstance(n, bool) and n > 0)

    def digest(self) -> Any:
        with counting_as("digest"):
            return self._timed("digest", self._inner.digest,
                               lambda out: isinstance(out, str) and out.startswith("not posted"))


# -- the store, read at scrape time -----------------------------------------------------------------------
class StoreCollector(Collector):
    """Metrics read from the store on every scrape (true after a restart), plus the HTTP layer's counts."""

    def __init__(self, db_path: Path, settings: Settings, health: HealthCheck) -> None:
        self.db_path = db_path
        self.settings = settings
        self.health = health

    def collect(self) -> Iterator[Metric]:
        yield from self._http()
        up = GaugeMetricFamily("deskpulse_store_readable", "1 when this scrape could read the store")
        try:
            conn = read_only(self.db_path)
        except sqlite3.Error as exc:
            log.warning("metrics: cannot open the store read-only: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        try:
            metrics = list(self._store(conn))
            metrics += list(self._health(conn))
        except sqlite3.Error as exc:
            log.warning("metrics: cannot read the store: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        finally:
            conn.close()
        up.add_metric([], 1)
        yield up
        yield from metrics

    @staticmethod
    def _http() -> Iterator[Metric]:
        counts = http_counts()
        by = ("by source and stream (writeback: the write-back; digest: the Slack digest, source slack; "
              "empty: outside any stream or job)")
        for name, key, doc in (
                ("deskpulse_http_requests", "requests", "HTTP requests sent since the daemon started, retries "
                                                        f"and redirect hops included, {by}"),
                ("deskpulse_http_throttled", "throttled", f"HTTP 429 answers since the daemon started, {by}"),
                ("deskpulse_http_retries", "retries", "HTTP retries (after a 429, 5xx or transport error) since "
                                                      f"the daemon started, {by}")):
            family = CounterMetricFamily(name, doc, labels=["source", "stream"])
            for source, stream in sorted(counts):
                family.add_metric([source, stream], counts[source, stream][key])
            yield family

    def _store(self, conn: sqlite3.Connection) -> Iterator[Metric]:
        labels = ["source", "stream"]
        success = GaugeMetricFamily("deskpulse_sync_last_success_timestamp_seconds",
                                    "When the stream last synced without error (Unix time)", labels=labels)
        error_at = GaugeMetricFamily("deskpulse_sync_last_error_timestamp_seconds",
                                     "When the stream last failed (Unix time)", labels=labels)
        failing = GaugeMetricFamily("deskpulse_sync_failing", "1 when the stream's last run failed",
                                    labels=labels)
        rows = CounterMetricFamily("deskpulse_sync_rows", "Rows written by the stream since the store was "
                                   "created", labels=labels)
        pages = CounterMetricFamily("deskpulse_sync_pages", "Pages committed by the stream", labels=labels)
        errors = CounterMetricFamily("deskpulse_sync_errors", "Failed runs of the stream", labels=labels)
        quarantined = CounterMetricFamily("deskpulse_sync_quarantined", "Records the stream could not map and "
                                          "quarantined", labels=labels)
        for (source, stream, status, last_ok, last_err, n_rows, n_pages, n_err, n_q) in _rows(
                conn, "SELECT source, stream, status, last_success_at, last_error_at, rows_total, pages_total, "
                      "errors_total, quarantined_total FROM sync_state ORDER BY source, stream"):
            key = [source, stream]
            if last_ok is not None:
                success.add_metric(key, last_ok)
            if last_err is not None:
                error_at.add_metric(key, last_err)
            failing.add_metric(key, 1 if status == "error" else 0)
            rows.add_metric(key, n_rows or 0)
            pages.add_metric(key, n_pages or 0)
            errors.add_metric(key, n_err or 0)
            quarantined.add_metric(key, n_q or 0)
        yield from (success, error_at, failing, rows, pages, errors, quarantined)

        outbox = GaugeMetricFamily("deskpulse_outbox_rows", "Outbox rows by kind (writeback, digest, "
                                   "digest-partial) and status", labels=["kind", "status"])
        for kind, status, n in _rows(conn, "SELECT kind, status, count(*) FROM outbox GROUP BY kind, status "
                                           "ORDER BY kind, status"):
            outbox.add_metric([OUTBOX_KINDS.get(kind, kind), status or ""], n)
        yield outbox

        posted = _rows(conn, "SELECT substr(key, 8), done_at FROM outbox WHERE kind = 'digest' AND status = 'done' "
                             "AND key LIKE 'digest:%' ORDER BY substr(key, 8) DESC LIMIT 1")
        info = InfoMetricFamily("deskpulse_digest_last_posted", "The ISO week of the last digest posted")
        when = GaugeMetricFamily("deskpulse_digest_last_posted_timestamp_seconds",
                                 "When the last digest week was posted (Unix time)")
        if posted:
            info.add_metric([], {"week": str(posted[0][0])})
            if posted[0][1] is not None:
                when.add_metric([], posted[0][1])
        yield info
        yield when

        dirty = _rows(conn, "SELECT count(*) FROM kpi_dirty")
        family = GaugeMetricFamily("deskpulse_kpi_dirty_tickets", "Tickets whose KPI facts wait to be refreshed")
        family.add_metric([], dirty[0][0] if dirty else 0)
        yield family

    def _health(self, conn: sqlite3.Connection) -> Iterator[Metric]:
        verdict = self.health.evaluate(conn)
        healthy = GaugeMetricFamily("deskpulse_source_healthy", "1 when the source succeeded within "
                                    "[daemon] healthy_within sync intervals (what /healthz checks)",
                                    labels=["source"])
        for name, entry in verdict["sources"].items():
            healthy.add_metric([name], 1 if entry["status"] in ("ok", "starting") else 0)
        yield healthy
        running = GaugeMetricFamily("deskpulse_scheduler_running", "1 while the scheduler and its thread run")
        running.add_metric([], 1 if verdict["scheduler"] == "running" else 0)
        yield running
        started = GaugeMetricFamily("deskpulse_daemon_start_time_seconds", "When the daemon started (Unix time)")
        started.add_metric([], self.health.started_at)
        yield started


# -- /healthz ---------------------------------------------------------------------------------------------
class HealthCheck:
    """Decides /healthz: every source succeeded recently enough, and the scheduler is alive.

    For each source, its last success is the *oldest* of its streams' last successes (a sync succeeds when
    every stream does). The source is ``ok`` when that is within ``healthy_within`` x ``sync_every``;
    ``starting`` when it is not, but the daemon started less than ``startup_grace`` ago and the source has
    not failed since (it simply has not run yet); otherwise ``failing`` when its last run failed, else
    ``late``.
    """

    def __init__(self, settings: Settings, scheduler: Any, *, started_at: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.scheduler = scheduler
        self.started_at = started_at
        self.clock = clock
        self.redactor = Redactor.from_settings(settings)
        self.window_s = settings.daemon.healthy_within * settings.schedule.sync_every_s

    def scheduler_state(self) -> str:
        thread = getattr(self.scheduler, "_thread", None)  # BackgroundScheduler's own thread (APScheduler 3.x)
        if not getattr(self.scheduler, "running", False):
            return "stopped"
        if thread is None or not thread.is_alive():
            return "thread dead"
        return "running"

    def evaluate(self, conn: sqlite3.Connection) -> dict[str, Any]:
        now = self.clock()
        streams: dict[str, list[tuple[Any, ...]]] = {}
        for row in _rows(conn, "SELECT source, stream, status, last_success_at, last_error, last_error_at "
                               "FROM sync_state"):
            streams.setdefault(row[0], []).append(row)
        in_grace = now - self.started_at <= self.settings.daemon.startup_grace_s
        sources: dict[str, dict[str, Any]] = {}
        for source in self.settings.sources:
            rows = streams.get(source.name, [])
            successes = [r[3] for r in rows]
            last_ok = min(successes) if rows and None not in successes else None
            errors = [r for r in rows if r[5] is not None and (r[3] is None or r[5] >= r[3])]
            latest_error = max(errors, key=lambda r: r[5]) if errors else None
            entry: dict[str, Any] = {"last_success": _iso(last_ok)}
            if last_ok is not None and now - last_ok <= self.window_s:
                entry["status"] = "ok"
            elif in_grace and (latest_error is None or latest_error[5] < int(self.started_at)):
                entry["status"] = "starting"
            else:
                entry["status"] = "failing" if latest_error is not None else "late"
            if latest_error is not None:
                text = self.redactor.redact(str(latest_error[4] or ""))
                entry["last_error"] = f"{latest_error[1]}: {text[:ERROR_CHARS]}"
                entry["last_error_at"] = _iso(latest_error[5])
            sources[source.name] = entry
        scheduler = self.scheduler_state()
        healthy = scheduler == "running" and all(e["status"] in ("ok", "starting") for e in sources.values())
        return {"status": "ok" if healthy else "unhealthy", "scheduler": scheduler,
                "healthy_within_s": int(self.window_s), "sources": sources}

    def check(self, db_path: Path) -> dict[str, Any]:
        try:
            conn = read_only(db_path)
        except sqlite3.Error as exc:
            return {"status": "unhealthy", "store": f"cannot read the store: {exc}"}
        try:
            return self.evaluate(conn)
        except sqlite3.Error as exc:
            return {"status": "unhealthy", "store": f"cannot read the store: {exc}"}
        finally:
            conn.close()


# -- the server -------------------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = REQUEST_TIMEOUT_S  # a client that stops sending cannot hold a thread
    server_version = "deskpulse"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        if not self.server.slots.acquire(blocking=False):
            self._send(503, "text/plain; charset=utf-8", b"busy\n")
            return
        try:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(self.server.registry))
            elif path == "/healthz":
                verdict = self.server.health.check(self.server.db_path)
                body = json.dumps(verdict, indent=1).encode() + b"\n"
                self._send(200 if verdict["status"] == "ok" else 503, "application/json", body)
            else:
                self._send(404, "text/plain; charset=utf-8", b"not found: try /metrics or /healthz\n")
        finally:
            self.server.slots.release()

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        log.debug("%s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    registry: CollectorRegistry
    health: HealthCheck
    db_path: Path
    slots: threading.BoundedSemaphore


class _Server6(_Server):
    address_family = socket.AF_INET6


class HealthServer:
    """``/metrics`` and ``/healthz`` for one daemon, served from a daemon thread until :meth:`stop`."""

    def __init__(self, server: _Server, thread: threading.Thread) -> None:
        self.server = server
        self.thread = thread

    @property
    def url(self) -> str:
        address = self.server.server_address  # typeshed allows a Unix socket's str/bytes; ours is (host, port, ...)
        assert isinstance(address, tuple), address
        host, port = str(address[0]), int(address[1])
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=REQUEST_TIMEOUT_S)


def serve(settings: Settings, db_path: Path, scheduler: Any, registry: CollectorRegistry,
          *, started_at: float, clock: Callable[[], float] = time.time) -> HealthServer | None:
    """Bind ``[daemon] listen`` and serve; None when it is ``""`` or cannot be bound.

    A port already taken is logged as an error and the daemon runs on without the endpoint: the sync is the
    daemon's job, and a supervisor's health check then reports the missing endpoint (connection refused or
    the other process's answer) instead of a crash loop. A malformed address never gets here: it is refused
    when the config loads (exit 2).
    """
    address = settings.daemon.listen_address
    if address is None:
        return None
    host, port = address
    health = HealthCheck(settings, scheduler, started_at=started_at, clock=clock)
    registry.register(StoreCollector(db_path, settings, health))
    server_cls = _Server6 if ":" in host else _Server
    try:
        server = server_cls((host, port), _Handler)
    except OSError as exc:
        log.error("[daemon] listen = \"%s\": cannot listen there (%s): no /metrics or /healthz; pick another "
                  "port, or listen = \"\" to turn them off", settings.daemon.listen, exc.strerror or exc)
        return None
    server.registry, server.health, server.db_path = registry, health, db_path
    server.slots = threading.BoundedSemaphore(MAX_IN_FLIGHT)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5},
                              name="deskpulse-health", daemon=True)
    thread.start()
    running = HealthServer(server, thread)
    log.warning("metrics on %s/metrics, health on %s/healthz", running.url, running.url)
    return running


def start(daemon: Any) -> HealthServer | None:
    """Hook for :meth:`sync.daemon.Daemon.run`: time the job bodies, count missed runs, serve the endpoint.

    Call it after the scheduler has jobs and before it starts; stop the returned server with the daemon.
    """
    if daemon.settings.daemon.listen_address is None:
        return None
    disable_created_metrics()  # no ``*_created`` series: noise for a scraper, and process-wide anyway
    registry = CollectorRegistry(auto_describe=False)
    metrics = DaemonMetrics(registry, clock=daemon.clock)
    daemon.pipeline = TimedPipeline(daemon.pipeline, metrics)
    daemon.scheduler.add_listener(metrics.on_job_event, EVENT_JOB_MISSED)
    return serve(daemon.settings, daemon.db_path, daemon.scheduler, registry, started_at=metrics.started_at,
                 clock=daemon.clock)
