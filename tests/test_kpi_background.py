"""kpi_engine.background: a computation in a worker process on the same store file, or in this process
without one; its value, its errors and its clean-up."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from config.errors import DeskpulseError
from kpi_engine.background import Background
from kpi_engine.customers import CustomerMap


def _store(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE organizations (source TEXT, id TEXT, name TEXT, raw TEXT)")
    conn.execute("CREATE TABLE people (source TEXT, id TEXT, organization_id TEXT, email TEXT, name TEXT, role TEXT)")
    conn.executemany("INSERT INTO organizations VALUES (?, ?, ?, ?)", [
        ("zd", "1", "Acme", '{"domain_names": ["acme.example"]}'),
        ("fd", "9", "Acme Inc", '{"domains": ["acme.example"]}')])
    return conn


def test_a_worker_computes_on_the_same_file_what_this_process_would(tmp_path: Path) -> None:
    conn = _store(tmp_path / "s.db")
    with Background(conn, "kpi_engine.customers:resolve") as job:
        assert job._proc is not None  # a file database: a worker process
        remote = job.result()
    from kpi_engine.customers import resolve

    assert isinstance(remote, CustomerMap) and remote.customers  # the two organizations share a domain
    assert remote == resolve(conn)


def test_without_a_file_it_runs_here_when_asked(tmp_path: Path) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE organizations (source TEXT, id TEXT, name TEXT, raw TEXT)")
    job = Background(conn, "kpi_engine.customers:resolve")
    assert job._proc is None
    conn.execute("CREATE TABLE people (source TEXT, id TEXT, organization_id TEXT, email TEXT, name TEXT, role TEXT)")
    conn.executemany("INSERT INTO organizations VALUES (?, ?, ?, ?)", [  # made after the start: it runs at result()
        ("zd", "1", "Acme", '{"domain_names": ["acme.example"]}'),
        ("fd", "9", "Acme", '{"domains": ["acme.example"]}')])
    assert len(job.result().customers) == 1


def test_the_targets_error_reaches_the_caller_as_itself(tmp_path: Path) -> None:
    conn = _store(tmp_path / "s.db")
    conn.execute("DROP TABLE people")  # resolve reads people: sqlite3.OperationalError in the worker
    with Background(conn, "kpi_engine.customers:resolve") as job, pytest.raises(sqlite3.OperationalError,
                                                                                   match="no such table: people"):
        job.result()


def test_a_target_outside_kpi_engine_is_refused_before_any_worker_starts(tmp_path: Path) -> None:
    conn = _store(tmp_path / "s.db")
    for name in ("os:system", "sync.store:Store", "kpi_engine.customers"):
        with pytest.raises(ValueError, match="not a kpi_engine function"):
            Background(conn, name)


def test_leaving_early_kills_the_worker(tmp_path: Path) -> None:
    conn = _store(tmp_path / "s.db")
    with pytest.raises(DeskpulseError), Background(conn, "kpi_engine.customers:resolve") as job:
        proc = job._proc
        assert proc is not None
        raise DeskpulseError("the caller failed first")
    assert proc.poll() is not None  # not left running
