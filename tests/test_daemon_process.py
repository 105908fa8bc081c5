"""The daemon as a real process against the Zendesk simulator: SIGTERM and kill -9 mid-sync lose nothing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from connectors.sim.base import Fault, SimServer
from connectors.sim.world import generate_world
from sync.simulators import build_simulator

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


@pytest.fixture
def slow_zendesk():
    sim, source = build_simulator("zendesk", generate_world(seed=11, tickets=600), speedup=1000)
    sim.inject(Fault("slow", count=10_000, path="/api/v2/incremental/ticket_events", delay=0.05))
    server = SimServer(sim).start()
    yield sim, {**source, "name": "zd", "base_url": server.url, "per_page": 50}
    server.stop()


def write_config(tmp_path: Path, source: dict) -> Path:
    lines = ["[[sources]]"] + [f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in source.items()]
    lines += ["[schedule]", 'sync_every = "1h"']
    path = tmp_path / "deskpulse.toml"
    path.write_text("\n".join(lines).replace("'", '"') + "\n")
    return path


def start_daemon(config: Path, db: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKPULSE_")}
    return subprocess.Popen([sys.executable, "-m", "sync.cli", "--config", str(config), "--db", str(db), "daemon"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            cwd=Path(__file__).resolve().parents[1])


def wait_for_rows(db: Path, stream: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if db.exists():
            try:
                with sqlite3.connect(db, timeout=1) as conn:
                    n = conn.execute("SELECT rows_total FROM sync_state WHERE stream = ?", [stream]).fetchone()
                if n and n[0]:
                    return
            except sqlite3.OperationalError:
                pass
        time.sleep(0.05)
    raise AssertionError(f"the daemon never committed a {stream} page")


def resume_and_count(config: Path, db: Path) -> dict[str, int]:
    out = subprocess.run([sys.executable, "-m", "sync.cli", "--config", str(config), "--db", str(db), "sync"],
                         capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    with sqlite3.connect(db) as conn:
        # `deskpulse sync` leaves the KPI facts current: every ticket it touched was recomputed
        assert conn.execute("SELECT COUNT(*) FROM kpi_dirty").fetchone()[0] == 0
        live = conn.execute("SELECT COUNT(*) FROM tickets WHERE status IS NOT 'deleted' AND COALESCE(is_spam, 0) = 0 "
                            "AND COALESCE(is_merged, 0) = 0").fetchone()[0]
        assert conn.execute("SELECT COUNT(*) FROM kpi_facts").fetchone()[0] == live
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("tickets", "messages", "people", "organizations", "ratings")}


def expected(sim) -> dict[str, int]:
    truth = sim.ground_truth()
    return {"tickets": truth["tickets"], "people": truth["people"], "organizations": truth["organizations"],
            "ratings": truth["ratings"]}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_signal_mid_sync_then_resume_matches_ground_truth(tmp_path: Path, slow_zendesk, sig: int) -> None:
    sim, source = slow_zendesk
    config, db = write_config(tmp_path, source), tmp_path / "d.db"
    proc = start_daemon(config, db)
    try:
        wait_for_rows(db, "ticket_events")
        sent = time.monotonic()
        proc.send_signal(sig)
        code = proc.wait(timeout=15)
        stopped_in = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    if sig == signal.SIGTERM:
        assert code == 0, proc.stderr.read().decode()
        assert stopped_in < 5
        with sqlite3.connect(db) as conn:
            state = dict(conn.execute("SELECT stream, status FROM sync_state").fetchall())
        assert state["ticket_events"] in ("stopped", "ok")
    counts = resume_and_count(config, db)
    truth = expected(sim)
    assert {k: counts[k] for k in truth} == truth
    assert counts["messages"] == sim.ground_truth()["messages"]


def test_second_daemon_on_the_same_store_exits_2(tmp_path: Path, slow_zendesk) -> None:
    sim, source = slow_zendesk
    config, db = write_config(tmp_path, source), tmp_path / "d.db"
    first = start_daemon(config, db)
    try:
        wait_for_rows(db, "tickets")
        second = start_daemon(config, db)
        assert second.wait(timeout=30) == 2
        err = second.stderr.read().decode()
        assert "already running" in err and err.count("\n") == 1
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=15)
