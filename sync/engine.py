"""Incremental sync runs: pull pages from a connector's streams, commit each page with its cursor.

The contract (DESIGN.md): a page's rows and the cursor after it are written in
one SQLite transaction, so a crash at any instant leaves the store at a page
boundary and the next run resumes from the last committed cursor. Nothing else
in the engine is clever on purpose: streams own their pagination and overlap,
the store owns upserts.

No hangs (sync contract 7): the engine hands its stop event to each connector's
HTTP client, so a stop ends a Retry-After or pacing wait at once (the page being
read is not committed, the cursor stays), and it refuses a page whose cursor this
run already committed earlier: a vendor cursor going A, B, A, B would otherwise
loop forever.
"""

from __future__ import annotations

import hashlib
import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from config.errors import DeskpulseError
from config.settings import Settings
from connectors.base import Connector, Page, Stream
from connectors.errors import FatalAPIError, PaginationLoopError, Stopped
from connectors.http import counting_as
from sync.redaction import Redactor
from sync.registry import build_connector
from sync.store import Store, StoreError

log = logging.getLogger("deskpulse.sync")

SourceSettings = Any  # one of config.settings.ZendeskSource | FreshdeskSource | IntercomSource
PageHook = Callable[[str, str, Page, int], None]


@dataclass
class StreamReport:
    stream: str
    rows: int = 0
    pages: int = 0
    quarantined: int = 0
    error: str | None = None
    fatal: bool = False
    seconds: float = 0.0


@dataclass
class SourceReport:
    source: str
    kind: str
    streams: list[StreamReport] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    requests: int | None = None
    stopped: bool = False

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.streams)

    @property
    def ok(self) -> bool:
        return self.error is None and all(s.error is None for s in self.streams)


class SyncEngine:
    """Runs streams of configured sources into one store.

    ``on_page(source, stream, page, rows_so_far)`` is called after each commit (progress bars,
    and tests that simulate a crash right after a commit). ``stop`` lets the daemon ask for a
    clean stop: the running page commits, then the run ends.
    """

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        connector_factory: Callable[[SourceSettings, Settings], Connector] = build_connector,
        clock: Callable[[], float] = time.time,
        on_page: PageHook | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.connector_factory = connector_factory
        self.clock = clock
        self.on_page = on_page
        self.stop = stop or threading.Event()
        self.redactor = Redactor.from_settings(settings)

    # -- public -------------------------------------------------------------------------------------
    def sync_all(self, *, only: str | None = None, full: bool = False) -> list[SourceReport]:
        sources = [self.settings.source(only)] if only else list(self.settings.sources)
        reports = []
        for source in sources:
            if self.stop.is_set():  # listed, so a stopped run never reads as complete
                reports.append(SourceReport(source.name, source.kind, stopped=True))
                continue
            reports.append(self.sync_source(source, full=full))
        return reports

    def sync_source(self, source: SourceSettings, *, full: bool = False,
                    streams: list[str] | None = None) -> SourceReport:
        """Sync every stream of one source; a failing stream is recorded and the next one still runs."""
        started = time.monotonic()
        report = SourceReport(source.name, source.kind)
        connector = self.connector_factory(source, self.settings)
        watch_stop = getattr(getattr(connector, "http", None), "watch_stop", None)
        if callable(watch_stop):
            watch_stop(self.stop)  # every wait and request of this sync ends when a stop is asked
        try:
            for stream in connector.streams():
                if streams is not None and stream.name not in streams:
                    continue
                if self.stop.is_set():
                    report.stopped = True
                    break
                with counting_as(stream.name):  # its requests (pooled ones too) count under its name
                    stream_report = self._run_stream(source, stream, full=full)
                report.streams.append(stream_report)
                if stream_report.fatal:
                    report.error = stream_report.error
                    break
            self._resolve_author_roles(source.name)
            report.stopped = report.stopped or self.stop.is_set()
        finally:
            http = getattr(connector, "http", None)
            report.requests = getattr(http, "requests_sent", None)
            connector.close()
            report.seconds = time.monotonic() - started
        return report

    # -- internals ----------------------------------------------------------------------------------
    def _state(self, source: str, stream: str) -> dict[str, Any] | None:
        rows = self.store.query("SELECT * FROM sync_state WHERE source=? AND stream=?", [source, stream])
        return rows[0] if rows else None

    def load_cursor(self, source: str, stream: str) -> Any:
        state = self._state(source, stream)
        if not state or state.get("cursor") is None:
            return None
        return json.loads(state["cursor"])

    def _run_stream(self, source: SourceSettings, stream: Stream, *, full: bool) -> StreamReport:
        name = source.name
        report = StreamReport(stream.name)
        started = time.monotonic()
        now = int(self.clock())
        cursor = None if full else self.load_cursor(name, stream.name)
        with self.store.transaction():
            self.store.upsert("sync_state", [{"stream": stream.name, "status": "running", "last_run_at": now}],
                              source=name)
        severity_map = {k.lower(): v for k, v in self.settings.kpi.severity_map.get(source.kind, {}).items()}
        guard = CursorCycleGuard(name, stream.name, cursor)
        try:
            for page in stream.pages(cursor):
                guard.check(page)
                rows = self._commit_page(name, stream.name, page, severity_map)
                report.rows += rows
                report.pages += 1
                report.quarantined += len(page.quarantine)
                if self.on_page is not None:
                    self.on_page(name, stream.name, page, report.rows)
                if self.stop.is_set():
                    break
        except StoreError:
            raise  # the store, not this stream, is broken (disk full, corrupt): every later write would fail too
        except Stopped:
            # a stop ended a wait or a request: nothing failed; the page being read is not committed
            log.info("source %s: stream %s stopped before its next page; it resumes there", name, stream.name)
        except DeskpulseError as exc:
            report.error = self.redactor.redact(str(exc))
            # a loop ends its stream only: the source's other streams do not page through that cursor
            report.fatal = isinstance(exc, FatalAPIError) and not isinstance(exc, PaginationLoopError)
        except Exception as exc:  # noqa: BLE001 - one broken stream must not stop the others; recorded below
            report.error = self.redactor.redact(f"{type(exc).__name__}: {exc}")
            log.debug("stream %s/%s crashed", name, stream.name, exc_info=True)
        report.seconds = time.monotonic() - started
        end = int(self.clock())
        state: dict[str, Any] = {"stream": stream.name, "last_run_rows": report.rows}
        if report.error:
            state.update(status="error", last_error=report.error, last_error_at=end)
            self.store.conn.execute(
                "UPDATE sync_state SET errors_total = coalesce(errors_total, 0) + 1 WHERE source=? AND stream=?",
                [name, stream.name])
            log.error("source %s: stream %s failed: %s", name, stream.name, report.error)
        else:
            state.update(status="stopped" if self.stop.is_set() else "ok", last_success_at=end)
        with self.store.transaction():
            self.store.upsert("sync_state", [state], source=name)
        return report

    def _commit_page(self, source: str, stream: str, page: Page, severity_map: dict[str, int]) -> int:
        """Rows, quarantine and cursor of one page in one transaction: the heart of the sync contract."""
        synced_at = int(self.clock())
        rows = 0
        with self.store.transaction():
            for table, records in page.records.items():
                if not records:
                    continue
                if table == "tickets":
                    for rec in records:
                        prio = rec.get("priority")
                        rec["severity"] = severity_map.get(str(prio).lower(), 1) if prio is not None else 1
                        rec["synced_at"] = synced_at
                rows += self.store.upsert(table, records, source=source)
            for bad in page.quarantine:
                self.store.quarantine(source, bad.stream or stream, bad.record_id, self.redactor.redact(bad.error),
                                      bad.raw)
            self.store.conn.execute(
                "INSERT INTO sync_state (source, stream, cursor, rows_total, pages_total, quarantined_total) "
                "VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT(source, stream) DO UPDATE SET cursor=excluded.cursor, "
                "rows_total=coalesce(rows_total, 0)+excluded.rows_total, pages_total=coalesce(pages_total, 0)+1, "
                "quarantined_total=coalesce(quarantined_total, 0)+excluded.quarantined_total",
                [source, stream, json.dumps(page.cursor, separators=(",", ":")), rows, len(page.quarantine)],
            )
        return rows

    def _resolve_author_roles(self, source: str) -> None:
        """Messages whose author role the stream could not know (Zendesk comment events) get it from people."""
        with self.store.transaction():
            self.store.conn.execute(
                "UPDATE messages SET author_role = (SELECT CASE WHEN p.role = 'agent' THEN 'agent' ELSE 'customer' END "
                "FROM people p WHERE p.source = messages.source AND p.id = messages.author_id) "
                "WHERE source = ? AND author_role IS NULL AND EXISTS "
                "(SELECT 1 FROM people p WHERE p.source = messages.source AND p.id = messages.author_id)",
                [source],
            )


