"""``deskpulse writeback`` through the installed console script, against the Intercom simulator on loopback.

Right after ``deskpulse sync`` the stored CDI (if any) predates the synced data: write-back computes it
first and says which day it used. A bad answer to ``POST /tags`` fails one write: exit 1, the reason on
the console, in the outbox and in ``deskpulse status``; the other writes went out.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from connectors.sim.base import Fault, SimServer
from connectors.sim.world import generate_world
from kpi_engine.distress import day_of
from sync.simulators import build_simulator


def deskpulse(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKPULSE_")}
    env["COLUMNS"] = "200"
    return subprocess.run(["deskpulse", "--config", str(tmp_path / "deskpulse.toml"), "--db", str(tmp_path / "s.db"),
                           *args], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path, check=False)


@pytest.fixture
def intercom(tmp_path: Path) -> Any:
    sim, source = build_simulator("intercom", generate_world(seed=5, tickets=800), speedup=1000)
    with SimServer(sim) as server:
        source = {**source, "name": "ic", "base_url": server.url, "distress_field": "deskpulse_cdi"}
        lines = ["[[sources]]"] + [f'{key} = "{value}"' for key, value in source.items()]
        lines += ["[writeback]", "max_writes_per_run = 10000"]
        (tmp_path / "deskpulse.toml").write_text("\n".join(lines) + "\n")
        yield sim


def test_writeback_right_after_sync_computes_the_cdi_and_names_its_day(tmp_path: Path, intercom: Any) -> None:
    synced = deskpulse(tmp_path, "sync")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("SELECT count(*) FROM cdi_history").fetchone()[0] == 0  # sync computes no CDI

    dry = deskpulse(tmp_path, "writeback")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "nothing to write" not in dry.stdout
    match = re.search(r"Using the CDI of (\d{4}-\d{2}-\d{2}), computed just now", dry.stdout)
    assert match, dry.stdout
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("SELECT max(day) FROM cdi_history").fetchone()[0] == match.group(1)
    assert match.group(1) == day_of(int(intercom.clock()))
    assert "planned writes" in dry.stdout and "tag +deskpulse_distress" in dry.stdout

    again = deskpulse(tmp_path, "writeback")  # nothing synced since: the stored CDI is used as is
    assert f"Using the CDI of {match.group(1)}, computed " in again.stdout
    assert "computed just now" not in again.stdout


def test_a_bad_answer_to_post_tags_fails_one_write_exit_1_and_shows_in_status(tmp_path: Path,
                                                                                intercom: Any) -> None:
    assert deskpulse(tmp_path, "sync").returncode == 0
    intercom.inject(Fault("html", count=1, path="/tags"))
    applied = deskpulse(tmp_path, "writeback", "--apply")
    assert "internal error" not in applied.stdout + applied.stderr
    assert re.search(r"applied [1-9]\d*, gone 0, refused 0, failed 1", applied.stdout), applied.stdout
    assert "failed: source ic: answer to POST /tags is not JSON (HTTP 200, text/html" in applied.stdout
    assert applied.returncode == 1, applied.stdout + applied.stderr
    with sqlite3.connect(tmp_path / "s.db") as conn:
        rows = conn.execute("SELECT status, last_error FROM outbox WHERE status != 'done'").fetchall()
        assert len(rows) == 1 and rows[0][0] == "failed"
        assert conn.execute("SELECT count(*) FROM outbox WHERE status = 'done'").fetchone()[0] > 0
    status = deskpulse(tmp_path, "status")
    assert status.returncode == 0, status.stderr
    assert re.search(r"write failed ic ticket \S+ \(retry after [^)]+\): source ic: answer to POST /tags is not "
                     r"JSON \(HTTP 200, text/html", status.stdout), status.stdout
