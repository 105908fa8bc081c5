"""Transactions for kpi_engine's own writes (derived tables only): all of a write or none of it.

Why a savepoint when the caller already holds a transaction: the daemon and the CLI may call in
while they write (a snapshot, the digest); a nested BEGIN would fail, and committing their
transaction for them would break their all-or-nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def savepoint(conn: sqlite3.Connection, name: str) -> Iterator[None]:
    """SAVEPOINT ``name`` ... RELEASE; rolled back to the savepoint on any exception."""
    conn.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        conn.execute(f"ROLLBACK TO {name}")
        conn.execute(f"RELEASE {name}")
        raise
    conn.execute(f"RELEASE {name}")


@contextmanager
def writing(conn: sqlite3.Connection, name: str) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, or a savepoint inside the caller's open transaction."""
    if conn.in_transaction:
        with savepoint(conn, name):
            yield
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