class CursorCycleGuard:
    """Refuses a page whose cursor this run already committed, unless it repeats the page just before.

    The one place that sees every stream's cursors, whatever its pagination (Zendesk cursor and time
    exports, Freshdesk listings, Intercom ``starting_after`` and scroll). Allowed: the same cursor on
    consecutive pages (a full listing keeps ``None``, a filtered one keeps its filter until its last page;
    a stream catches its own cursor that does not advance) and any cursor on the last page (``done``:
    it cannot loop, e.g. a listing that ends where the previous run ended). Refused: A, B, A. Cursors are
    kept as 16-byte digests, so memory stays flat over a long run.
    """

    def __init__(self, source: str, stream: str, start: Any) -> None:
        self.source, self.stream = source, stream
        self.seen: set[bytes] = set()
        self.last = self._digest(start)  # the stored cursor counts as "the page before" (not as seen)

    @staticmethod
    def _digest(cursor: Any) -> bytes:
        text = json.dumps(cursor, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.blake2b(text.encode(), digest_size=16).digest()

    def check(self, page: Page) -> None:
        key = self._digest(page.cursor)
        if key == self.last:
            return
        if key in self.seen and not page.done:
            raise PaginationLoopError(
                f"pagination loop on source {self.source}, stream {self.stream}: the vendor led back to a cursor "
                "already read in this run; the stream stopped there instead of looping", source=self.source)
        self.seen.add(key)
        self.last = key


@contextmanager
def stop_on_signals(stop: threading.Event,
                    signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)) -> Iterator[None]:
    """While the block runs, the given signals set ``stop`` (logged once) instead of killing the process.

    A second SIGINT interrupts as usual (Ctrl-C twice: out now). Outside the main thread signals cannot
    be handled, so the block just runs.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if not stop.is_set():
            log.warning("%s received: stopping after the page in progress (the next run resumes there)",
                        signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
