"""Run one kpi_engine computation on the same store in a worker process while this process does another.

Why: a report needs the CDI (one pass over the accounts, then its history written) and a dozen KPI
breakdowns; neither reads what the other computes, and on the 2-core machines deskpulse runs on one
process leaves a core idle. Why a process and not a thread: SQLite's allocator serialises two threads
of one Python process (measured for :mod:`kpi_engine.parallel`, whose worker protocol this follows:
``python -m kpi_engine.background`` fed a pickled job on stdin, never a fork of a process whose other
threads may hold SQLite or logging locks).

The worker opens the store file read-write (the CDI records its history); SQLite's WAL lets this process
keep reading meanwhile. Without a database file (an in-memory store) the computation runs in this process,
on its connection, when its result is asked for: same result, no overlap.
"""

from __future__ import annotations

import importlib
import logging
import pickle
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from types import TracebackType
from typing import Any
from urllib.parse import quote

from kpi_engine.parallel import CACHE_KIB, database_file, worker_env

logger = logging.getLogger("deskpulse.kpi.background")

#: how long a worker's store connection waits for another writer's lock (the store's own connections wait 30 s)
BUSY_TIMEOUT_S = 30.0


def _target(name: str) -> Callable[..., Any]:
    """``module:function`` inside kpi_engine (a job names its function; it is never an arbitrary callable)."""
    module, _, func = name.partition(":")
    if not module.startswith("kpi_engine.") or not func:
        raise ValueError(f"not a kpi_engine function: {name!r}")
    found: Callable[..., Any] = getattr(importlib.import_module(module), func)
    return found


class Background:
    """``target(conn, **kwargs)`` started in a worker process now; :meth:`result` waits for its return value.

    Use as a context manager: leaving the block early (an error, a stop signal) kills the worker.
    """

    def __init__(self, conn: sqlite3.Connection, target: str, **kwargs: Any) -> None:
        self._conn = conn
        self._target = target
        self._kwargs = kwargs
        self._proc: subprocess.Popen[bytes] | None = None
        _target(target)  # a bad name fails here, in the caller, not in the worker
        path = database_file(conn)
        if path is None:
            return
        self._proc = subprocess.Popen([sys.executable, "-m", "kpi_engine.background"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=worker_env())
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(pickle.dumps({"path": path, "target": target, "kwargs": kwargs},
                                                protocol=pickle.HIGHEST_PROTOCOL))
            self._proc.stdin.close()
        except BaseException:
            self.close()
            raise

    def result(self) -> Any:
        """The target's return value (computed here, now, when there is no worker); raises if the worker failed."""
        if self._proc is None:
            return _target(self._target)(self._conn, **self._kwargs)
        proc = self._proc
        assert proc.stdout is not None and proc.stderr is not None
        try:  # unpickled from the pipe as it arrives
            answer = pickle.load(proc.stdout)  # noqa: S301 - our own worker's output
        except (EOFError, pickle.UnpicklingError):
            answer = None
        err = proc.stderr.read()
        if proc.wait() != 0 or not isinstance(answer, dict):
            raise RuntimeError(f"background computation {self._target} failed: "
                               f"{err.decode(errors='replace').strip()[-500:]}")
        if "error" in answer:
            raise answer["error"]
        return answer["value"]

    def close(self) -> None:
        """Kill the worker if it is still running (after :meth:`result` it has already exited)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc is not None:
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()

    def __enter__(self) -> Background:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _main() -> int:
    """Worker entry point: a pickled job on stdin; ``{"value": ...}`` or ``{"error": exception}`` on stdout.

    An exception the target raises (a :class:`config.errors.DeskpulseError` with its message for the user,
    say) travels back and is raised in the caller as it is; a crash leaves stderr to explain.
    """
    job = pickle.loads(sys.stdin.buffer.read())  # noqa: S301 - written by Background
    conn = sqlite3.connect(f"file:{quote(job['path'])}", uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        try:
            answer: dict[str, Any] = {"value": _target(job["target"])(conn, **job["kwargs"])}
        except Exception as exc:  # noqa: BLE001 - handed to the caller, which raises it
            answer = {"error": exc}
    finally:
        conn.close()
    try:
        data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # noqa: BLE001 - an exception that does not pickle: its text still gets there
        data = pickle.dumps({"error": RuntimeError(f"{type(exc).__name__}: {answer.get('error', exc)}")})
    sys.stdout.buffer.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
