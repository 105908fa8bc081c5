"""/metrics and /healthz scraped from a running ``deskpulse daemon`` on the simulators; [daemon] listen at load.

The daemon listens on ``127.0.0.1:0`` (a free port) and logs its URL; the test reads it from stderr. The
metrics text is parsed with prometheus_client's own parser, so a malformed exposition fails the test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from connectors.sim.base import Fault
from sync.simulators import DEMO_SPEEDUP, RunningSim, start_simulator

pytestmark = pytest.mark.skipif(shutil.which("deskpulse") is None, reason="console script not installed")

BAD_TOKEN = "refused-token-0123456789"


def source_lines(source: dict[str, Any]) -> list[str]:
    return ["[[sources]]"] + [f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v}" for k, v in source.items()]


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("DESKPULSE_")}


class RunningDaemon:
    """``deskpulse daemon`` in a subprocess; stderr is read by a thread so the pipe never fills."""

    def __init__(self, folder: Path) -> None:
        self.proc = subprocess.Popen(["deskpulse", "--db", "d.db", "daemon"], cwd=folder, env=clean_env(),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.url = self._wait_for_url()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for line in list(self.lines):
                found = re.search(r"(http://127\.0\.0\.1:\d+)/healthz", line)
                if found:
                    return found.group(1)
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError("the daemon never said where it serves /healthz:\n" + "".join(self.lines))

    def get(self, path: str) -> tuple[int, str, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as resp:
                return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get("Content-Type", ""), exc.read().decode()

    def metrics(self) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
        """Sample name -> {sorted labels: value}, parsed by prometheus_client."""
        status, ctype, text = self.get("/metrics")
        assert status == 200 and ctype.startswith("text/plain"), (status, ctype)
        out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
        return out

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def wait_until(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def value(metrics: dict, name: str, **labels: str) -> float | None:
    return metrics.get(name, {}).get(tuple(sorted(labels.items())))


@pytest.fixture
def zendesk() -> Iterator[RunningSim]:
    sim = start_simulator("zendesk", tickets=40, seed=5, speedup=DEMO_SPEEDUP, name="zd")
    yield sim
    sim.server.stop()


@pytest.fixture
def slack() -> Iterator[RunningSim]:
    sim = start_simulator("slack")
    yield sim
    sim.server.stop()


def write_config(folder: Path, sources: list[dict[str, Any]], extra: list[str] = ()) -> None:
    lines = [line for s in sources for line in source_lines(s)]
    lines += ["[schedule]", 'sync_every = "1h"', *extra, "[daemon]", 'listen = "127.0.0.1:0"']
    (folder / "deskpulse.toml").write_text("\n".join(lines) + "\n")


def test_refused_credentials_make_healthz_503_and_show_in_metrics(tmp_path: Path, zendesk: RunningSim,
                                                                  slack: RunningSim) -> None:
    """One good source (meeting two 429s), one whose token the helpdesk refuses, and a digest to post."""
    zendesk.sim.inject(Fault("429", count=2, path="/api/v2/incremental/tickets", retry_after=0.2))
    bad = {**zendesk.source, "name": "zd-bad", "api_token": BAD_TOKEN}
    write_config(tmp_path, [zendesk.source, bad],
                 ['digest = "mon 00:00"', "[slack]", f'webhook_url = "{slack.source["webhook_url"]}"'])
    daemon = RunningDaemon(tmp_path)
    try:
        def settled() -> bool:  # both sources have run and the digest catch-up posted
            m = daemon.metrics()
            return (value(m, "deskpulse_job_runs_total", job="sync:zd", outcome="ok") == 1
                    and value(m, "deskpulse_job_runs_total", job="sync:zd-bad", outcome="failed") == 1
                    and value(m, "deskpulse_outbox_rows", kind="digest", status="done") == 1)

        wait_until("both syncs and the digest", settled)
        status, ctype, body = daemon.get("/healthz")
        metrics = daemon.metrics()
        with sqlite3.connect(tmp_path / "d.db") as conn:
            rows = dict(conn.execute("SELECT stream, rows_total FROM sync_state WHERE source = 'zd'").fetchall())
            dirty = conn.execute("SELECT count(*) FROM kpi_dirty").fetchone()[0]
            week = conn.execute("SELECT key FROM outbox WHERE kind = 'digest'").fetchone()[0].removeprefix("digest:")
        missing_status, _, _ = daemon.get("/nope")
    finally:
        code = daemon.stop()
    assert code == 0, "".join(daemon.lines)

    # /healthz: 503, names the refused source and why, the good one is fine, no secret anywhere
    assert status == 503 and ctype == "application/json"
    verdict = json.loads(body)
    assert verdict["status"] == "unhealthy" and verdict["scheduler"] == "running"
    assert verdict["sources"]["zd"]["status"] == "ok" and verdict["sources"]["zd"]["last_success"]
    assert verdict["sources"]["zd-bad"]["status"] == "failing"
    assert verdict["sources"]["zd-bad"]["last_success"] is None
    assert "authentication failed" in verdict["sources"]["zd-bad"]["last_error"]
    assert BAD_TOKEN not in body and zendesk.source["api_token"] not in body
    assert missing_status == 404

    # /metrics: per stream from the store and from the HTTP layer, jobs from the process
    assert value(metrics, "deskpulse_source_healthy", source="zd") == 1
    assert value(metrics, "deskpulse_source_healthy", source="zd-bad") == 0
    assert value(metrics, "deskpulse_sync_errors_total", source="zd-bad", stream="ticket_fields") == 1
    assert value(metrics, "deskpulse_sync_failing", source="zd-bad", stream="ticket_fields") == 1
    assert value(metrics, "deskpulse_sync_last_error_timestamp_seconds", source="zd-bad",
                 stream="ticket_fields") is not None
    assert value(metrics, "deskpulse_sync_last_success_timestamp_seconds", source="zd-bad",
                 stream="ticket_fields") is None
    for stream, n in rows.items():
        assert value(metrics, "deskpulse_sync_rows_total", source="zd", stream=stream) == n
        assert value(metrics, "deskpulse_sync_errors_total", source="zd", stream=stream) == 0
        assert value(metrics, "deskpulse_sync_last_success_timestamp_seconds", source="zd", stream=stream) > 0
    assert rows["tickets"] == 40
    for stream in rows:  # the HTTP layer's counts, per source and stream: the two 429s met the tickets stream
        assert value(metrics, "deskpulse_http_requests_total", source="zd", stream=stream) > 0
        met = 2 if stream == "tickets" else 0
        assert value(metrics, "deskpulse_http_throttled_total", source="zd", stream=stream) == met
        assert value(metrics, "deskpulse_http_retries_total", source="zd", stream=stream) == met
    assert value(metrics, "deskpulse_http_requests_total", source="zd", stream="tickets") > 2
    assert value(metrics, "deskpulse_http_requests_total", source="zd-bad", stream="ticket_fields") == 1  # no retry
    assert value(metrics, "deskpulse_http_throttled_total", source="zd-bad", stream="ticket_fields") == 0
    assert value(metrics, "deskpulse_http_requests_total", source="slack", stream="digest") >= 1
    assert {dict(k)["stream"] for k in metrics["deskpulse_http_requests_total"]} == {*rows, "digest"}
    assert value(metrics, "deskpulse_digest_last_posted_info", week=week) == 1
    assert value(metrics, "deskpulse_kpi_dirty_tickets") == dirty
    assert value(metrics, "deskpulse_job_duration_seconds_count", job="sync:zd") == 1
    assert value(metrics, "deskpulse_job_duration_seconds_count", job="digest") >= 1
    assert value(metrics, "deskpulse_scheduler_running") == 1
    assert value(metrics, "deskpulse_store_readable") == 1
    assert not any(BAD_TOKEN in line for line in daemon.lines)


def test_a_healthy_daemon_answers_200_and_stops_serving_on_sigterm(tmp_path: Path, zendesk: RunningSim) -> None:
    write_config(tmp_path, [zendesk.source])
    daemon = RunningDaemon(tmp_path)
    try:
        wait_until("the first sync", lambda: value(daemon.metrics(), "deskpulse_job_runs_total", job="sync:zd",
                                                   outcome="ok") == 1)
        status, _, body = daemon.get("/healthz")
    finally:
        code = daemon.stop()
    assert code == 0, "".join(daemon.lines)
    assert status == 200, body
    verdict = json.loads(body)
    assert verdict["status"] == "ok" and verdict["sources"]["zd"]["status"] == "ok"
    assert "last_error" not in verdict["sources"]["zd"]
    with pytest.raises(urllib.error.URLError):  # the endpoint went with the daemon
        urllib.request.urlopen(daemon.url + "/healthz", timeout=5)


@pytest.mark.parametrize(("listen", "why"), [
    ("localhost", "is not HOST:PORT"),
    ("127.0.0.1:70000", "invalid port"),
    ("metrics.example.com:9464", "is not an IP address or localhost"),
    ("::1:9464", "in brackets"),
])
def test_a_bad_listen_address_exits_2_with_one_line(tmp_path: Path, listen: str, why: str) -> None:
    lines = ["[[sources]]", 'kind = "freshdesk"', 'name = "fd"', 'base_url = "http://127.0.0.1:9"',
             'api_key = "k-not-a-secret"', "[daemon]", f'listen = "{listen}"']
    (tmp_path / "deskpulse.toml").write_text("\n".join(lines) + "\n")
    out = subprocess.run(["deskpulse", "--db", "d.db", "daemon"], cwd=tmp_path, env=clean_env(),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1, out.stderr
    assert "daemon.listen" in out.stderr and why in out.stderr
    assert not (tmp_path / "d.db").exists()
