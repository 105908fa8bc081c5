"""sync.health without a daemon: what /healthz decides, what the HTTP layer counts, the job timer, the server.

Time is injected (tests/fake_time.py); the store is a real SQLite file written the way the sync engine
writes ``sync_state``.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import responses
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import sync.registry  # noqa: F401 - hands the installed helpdesks' source models to config
from config.settings import Settings
from connectors.errors import AuthenticationError
from connectors.http import HttpClient, counting_as, http_counts
from sync import health
from sync.store import Store
from tests.fake_time import FakeTime

T0 = 1_800_000_000.0
TOKEN = "zd-secret-token-abcdef"


def settings(**daemon: Any) -> Settings:
    sources = [{"kind": "zendesk", "name": name, "base_url": "https://x.zendesk.com", "email": "a@b.c",
                "api_token": TOKEN} for name in ("zd", "zd2")]
    return Settings(sources=sources, schedule={"sync_every": "15m"}, daemon=daemon)


class FakeScheduler:
    def __init__(self, running: bool = True, thread: threading.Thread | None = None) -> None:
        self.running = running
        self._thread = thread if thread is not None else threading.current_thread()


def write_state(db: Path, rows: list[dict[str, Any]]) -> None:
    with Store(db) as store, store.transaction():
        for row in rows:
            store.conn.execute("INSERT INTO sync_state (source, stream, status, last_success_at, last_error, "
                               "last_error_at) VALUES (?, ?, ?, ?, ?, ?)",
                               [row["source"], row["stream"], row.get("status", "ok"), row.get("ok"),
                                row.get("error"), row.get("error_at")])


def verdict(db: Path, *, now: float, started: float, scheduler: Any = None, **daemon: Any) -> dict[str, Any]:
    time = FakeTime(now)
    check = health.HealthCheck(settings(**daemon), scheduler or FakeScheduler(), started_at=started,
                               clock=time.clock)
    return check.check(db)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "d.db"
    Store(path).close()
    return path


# -- /healthz decisions ---------------------------------------------------------------------------------------
def test_every_source_recent_is_healthy_and_the_oldest_stream_counts(db: Path) -> None:
    window = 3 * 900
    write_state(db, [{"source": "zd", "stream": "tickets", "ok": int(T0 - 60)},
                     {"source": "zd", "stream": "users", "ok": int(T0 - window + 1)},
                     {"source": "zd2", "stream": "tickets", "ok": int(T0 - 10)}])
    out = verdict(db, now=T0, started=T0 - 86400)
    assert out["status"] == "ok" and out["healthy_within_s"] == window
    assert {n: e["status"] for n, e in out["sources"].items()} == {"zd": "ok", "zd2": "ok"}
    # one stream a second past the window makes the whole source late
    out = verdict(db, now=T0 + 2, started=T0 - 86400)
    assert out["status"] == "unhealthy" and out["sources"]["zd"]["status"] == "late"
    assert out["sources"]["zd2"]["status"] == "ok"


def test_healthy_within_is_a_multiple_of_the_sync_interval(db: Path) -> None:
    write_state(db, [{"source": s, "stream": "tickets", "ok": int(T0 - 3000)} for s in ("zd", "zd2")])
    assert verdict(db, now=T0, started=T0 - 86400)["status"] == "unhealthy"  # 3 x 15 min = 2700 s < 3000 s
    assert verdict(db, now=T0, started=T0 - 86400, healthy_within=4)["status"] == "ok"


def test_a_stream_that_never_succeeded_is_late_after_the_grace(db: Path) -> None:
    write_state(db, [{"source": "zd", "stream": "tickets", "ok": int(T0 - 60)},
                     {"source": "zd", "stream": "users", "status": "running"},
                     {"source": "zd2", "stream": "tickets", "ok": int(T0 - 60)}])
    out = verdict(db, now=T0, started=T0 - 7200)
    assert out["sources"]["zd"] == {"last_success": None, "status": "late"}


def test_startup_grace_covers_sources_not_run_yet_but_not_failures_since_start(db: Path) -> None:
    write_state(db, [{"source": "zd", "stream": "tickets", "ok": int(T0 - 86400)}])  # stale: the daemon was down
    out = verdict(db, now=T0, started=T0 - 60)
    assert out["status"] == "ok"
    assert {n: e["status"] for n, e in out["sources"].items()} == {"zd": "starting", "zd2": "starting"}
    # the grace ends
    assert verdict(db, now=T0 + 3600, started=T0 - 60)["sources"]["zd2"]["status"] == "late"
    assert verdict(db, now=T0, started=T0 - 60, startup_grace="30s")["status"] == "unhealthy"
    # a failure since start is not "not run yet"
    write_state(db, [{"source": "zd2", "stream": "tickets", "status": "error", "error_at": int(T0 - 5),
                      "error": f"authentication failed for source zd2 (HTTP 401): token {TOKEN}"}])
    out = verdict(db, now=T0, started=T0 - 60)
    assert out["status"] == "unhealthy" and out["sources"]["zd"]["status"] == "starting"
    bad = out["sources"]["zd2"]
    assert bad["status"] == "failing" and bad["last_error"].startswith("tickets: authentication failed")
    assert TOKEN not in json.dumps(out)  # redacted again before it is served


def test_a_recent_success_outweighs_a_later_transient_error(db: Path) -> None:
    write_state(db, [{"source": "zd", "stream": "tickets", "status": "error", "ok": int(T0 - 600),
                      "error_at": int(T0 - 30), "error": "HTTP 503"},
                     {"source": "zd2", "stream": "tickets", "ok": int(T0 - 60)}])
    out = verdict(db, now=T0, started=T0 - 86400)
    assert out["status"] == "ok"
    assert out["sources"]["zd"]["status"] == "ok" and out["sources"]["zd"]["last_error"] == "tickets: HTTP 503"


@pytest.mark.parametrize(("scheduler", "state"), [
    (FakeScheduler(running=False), "stopped"),
    (FakeScheduler(thread=threading.Thread(target=lambda: None)), "thread dead"),  # never started: not alive
])
def test_a_dead_scheduler_is_unhealthy_even_with_fresh_sources(db: Path, scheduler: Any, state: str) -> None:
    write_state(db, [{"source": s, "stream": "tickets", "ok": int(T0 - 60)} for s in ("zd", "zd2")])
    out = verdict(db, now=T0, started=T0 - 86400, scheduler=scheduler)
    assert out["status"] == "unhealthy" and out["scheduler"] == state


def test_an_unreadable_store_is_unhealthy(tmp_path: Path) -> None:
    out = verdict(tmp_path / "missing.db", now=T0, started=T0)
    assert out["status"] == "unhealthy" and "cannot read the store" in out["store"]
    assert not (tmp_path / "missing.db").exists()  # read-only: never created


# -- the HTTP layer's counts ----------------------------------------------------------------------------------
def test_the_http_client_counts_requests_429s_and_retries_per_source_and_stream() -> None:
    time = FakeTime(T0)
    url = "https://count.example.com/api/v2/tickets.json"
    before = http_counts().get(("counted", "tickets"), {"requests": 0, "throttled": 0, "retries": 0})
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, url, status=429, headers={"Retry-After": "2"})
        mock.add(responses.GET, url, status=503)
        mock.add(responses.GET, url, json={"ok": True})
        mock.add(responses.GET, url, status=401)
        client = HttpClient(source="counted", base_url="https://count.example.com", sleep=time.sleep,
                            clock=time.clock)
        with counting_as("tickets"):
            assert client.get_json("/api/v2/tickets.json") == {"ok": True}
            with pytest.raises(AuthenticationError):
                client.get_json("/api/v2/tickets.json")
    after = http_counts()[("counted", "tickets")]
    assert {k: after[k] - before[k] for k in after} == {"requests": 4, "throttled": 1, "retries": 2}


# -- job timing -------------------------------------------------------------------------------------------------
class FakePipeline:
    marker = "passed through"

    def __init__(self) -> None:
        self.sync_ok = True

    def sync(self, source: str) -> bool:
        if source == "boom":
            raise RuntimeError("boom")
        return self.sync_ok

    def refresh(self, *, writeback: bool) -> int:
        return 2 if writeback else 0

    def digest(self) -> str:
        return "not posted: backing off"


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_timed_pipeline_counts_each_job_by_outcome_and_times_it() -> None:
    registry = CollectorRegistry()
    timed = health.TimedPipeline(FakePipeline(), health.DaemonMetrics(registry))
    assert timed.sync("zd") is True
    timed._inner.sync_ok = False
    assert timed.sync("zd") is False
    with pytest.raises(RuntimeError):
        timed.sync("boom")
    assert timed.refresh(writeback=False) == 0 and timed.refresh(writeback=True) == 2
    assert timed.digest().startswith("not posted")
    assert timed.marker == "passed through"
    got = samples(registry)
    runs = {labels: v for (name, labels), v in got.items() if name == "deskpulse_job_runs_total"}
    assert runs == {(("job", "sync:zd"), ("outcome", "ok")): 1, (("job", "sync:zd"), ("outcome", "failed")): 1,
                    (("job", "sync:boom"), ("outcome", "error")): 1, (("job", "refresh"), ("outcome", "ok")): 1,
                    (("job", "refresh"), ("outcome", "failed")): 1, (("job", "digest"), ("outcome", "failed")): 1}
    assert got[("deskpulse_job_duration_seconds_count", (("job", "sync:zd"),))] == 2


# -- the server ---------------------------------------------------------------------------------------------------
def test_the_server_serves_both_and_a_taken_port_is_logged_not_fatal(db: Path, caplog: pytest.LogCaptureFixture
                                                                      ) -> None:
    write_state(db, [{"source": s, "stream": "tickets", "ok": int(T0 - 60)} for s in ("zd", "zd2")])
    time = FakeTime(T0)
    server = health.serve(settings(listen="127.0.0.1:0"), db, FakeScheduler(), CollectorRegistry(),
                          started_at=T0 - 86400, clock=time.clock)
    assert server is not None
    try:
        with urllib.request.urlopen(server.url + "/healthz", timeout=5) as resp:
            assert resp.status == 200 and json.loads(resp.read())["status"] == "ok"
        with urllib.request.urlopen(server.url + "/metrics", timeout=5) as resp:
            text = resp.read().decode()
        names = {f.name for f in text_string_to_metric_families(text)}
        assert {"deskpulse_sync_last_success_timestamp_seconds", "deskpulse_source_healthy",
                "deskpulse_kpi_dirty_tickets", "deskpulse_outbox_rows"} <= names
        port = int(server.url.rsplit(":", 1)[1])
        with caplog.at_level(logging.ERROR, logger="deskpulse.health"):
            second = health.serve(settings(listen=f"127.0.0.1:{port}"), db, FakeScheduler(), CollectorRegistry(),
                                  started_at=T0)
        assert second is None
        assert "cannot listen there" in caplog.text and f"127.0.0.1:{port}" in caplog.text
    finally:
        server.stop()
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):  # stopped: nobody listens any more
        probe.connect(("127.0.0.1", port))


def test_listen_empty_serves_nothing(db: Path) -> None:
    assert health.serve(settings(listen=""), db, FakeScheduler(), CollectorRegistry(), started_at=T0) is None


# -- the container's and systemd's checks -----------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]


def test_the_dockerfile_healthcheck_passes_on_200_and_fails_on_503(db: Path) -> None:
    """The HEALTHCHECK's own python one-liner, pointed at a test server (same command, only the port changed)."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    found = re.search(r'HEALTHCHECK .*?CMD \["python", "-c", "(.*?)"\]', dockerfile, re.S)
    assert found, "no HEALTHCHECK running python -c in the Dockerfile"
    code = found.group(1)
    default_port = Settings().daemon.listen_address[1]
    assert f"http://127.0.0.1:{default_port}/healthz" in code  # it checks where the daemon listens by default
    write_state(db, [{"source": "zd", "stream": "tickets", "ok": int(T0 - 60)}])
    time = FakeTime(T0)
    server = health.serve(settings(listen="127.0.0.1:0"), db, FakeScheduler(), CollectorRegistry(),
                          started_at=T0 - 86400, clock=time.clock)
    assert server is not None
    try:
        probe = code.replace(f"127.0.0.1:{default_port}", server.url.removeprefix("http://"))
        sick = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=30)  # zd2 never synced
        write_state(db, [{"source": "zd2", "stream": "tickets", "ok": int(T0 - 60)}])
        well = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=30)
    finally:
        server.stop()
    assert sick.returncode == 1 and b"503" in sick.stderr
    assert well.returncode == 0, well.stderr


