"""The daemon's schedule and resilience, with a fake pipeline (no network, little real waiting)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from config.settings import Settings
from sync.daemon import Daemon, DaemonLockedError, StoreLock, digest_trigger
from sync.store import Store


def make_settings(tmp_path: Path, **schedule) -> Settings:
    return Settings(
        store={"path": tmp_path / "d.db"},
        sources=[{"name": n, "kind": "zendesk", "base_url": "http://127.0.0.1:9", "email": "e@x.test",
                  "api_token": "t-123456"} for n in ("a", "b")],
        kpi={"timezone": "Europe/Berlin"},
        schedule={"sync_every": "1s", "digest": "mon 09:00", **schedule},
    )


class FakePipeline:
    def __init__(self, fail: set[str] = frozenset(), delay: float = 0.0, ok: bool = True) -> None:
        self.fail, self.delay, self.ok = fail, delay, ok
        self.calls: list[str] = []
        self.running = 0
        self.max_running = 0
        self.lock = threading.Lock()
        self.refreshes = 0
        self.digests = 0

    def sync(self, source: str) -> bool:
        with self.lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            self.calls.append(source)
        try:
            time.sleep(self.delay)
            if source in self.fail:
                raise RuntimeError(f"boom in {source}")
            return self.ok
        finally:
            with self.lock:
                self.running -= 1

    def refresh(self, writeback: bool) -> None:
        self.refreshes += 1

    def digest(self) -> None:
        self.digests += 1


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_digest_fires_at_local_time_across_dst(tmp_path: Path) -> None:
    trigger = digest_trigger(make_settings(tmp_path))
    # Berlin switches to summer time on Sunday 2026-03-29 and back on Sunday 2026-10-25.
    before = trigger.get_next_fire_time(None, utc(2026, 3, 20))
    after = trigger.get_next_fire_time(None, utc(2026, 3, 24))
    autumn = trigger.get_next_fire_time(None, utc(2026, 10, 27))
    assert before.astimezone(UTC) == utc(2026, 3, 23, 8)  # 09:00 CET = 08:00 UTC
    assert after.astimezone(UTC) == utc(2026, 3, 30, 7)  # 09:00 CEST = 07:00 UTC
    assert autumn.astimezone(UTC) == utc(2026, 11, 2, 8)
    assert all(t.hour == 9 and t.weekday() == 0 for t in (before, after, autumn))


def test_jobs_have_stable_ids_and_reliability_options(tmp_path: Path) -> None:
    d = Daemon(make_settings(tmp_path), tmp_path / "d.db", pipeline=FakePipeline())
    d.add_jobs(first_run_now=False)
    d.scheduler.start(paused=True)
    try:
        jobs = {j.id: j for j in d.scheduler.get_jobs()}
        assert set(jobs) == {"sync:a", "sync:b", "digest"}
        for job in jobs.values():
            assert job.coalesce is True and job.max_instances == 1 and job.misfire_grace_time == 600
    finally:
        d.scheduler.shutdown(wait=False)


def test_failing_job_never_stops_the_others_and_runs_never_overlap(tmp_path: Path) -> None:
    Store(tmp_path / "d.db").close()
    pipe = FakePipeline(fail={"a"}, delay=0.3)
    d = Daemon(make_settings(tmp_path), tmp_path / "d.db", pipeline=pipe)
    d.add_jobs()
    d.scheduler.start()
    try:
        time.sleep(2.6)
    finally:
        d.scheduler.shutdown(wait=True)
    assert pipe.calls.count("b") >= 2 and pipe.calls.count("a") >= 2
    assert pipe.max_running == 1
    with Store(tmp_path / "d.db") as store:
        err = store.scalar("SELECT value FROM meta WHERE key = 'job_error:sync:a'")
    assert err is not None and "boom in a" in err


def test_a_failing_source_backs_off_exponentially_and_recovers(tmp_path: Path) -> None:
    Store(tmp_path / "d.db").close()
    now = [1_000_000.0]
    pipe = FakePipeline(ok=False)
    d = Daemon(make_settings(tmp_path, sync_every="10m"), tmp_path / "d.db", pipeline=pipe, clock=lambda: now[0])
    d.sync_job("a")
    assert d.backoff_until["a"] == now[0]  # first failure: try again at the next tick
    d.sync_job("a")
    assert d.backoff_until["a"] == now[0] + 600
    d.sync_job("a")  # inside the back-off window: skipped
    assert pipe.calls.count("a") == 2
    now[0] += 601
    d.sync_job("a")
    assert d.failures["a"] == 3 and d.backoff_until["a"] == now[0] + 1200
    pipe.ok = True
    now[0] += 1201
    d.sync_job("a")
    assert "a" not in d.failures and pipe.refreshes == 4


def test_one_daemon_per_store(tmp_path: Path) -> None:
    first = StoreLock(tmp_path / "d.db")
    first.acquire()
    try:
        with pytest.raises(DaemonLockedError) as info:
            StoreLock(tmp_path / "d.db").acquire()
        assert info.value.exit_code == 2 and "already running" in str(info.value)
    finally:
        first.release()
    again = StoreLock(tmp_path / "d.db")
    again.acquire()
    again.release()


def test_status_shows_next_runs(tmp_path: Path) -> None:
    from sync.cli.context import AppContext
    from sync.cli.status import status_data

    Store(tmp_path / "d.db").close()
    d = Daemon(make_settings(tmp_path, sync_every="15m"), tmp_path / "d.db", pipeline=FakePipeline())
    d.add_jobs(first_run_now=False)
    d.scheduler.start(paused=True)
    try:
        d.record_jobs()
    finally:
        d.scheduler.shutdown(wait=False)
    jobs = {j["id"]: j for j in status_data(AppContext(db_path=tmp_path / "d.db"))["jobs"]}
    assert set(jobs) == {"sync:a", "sync:b", "digest"} and jobs["digest"]["next_run"]
