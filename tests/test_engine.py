"""The sync engine's contract, independent of any vendor: page + cursor atomic, resumable anywhere."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings
from connectors.base import Connector, Page, Quarantined, Stream
from connectors.errors import AuthenticationError, RetriableAPIError
from sync.engine import SyncEngine
from sync.store import Store

SETTINGS = Settings(sources=[{"name": "fake", "kind": "zendesk", "base_url": "http://127.0.0.1:1",
                              "email": "e@x.test", "api_token": "tok-SECRET-123"}])
DUMP = "SELECT source, id, status, priority, severity, tags FROM tickets ORDER BY id"


class Crash(BaseException):
    """Stands for the process dying (not an Exception: nothing may catch it)."""


class NumberStream(Stream):
    """Tickets 1..n in pages of `size`; cursor = last id committed. Optionally fails at a page."""

    name = "tickets"

    def __init__(self, n: int = 23, size: int = 5, fail_at: int | None = None, exc: Exception | None = None,
                 bad_ids: frozenset[int] = frozenset()) -> None:
        self.n, self.size, self.fail_at, self.exc, self.bad_ids = n, size, fail_at, exc, bad_ids
        self.started_from: list[Any] = []

    def pages(self, cursor: Any | None) -> Iterator[Page]:
        self.started_from.append(cursor)
        last = cursor["last_id"] if cursor else 0
        page_no = 0
        while last < self.n:
            page_no += 1
            if self.fail_at is not None and page_no == self.fail_at:
                raise self.exc or Crash()
            ids = range(last + 1, min(last + self.size, self.n) + 1)
            rows = [{"id": str(i), "status": "open", "priority": ["low", "urgent", "high", None][i % 4],
                     "tags": [f"t{i}"]} for i in ids if i not in self.bad_ids]
            bad = [Quarantined("tickets", str(i), "bad date", {"id": i}) for i in ids if i in self.bad_ids]
            last = ids[-1]
            yield Page({"tickets": rows}, {"last_id": last}, bad, done=last >= self.n)


class FakeConnector(Connector):
    kind = "zendesk"

    def __init__(self, *streams: Stream) -> None:
        self._streams = list(streams)
        self.closed = False

    def streams(self) -> list[Stream]:
        return self._streams

    def close(self) -> None:
        self.closed = True


def run(store: Store, *streams: Stream, **kw: Any):
    connector = FakeConnector(*streams)
    engine = SyncEngine(store, SETTINGS, connector_factory=lambda s, st: connector, **kw)
    report = engine.sync_source(SETTINGS.sources[0])
    assert connector.closed
    return report


def clean_store(tmp_path: Path) -> list[dict]:
    with Store(tmp_path / "clean.db") as store:
        run(store, NumberStream())
        return store.query(DUMP)


@pytest.mark.parametrize("crash_after", range(1, 6))
def test_crash_after_any_page_then_resume_equals_clean_run(tmp_path: Path, crash_after: int) -> None:
    expected = clean_store(tmp_path)

    def die(source: str, stream: str, page: Page, rows: int) -> None:
        if page.cursor["last_id"] >= min(crash_after * 5, 23):
            raise Crash()

    with Store(tmp_path / "s.db") as store, pytest.raises(Crash):
        run(store, NumberStream(), on_page=die)
    with Store(tmp_path / "s.db") as store:  # a new process
        stream = NumberStream()
        run(store, stream)
        assert stream.started_from == [{"last_id": min(crash_after * 5, 23)}]
        assert store.query(DUMP) == expected


def test_crash_inside_a_page_commit_rolls_back_rows_and_cursor(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    expected = clean_store(tmp_path)
    with Store(tmp_path / "s.db") as store:
        real = store.upsert
        calls = {"n": 0}

        def flaky(table: str, rows, **kw):
            if table == "tickets":
                calls["n"] += 1
                if calls["n"] == 3:
                    real(table, rows, **kw)  # rows written, then the process dies before the cursor
                    raise Crash()
            return real(table, rows, **kw)

        monkeypatch.setattr(store, "upsert", flaky)
        with pytest.raises(Crash):
            run(store, NumberStream())
        assert store.scalar("SELECT count(*) FROM tickets") == 10  # pages 1-2 only
        assert '"last_id":10' in store.scalar("SELECT cursor FROM sync_state")
        monkeypatch.setattr(store, "upsert", real)
        run(store, NumberStream())
        assert store.query(DUMP) == expected


def test_second_run_resumes_from_stored_cursor_and_full_ignores_it(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        run(store, NumberStream())
        stream = NumberStream()
        report = run(store, stream)
        assert stream.started_from == [{"last_id": 23}] and report.rows == 0
        engine = SyncEngine(store, SETTINGS, connector_factory=lambda s, st: FakeConnector(full_stream))
        full_stream = NumberStream()
        engine.sync_source(SETTINGS.sources[0], full=True)
        assert full_stream.started_from == [None]


def test_severity_from_configured_map_and_source_column(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        run(store, NumberStream(n=4, size=4))
        rows = {r["id"]: r for r in store.query(DUMP)}
        # i % 4: 1 urgent, 2 high, 3 None, 4 -> 0 low  (Zendesk map: urgent 3, high 2, low 1, none 1)
        assert [rows[i]["severity"] for i in "1234"] == [3, 2, 1, 1]
        assert {r["source"] for r in rows.values()} == {"fake"}


def test_quarantined_records_are_kept_and_the_page_goes_on(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        report = run(store, NumberStream(bad_ids=frozenset({3, 12})))
        assert store.scalar("SELECT count(*) FROM tickets") == 21
        assert {r["record_id"] for r in store.query("SELECT record_id FROM quarantine")} == {"3", "12"}
        assert report.streams[0].quarantined == 2
        assert store.scalar("SELECT quarantined_total FROM sync_state") == 2


class OtherStream(NumberStream):
    name = "users"


def test_failing_stream_is_recorded_and_next_stream_still_runs(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        report = run(store, NumberStream(fail_at=2, exc=RetriableAPIError("source fake: HTTP 503 on GET /x",
                                                                          status=503)),
                     OtherStream(n=3))
        assert [s.error is None for s in report.streams] == [False, True]
        state = {r["stream"]: r for r in store.query("SELECT * FROM sync_state")}
        assert state["tickets"]["status"] == "error" and "503" in state["tickets"]["last_error"]
        assert state["tickets"]["errors_total"] == 1 and state["users"]["status"] == "ok"
        assert store.scalar("SELECT count(*) FROM tickets") == 5 + 3 - 3  # page 1 kept (users stream reuses ids)


def test_fatal_error_stops_the_source_and_is_redacted(tmp_path: Path) -> None:
    exc = AuthenticationError("authentication failed for source fake (HTTP 401 on /api/v2/x) tok-SECRET-123",
                              status=401)
    with Store(tmp_path / "s.db") as store:
        report = run(store, NumberStream(fail_at=1, exc=exc), OtherStream(n=3))
        assert len(report.streams) == 1 and report.error is not None
        assert "tok-SECRET-123" not in report.error
        dump = "\n".join(str(r) for r in store.query("SELECT * FROM sync_state"))
        assert "tok-SECRET-123" not in dump and "authentication failed" in dump


def test_unexpected_exception_in_stream_does_not_escape(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        report = run(store, NumberStream(fail_at=1, exc=KeyError("tickets")))
        assert "KeyError" in report.streams[0].error


def test_stop_event_ends_after_the_running_page(tmp_path: Path) -> None:
    import threading

    stop = threading.Event()
    with Store(tmp_path / "s.db") as store:
        report = run(store, NumberStream(), OtherStream(), stop=stop,
                     on_page=lambda *a: stop.set())
        assert store.scalar("SELECT count(*) FROM tickets") == 5
        assert report.stopped or len(report.streams) == 1
        assert store.scalar("SELECT status FROM sync_state WHERE stream='tickets'") == "stopped"


def test_author_roles_resolved_from_people(tmp_path: Path) -> None:
    class Msgs(Stream):
        name = "events"

        def pages(self, cursor):
            yield Page({"people": [{"id": "a1", "role": "agent"}, {"id": "c1", "role": "customer"}],
                        "messages": [{"id": "m1", "ticket_id": "1", "author_id": "a1", "author_role": None},
                                     {"id": "m2", "ticket_id": "1", "author_id": "c1", "author_role": None},
                                     {"id": "m3", "ticket_id": "1", "author_id": "zz", "author_role": None},
                                     {"id": "m4", "ticket_id": "1", "author_id": "a1", "author_role": "bot"}]},
                       {"done": True})

    with Store(tmp_path / "s.db") as store:
        run(store, Msgs())
        roles = {r["id"]: r["author_role"] for r in store.query("SELECT id, author_role FROM messages")}
        assert roles == {"m1": "agent", "m2": "customer", "m3": None, "m4": "bot"}