def test_the_systemd_check_uses_the_address_the_unit_sets_and_fails_on_503_with_the_body(db: Path) -> None:
    unit = (ROOT / "deploy" / "deskpulse.service").read_text()
    check = (ROOT / "deploy" / "deskpulse-healthcheck.service").read_text()
    timer = (ROOT / "deploy" / "deskpulse-healthcheck.timer").read_text()
    listen = re.search(r"^Environment=DESKPULSE_DAEMON__LISTEN=(\S+)$", unit, re.M)
    assert listen and Settings(daemon={"listen": listen.group(1)}).daemon.listen_address is not None
    command = re.search(rf"^ExecStart=(/usr/bin/curl .*http://{re.escape(listen.group(1))}/healthz)$", check, re.M)
    assert command, "the check does not ask the address the unit sets"
    assert "OnUnitActiveSec=" in timer
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed here: the command itself is not run")
    server = health.serve(settings(listen="127.0.0.1:0"), db, FakeScheduler(), CollectorRegistry(),
                          started_at=T0 - 86400, clock=FakeTime(T0).clock)
    assert server is not None
    try:
        argv = command.group(1).replace(listen.group(1), server.url.removeprefix("http://")).split()
        argv[0] = shutil.which("curl") or argv[0]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)  # no source ever synced: 503
    finally:
        server.stop()
    assert out.returncode != 0 and "503" in out.stderr
    assert json.loads(out.stdout)["sources"]["zd"]["status"] == "late"  # the journal gets the body


