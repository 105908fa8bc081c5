"""Shard a large computation over worker processes (2-core machines: twice the throughput).

Why processes, not threads: SQLite's allocator takes a global mutex with memory statistics on
(Python's build), so two threads on two connections ran *slower* than one (measured). Each
worker opens the same database file read-only, computes the partials of its slice of tickets
(by range of fact keys, :mod:`kpi_engine.fact_store`, which the caller made current first) and
returns them; partials merge exactly (:mod:`kpi_engine.partials`), so a sharded result equals
the single-process one. Each shard, here or in a worker, is :func:`kpi_engine.shard.collect_parts`
(the engine imports this module, never the other way round). In-memory databases and small
periods stay in-process.
"""

from __future__ import annotations

import logging
import os
import pickle
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

from config.settings import CostSettings, KpiSettings, SlaSettings
from kpi_engine.partials import Parts
from kpi_engine.periods import Period
from kpi_engine.shard import collect_parts
from kpi_engine.workspace import Shard, sql_list

logger = logging.getLogger("deskpulse.kpi.parallel")

#: SQLite page cache of a computation, KiB: the GROUP BY sorts of a big breakdown stay in memory instead of
#: spilling to temp files (measured: 16 MiB 7.6 s, 32 MiB 6.2 s, 64 MiB 5.7 s a shard)
CACHE_KIB = 32768
#: shard when the period creates at least this many tickets (below it, process start-up costs more than it saves)
MIN_TICKETS = 150_000


def database_file(conn: sqlite3.Connection) -> str | None:
    """The main database's file, or None for an in-memory or temporary database."""
    for _, name, path in conn.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return path or None
    return None


def plan_shards(conn: sqlite3.Connection, sources: list[str], period: Period, workers: int | None) -> int:
    """How many shards: ``workers`` if given, else the CPU count when the period is large enough."""
    if workers is not None:
        return max(1, workers)
    if database_file(conn) is None or not sources:
        return 1
    created = conn.execute(f"SELECT COUNT(*) FROM tickets WHERE source IN {sql_list(sources)} "
                           "AND created_at >= ? AND created_at < ?", [period.since, period.until]).fetchone()[0]
    if created < MIN_TICKETS:
        return 1
    return max(1, min(os.cpu_count() or 1, 4))


def shard_bounds(conn: sqlite3.Connection, sources: list[str], count: int) -> list[Shard]:
    """``count`` shards with equal numbers of tickets, cut at fact keys (ranges of ``kpi_facts`` rowids:
    each worker reads its own contiguous part of the table)."""
    # +: walk the table in ticket_rowid order, not the (source, ticket_id) index
    where = f"WHERE +source IN {sql_list(sources)}"
    total = conn.execute(f"SELECT COUNT(*) FROM kpi_facts {where}").fetchone()[0]
    cuts: list[int] = []
    for i in range(1, count):
        row = conn.execute(f"SELECT ticket_rowid FROM kpi_facts {where} ORDER BY ticket_rowid LIMIT 1 OFFSET ?",
                           [total * i // count]).fetchone()
        if row and (not cuts or row[0] > cuts[-1]):
            cuts.append(int(row[0]))
    edges: list[int | None] = [None, *cuts, None]
    return [Shard(edges[i], edges[i + 1], first=i == 0) for i in range(len(edges) - 1)]


@contextmanager
def cache_size(conn: sqlite3.Connection, kib: int) -> Iterator[None]:
    """The connection's page cache at least ``kib`` for the block, then back (a store's own connection
    keeps a small cache so a long sync stays small)."""
    before = int(conn.execute("PRAGMA cache_size").fetchone()[0])
    size = max(kib, -before if before < 0 else 0)
    conn.execute(f"PRAGMA cache_size=-{size}")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA cache_size={before}")


def _shard_command() -> list[str]:
    return [sys.executable, "-m", "kpi_engine.parallel"]


def worker_env() -> dict[str, str]:
    """A worker's environment: this one, with this process's import path (a checkout run without installing)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}


def run_sharded(conn: sqlite3.Connection, shards: list[Shard], *, kpi: KpiSettings, sla: SlaSettings,
                costs: CostSettings, period: Period, sources: list[str], by: str | None, now: int,
                source: str | None, families: frozenset[str] | None = None,
                kpis: frozenset[str] | None = None) -> Parts:
    """The last shard in this process on ``conn``, the others in worker processes; merged partials.

    The last shard holds the newest tickets, which cost least over a long period (measured: the older
    half of a two-year store took 7.4 s, the newer 5.8 s), and this process also merges and finalizes
    while the workers start up and finish.

    Workers are ``python -m kpi_engine.parallel`` subprocesses fed a pickled job on stdin: unlike
    multiprocessing they never re-import the caller's ``__main__`` and never fork a process that
    may hold SQLite or logging locks in other threads (the daemon has several).
    """
    path = database_file(conn)
    assert path is not None
    job = {"path": path, "kpi": kpi, "sla": sla, "costs": costs, "period": period, "sources": sources, "by": by,
           "now": now, "source": source, "families": families, "kpis": kpis}
    env = worker_env()
    procs = []
    try:
        for shard in shards[:-1]:
            proc = subprocess.Popen(_shard_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=env)
            assert proc.stdin is not None
            proc.stdin.write(pickle.dumps({**job, "shard": shard}))
            proc.stdin.close()
            procs.append(proc)
        with cache_size(conn, CACHE_KIB):
            parts = collect_parts(conn, kpi=kpi, sla=sla, costs=costs, period=period, sources=sources, by=by,
                                  now=now, source=source, shard=shards[-1], families=families,
                                  kpis=kpis)
        for proc in procs:
            assert proc.stdout is not None and proc.stderr is not None
            try:  # unpickled from the pipe as it arrives: the whole pickle is never held as bytes too
                other: Parts | None = pickle.load(proc.stdout)  # noqa: S301 - our own worker's output
            except (EOFError, pickle.UnpicklingError):
                other = None
            err = proc.stderr.read()
            if proc.wait() != 0 or other is None:
                raise RuntimeError(f"KPI shard worker failed: {err.decode(errors='replace').strip()[-500:]}")
            parts.merge(other)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    logger.debug("KPI partials merged from %d shards", len(shards))
    return parts


def _main() -> int:
    """Worker entry point: a pickled job on stdin, the pickled partials on stdout."""
    job = pickle.loads(sys.stdin.buffer.read())  # noqa: S301 - written by run_sharded
    conn = sqlite3.connect(f"file:{quote(job.pop('path'))}?mode=ro", uri=True)
    try:
        conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        parts = collect_parts(conn, **job)
    finally:
        conn.close()
    sys.stdout.buffer.write(pickle.dumps(parts, protocol=pickle.HIGHEST_PROTOCOL))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
