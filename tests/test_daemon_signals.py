"""SIGTERM / SIGHUP during a long Retry-After wait: the daemon (and `deskpulse sync`) stop promptly and cleanly.

A real process (the installed ``deskpulse`` console script) against the Zendesk simulator answering every
request with 429 and ``Retry-After: 86400`` (capped by the client at ``max_retry_wait``, 300 s by default):
before the stop handle reached the HTTP layer, the daemon sat out those 300 s and systemd SIGKILLed it.
No timed assertion: ``proc.wait(timeout=...)`` is a generous bound on "it exited", not a speed claim.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.sim.base import Fault, SimServer
from connectors.sim.world import generate_world
from sync.simulators import build_simulator

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

DESKPULSE = shutil.which("deskpulse") or "deskpulse"
EXIT_BOUND_S = 20  # generous: the stop itself is immediate


@pytest.fixture
def throttled_zendesk() -> Iterator[tuple[Any, dict[str, Any]]]:
    sim, source = build_simulator("zendesk", generate_world(seed=5, tickets=30), speedup=1000)
    sim.inject(Fault("429", count=1_000_000, path="/api/v2/", retry_after=86400))
    server = SimServer(sim).start()
    yield sim, {**source, "name": "zd", "base_url": server.url}
    server.stop()


def write_config(tmp_path: Path, source: dict[str, Any]) -> Path:
    lines = ["[[sources]]"] + [f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v}" for k, v in source.items()]
    lines += ["[schedule]", 'sync_every = "1h"']
    path = tmp_path / "deskpulse.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def start(config: Path, db: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKPULSE_")}
    return subprocess.Popen([DESKPULSE, "--config", str(config), "--db", str(db), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=config.parent, start_new_session=True)


def wait_until_throttled(sim: Any, proc: subprocess.Popen[bytes]) -> None:
    """Until the process has met its first 429 (then it is in, or about to enter, the Retry-After wait)."""
    limit = time.monotonic() + 60
    while sim.statuses[429] < 1:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < limit, "the process never reached the simulator"
        time.sleep(0.05)
    time.sleep(0.3)  # let it settle into the wait: the stop must end a wait, not only prevent one


def stop_and_collect(proc: subprocess.Popen[bytes], sig: int) -> tuple[int, str]:
    proc.send_signal(sig)
    try:
        code = proc.wait(timeout=EXIT_BOUND_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"still running {EXIT_BOUND_S}s after {signal.Signals(sig).name}: the wait was not interrupted")
    assert proc.stderr is not None
    return code, proc.stderr.read().decode()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_daemon_stops_cleanly_during_a_long_retry_after(tmp_path: Path, throttled_zendesk, sig: int) -> None:
    sim, source = throttled_zendesk
    config, db = write_config(tmp_path, source), tmp_path / "d.db"
    proc = start(config, db, "daemon")
    try:
        wait_until_throttled(sim, proc)
        code, err = stop_and_collect(proc, sig)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, err
    assert f"{signal.Signals(sig).name} received: stopping" in err
    assert "daemon stopped" in err
    assert sim.statuses[429] == 1  # stopped during the wait: never asked again
    with sqlite3.connect(db) as conn:
        statuses = {status for (status,) in conn.execute("SELECT status FROM sync_state")}
    assert statuses == {"stopped"}  # a clean stop, not an error, and nothing committed from the refused page


def test_daemon_once_stops_promptly_on_sigterm(tmp_path: Path, throttled_zendesk) -> None:
    sim, source = throttled_zendesk
    config, db = write_config(tmp_path, source), tmp_path / "d.db"
    proc = start(config, db, "daemon", "--once")
    try:
        wait_until_throttled(sim, proc)
        code, err = stop_and_collect(proc, signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "SIGTERM received" in err
    assert code == 1, err  # --once was asked to run every job: stopped early is not a success (as `sync`)
    assert "stopped before every job had run" in err
    assert sim.statuses[429] == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sync_command_stops_promptly_and_says_it_did_not_finish(tmp_path: Path, throttled_zendesk,
                                                                sig: int) -> None:
    sim, source = throttled_zendesk
    config, db = write_config(tmp_path, source), tmp_path / "d.db"
    proc = start(config, db, "sync")
    try:
        wait_until_throttled(sim, proc)
        code, err = stop_and_collect(proc, sig)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = proc.stdout.read().decode() if proc.stdout else ""
    assert code == 1, err  # not everything asked was synced: a scheduler must not read it as success
    assert f"{signal.Signals(sig).name} received" in err
    assert "stopped" in out
    assert sim.statuses[429] == 1