def test_store_metrics_are_read_from_the_store_at_scrape_time(db: Path) -> None:
    """Counters come from sync_state (they survive a restart); the outbox by kind and status, ``ticket`` rows
    shown as write-back; the newest posted digest week; the KPI facts waiting; a new row shows on the next
    scrape without anything telling the collector."""
    with Store(db) as store, store.transaction():
        store.conn.execute("INSERT INTO sync_state (source, stream, status, last_success_at, rows_total, pages_total, "
                           "errors_total, quarantined_total) VALUES ('zd', 'tickets', 'ok', ?, 1234, 7, 2, 1)",
                           [int(T0 - 60)])
        for key, kind, status, done_at in [("wb:1", "ticket", "done", T0), ("wb:2", "ticket", "failed", None),
                                           ("wb:3", "ticket", "failed", None), ("digest:2026-W47", "digest", "done",
                                                                                T0 - 604800),
                                           ("digest:2026-W48", "digest", "done", T0),
                                           ("digest:2026-W49", "digest", "failed", None)]:
            store.conn.execute("INSERT INTO outbox (key, source, kind, status, attempts, done_at) "
                               "VALUES (?, 'zd', ?, ?, 1, ?)", [key, kind, status, done_at])
        store.conn.execute("INSERT INTO kpi_dirty (source, ticket_id) VALUES ('zd', '1'), ('zd', '2'), ('zd', '3')")
    registry = CollectorRegistry(auto_describe=False)
    check = health.HealthCheck(settings(), FakeScheduler(), started_at=T0 - 86400, clock=FakeTime(T0).clock)
    registry.register(health.StoreCollector(db, settings(), check))
    got = samples(registry)
    zd = (("source", "zd"), ("stream", "tickets"))
    assert got[("deskpulse_sync_rows_total", zd)] == 1234
    assert got[("deskpulse_sync_pages_total", zd)] == 7
    assert got[("deskpulse_sync_errors_total", zd)] == 2
    assert got[("deskpulse_sync_quarantined_total", zd)] == 1
    assert got[("deskpulse_sync_last_success_timestamp_seconds", zd)] == int(T0 - 60)
    outbox = {labels: v for (name, labels), v in got.items() if name == "deskpulse_outbox_rows"}
    assert outbox == {(("kind", "writeback"), ("status", "done")): 1, (("kind", "writeback"), ("status", "failed")): 2,
                      (("kind", "digest"), ("status", "done")): 2, (("kind", "digest"), ("status", "failed")): 1}
    assert got[("deskpulse_digest_last_posted_info", (("week", "2026-W48"),))] == 1
    assert got[("deskpulse_digest_last_posted_timestamp_seconds", ())] == T0
    assert got[("deskpulse_kpi_dirty_tickets", ())] == 3
    assert got[("deskpulse_source_healthy", (("source", "zd"),))] == 1
    assert got[("deskpulse_source_healthy", (("source", "zd2"),))] == 0  # never synced, started a day ago
    with Store(db) as store, store.transaction():
        store.conn.execute("DELETE FROM kpi_dirty")
    assert samples(registry)[("deskpulse_kpi_dirty_tickets", ())] == 0


def test_an_unreadable_store_shows_in_the_metrics_not_as_a_failed_scrape(tmp_path: Path) -> None:
    registry = CollectorRegistry(auto_describe=False)
    check = health.HealthCheck(settings(), FakeScheduler(), started_at=T0)
    registry.register(health.StoreCollector(tmp_path / "missing.db", settings(), check))
    got = samples(registry)
    assert got[("deskpulse_store_readable", ())] == 0
    assert not (tmp_path / "missing.db").exists()
