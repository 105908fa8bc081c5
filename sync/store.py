"""The SQLite store: normalized schema, forward migrations, fast upserts, and the page transaction.

Why timestamps are INTEGER unix seconds: KPI queries over millions of rows do
arithmetic on them; ``julianday()`` over ISO text is several times slower.

Why upserts are hand-built ``INSERT ... ON CONFLICT DO UPDATE`` statements run
with ``executemany`` rather than ``sqlite_utils.Table.upsert_all``: ingest is
measured against a ``json.loads`` + ``executemany`` floor, and per-row Python
work in the hot loop is what separates the two. sqlite-utils still owns table
creation, introspection and ad-hoc queries.

Durability: WAL with ``synchronous=NORMAL``. A crash of the process can never
lose a committed page; a power loss may roll back the last few commits, but
rows and cursor roll back together, so the next run re-reads them.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from config.errors import DeskpulseError
from kpi_engine import schema as kpi_schema

# Per table: columns (name -> SQLite type), primary key, and which columns hold JSON.
TABLES: dict[str, dict[str, Any]] = {
    "tickets": {
        "columns": {
            "source": str, "id": str, "subject": str, "status": str, "vendor_status": str,
            "priority": str, "severity": int, "channel": str, "requester_id": str,
            "organization_id": str, "assignee_id": str, "group_id": str, "tags": str,
            "custom_fields": str, "created_at": int, "updated_at": int, "solved_at": int,
            "is_spam": int, "is_merged": int, "vendor_first_reply_s": int,
            "vendor_first_resolution_s": int, "vendor_full_resolution_s": int, "vendor_reopens": int,
            "vendor_replies": int, "vendor_metrics": str, "raw": str, "synced_at": int,
        },
        "pk": ("source", "id"),
        "json": {"tags", "custom_fields", "vendor_metrics", "raw"},
    },
    "messages": {
        "columns": {
            "source": str, "id": str, "ticket_id": str, "author_id": str, "author_role": str,
            "public": int, "kind": str, "body": str, "created_at": int, "raw": str,
        },
        "pk": ("source", "id"),
        "json": {"raw"},
    },
    "people": {
        "columns": {
            "source": str, "id": str, "name": str, "email": str, "role": str, "organization_id": str,
            "external_id": str, "created_at": int, "updated_at": int, "raw": str,
        },
        "pk": ("source", "id"),
        "json": {"raw"},
    },
    "organizations": {
        "columns": {
            "source": str, "id": str, "name": str, "value": float, "created_at": int,
            "updated_at": int, "raw": str,
        },
        "pk": ("source", "id"),
        "json": {"raw"},
    },
    "groups": {
        "columns": {"source": str, "id": str, "name": str, "raw": str},
        "pk": ("source", "id"),
        "json": {"raw"},
    },
    "fields": {
        "columns": {"source": str, "id": str, "name": str, "type": str, "raw": str},
        "pk": ("source", "id"),
        "json": {"raw"},
    },
    "ratings": {
        "columns": {
            "source": str, "id": str, "ticket_id": str, "requester_id": str, "assignee_id": str,
            "kind": str, "score_raw": str, "score_1_5": float, "score": float, "comment": str,
            "created_at": int, "raw": str,
        },
        "pk": ("source", "id"),
        "json": {"raw"},
    },
    "ticket_events": {
        "columns": {
            "source": str, "id": str, "ticket_id": str, "created_at": int, "actor_id": str,
            "field": str, "old_value": str, "new_value": str, "raw": str,
        },
        "pk": ("source", "id"),
        "json": {"raw"},
    },
    "time_entries": {
        "columns": {
            "source": str, "id": str, "ticket_id": str, "agent_id": str, "seconds": int,
            "created_at": int, "raw": str,
        },
        "pk": ("source", "id"),
        "json": {"raw"},
    },
    "sync_state": {
        "columns": {
            "source": str, "stream": str, "cursor": str, "status": str, "last_run_at": int,
            "last_success_at": int, "last_error": str, "last_error_at": int, "rows_total": int,
            "last_run_rows": int, "pages_total": int, "errors_total": int, "quarantined_total": int,
        },
        "pk": ("source", "stream"),
        "json": set(),
    },
    "quarantine": {
        "columns": {
            "source": str, "stream": str, "record_key": str, "record_id": str, "error": str,
            "raw": str, "created_at": int,
        },
        "pk": ("source", "stream", "record_key"),
        "json": set(),
    },
    "outbox": {
        "columns": {
            "key": str, "source": str, "kind": str, "target": str, "payload": str, "status": str,
            "attempts": int, "last_error": str, "next_attempt_at": int, "created_at": int,
            "updated_at": int, "done_at": int,
        },
        "pk": ("key",),
        "json": {"payload"},
    },
}

INDEXES: list[tuple[str, tuple[str, ...]]] = [
    ("tickets", ("source", "created_at")),
    ("tickets", ("source", "solved_at")),
    ("tickets", ("source", "status")),
    ("tickets", ("source", "organization_id")),
    ("tickets", ("source", "requester_id")),
    ("messages", ("source", "ticket_id", "created_at")),
    ("ticket_events", ("source", "ticket_id", "created_at")),
    ("ratings", ("source", "created_at")),
    ("people", ("source", "organization_id")),
    ("outbox", ("status", "next_attempt_at")),
    ("time_entries", ("source", "ticket_id")),
]


def _make_encoder() -> Callable[[Any], str]:
    """Compact JSON text of a parsed payload, built once: the ingest hot path (one call per stored row).

    ``JSONEncoder.encode`` rebuilds its C encoder (and a circular-reference memo) on every call; calling
    the C encoder directly skips that per-row setup. Same text: compact separators, ASCII escapes,
    ``default=str``. No circularity check: payloads come from ``json.loads``, which cannot build cycles.
    """
    encoder = json.JSONEncoder(separators=(",", ":"), default=str).encode
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pure-Python json (no C accelerator): the ordinary encoder
        return encoder
    c_encode = make(None, str, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True)

    def encode(value: Any) -> str:
        if isinstance(value, str):  # a top-level string: the C encoder only handles containers and scalars
            return encoder(value)
        return "".join(c_encode(value, 0))

    return encode


_encode = _make_encoder()


class StoreError(DeskpulseError):
    """The database cannot be opened, migrated or written."""


def explain_sqlite_error(exc: sqlite3.Error, path: Path | str) -> StoreError:
    """One line naming the store and what the operator can do about it.

    Why here: SQLite's own messages ("file is not a database", "database or disk is full") name neither the
    file nor a remedy, and they surface wherever a write happens; the store is the one place that knows both.
    Whatever was committed before stays committed (every page and its cursor commit together).
    """
    text = str(exc)
    low = text.lower()
    if "not a database" in low or "malformed" in low or "corrupt" in low:
        hint = ("it is corrupt or not a deskpulse store: move it aside and run 'deskpulse sync' to rebuild it "
                "(or restore a backup; 'sqlite3 FILE .recover' may rescue its rows)")
    elif "disk is full" in low or "database or disk is full" in low:
        hint = "the disk is full: free space and run again (everything committed so far is kept)"
    elif "readonly" in low or "read-only" in low or "unable to open" in low or "permission" in low:
        hint = "it cannot be written: check that the file and its folder exist and are writable by this user"
    elif "locked" in low or "busy" in low:
        hint = "another process held its write lock too long: run again, or stop the other deskpulse process"
    else:
        hint = "run again; if it persists, check the file with 'sqlite3 FILE \"PRAGMA integrity_check\"'"
    return StoreError(f"store {path}: {text}; {hint}")


def _create_v1(db: sqlite_utils.Database) -> None:
    for name, spec in TABLES.items():
        db.table(name).create(spec["columns"], pk=spec["pk"] if len(spec["pk"]) > 1 else spec["pk"][0],
                        if_not_exists=True)
    for table, cols in INDEXES:
        db.table(table).create_index(list(cols), if_not_exists=True)
    db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")


def _kpi_engine(step: kpi_schema.Step) -> Callable[[sqlite_utils.Database], None]:
    """A migration kpi_engine declares (:mod:`kpi_engine.schema`: its tables, indexes and triggers) as a step here."""

    def migrate(db: sqlite_utils.Database) -> None:
        step.apply(db.conn)

    migrate.__name__ = migrate.__qualname__ = step.name
    migrate.__doc__ = step.doc
    return migrate


# Forward migrations: index i upgrades user_version i -> i+1. Append only; never edit a shipped one.
# Every table of a store is created here: the synced data by v1, the KPI engine's tables, indexes and triggers
# by the steps it declares in kpi_engine/schema.py (fact_store only fills its tables).
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _create_v1,                                # v1 synced data, sync_state, quarantine, outbox, meta
    _kpi_engine(kpi_schema.V2_ANALYTICS),      # v2 message_sentiment, kpi_snapshots, cdi_history
    _kpi_engine(kpi_schema.V3_KPI_INDEXES),    # v3 covering indexes for the KPI passes
    _kpi_engine(kpi_schema.V4_FACTS),          # v4 kpi_dirty (+ triggers), kpi_facts_meta, facts tables
    _kpi_engine(kpi_schema.V5_NAMED_FACTS),    # v5 facts tables with self-explaining column names
    _kpi_engine(kpi_schema.V6_SENTIMENT_QUEUE),  # v6 sentiment_pending (+ triggers on messages)
    _kpi_engine(kpi_schema.V7_ACCOUNT_INDEX),  # v7 idx_tickets_account (the CDI's lifetime counts)
    _kpi_engine(kpi_schema.V8_CDI_LATEST),     # v8 cdi_latest (the latest CDI, reused while current)
    _kpi_engine(kpi_schema.V9_CUSTOMER_MAP),   # v9 customer_map_cache (+ triggers on organizations, people)
]


def record_key(record_id: str | None, raw: Any) -> str:
    """Quarantine key: the vendor id when known, else a hash of the payload (so re-syncs don't pile up)."""
    if record_id:
        return str(record_id)
    blob = raw if isinstance(raw, str) else json.dumps(raw, sort_keys=True, default=str)
    return "sha1:" + hashlib.sha1(blob.encode("utf-8"), usedforsecurity=False).hexdigest()


class Store:
    """One SQLite database. Not shared across threads: open one per thread."""

    def __init__(self, path: Path | str, *, migrate: bool = True) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"store {path}: cannot create its folder ({exc.strerror or exc}); check the "
                                 f"path and that this user may write there") from None
        self._depth = 0
        self._stmt_cache: dict[tuple[str, tuple[str, ...]], str] = {}
        try:
            self.conn = sqlite3.connect(str(path), isolation_level=None, timeout=30.0,
                                        check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=OFF")
            self.conn.execute("PRAGMA cache_size=-16384")  # 16 MiB: keeps a sync under ~150 MB RSS
            self.db = sqlite_utils.Database(self.conn)
            if migrate:
                self.migrate()
        except sqlite3.Error as exc:
            raise explain_sqlite_error(exc, path) from None

    # -- schema -------------------------------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> int:
        """Apply every migration newer than the database; each in its own transaction."""
        version = self.schema_version
        if version > len(MIGRATIONS):
            raise StoreError(
                f"database {self.path} has schema version {version}, newer than this deskpulse "
                f"understands ({len(MIGRATIONS)}); upgrade deskpulse"
            )
        for index in range(version, len(MIGRATIONS)):
            with self.transaction():
                # under the write lock now: another process opening the same new store may have run this
                # step since the version was read above (a step run twice fails: v4's index on a v5 table)
                if self.schema_version > index:
                    continue
                MIGRATIONS[index](self.db)
                self.conn.execute(f"PRAGMA user_version = {index + 1}")
        return self.schema_version

    # -- transactions -------------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, nesting through savepoints; rolls back on any exception."""
        if self._depth:
            name = f"sp{self._depth}"
            self.conn.execute(f"SAVEPOINT {name}")
            self._depth += 1
            try:
                yield self.conn
            except BaseException:
                self.conn.execute(f"ROLLBACK TO {name}")
                self.conn.execute(f"RELEASE {name}")
                raise
            else:
                self.conn.execute(f"RELEASE {name}")
            finally:
                self._depth -= 1
            return
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise explain_sqlite_error(exc, self.path) from None
        self._depth = 1
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException as exc:
            if self.conn.in_transaction:  # SQLite may already have rolled back (e.g. on a full disk)
                self.conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise explain_sqlite_error(exc, self.path) from None
            raise
        finally:
            self._depth = 0

    # -- writes -------------------------------------------------------------------------------------
    def _upsert_sql(self, table: str, cols: tuple[str, ...]) -> str:
        key = (table, cols)
        sql = self._stmt_cache.get(key)
        if sql is None:
            pk = TABLES[table]["pk"]
            updates = ", ".join(f"{c}=excluded.{c}" for c in cols if c not in pk)
            conflict = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
            sql = (f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
                   f"ON CONFLICT({', '.join(pk)}) {conflict}")
            self._stmt_cache[key] = sql
        return sql

    def upsert(self, table: str, rows: Iterable[dict[str, Any]], *, source: str | None = None) -> int:
        """Insert or update rows by primary key. Columns a row omits keep their stored value."""
        spec = TABLES.get(table)
        if spec is None:
            raise StoreError(f"unknown table '{table}'")
        known = spec["columns"]
        json_cols = spec["json"]
        groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        # Per distinct column set (checked once, not per row): the statement's columns, the positions of
        # JSON columns to encode, where ``source`` sits in the row, and the list its value tuples go to.
        plans: dict[tuple[str, ...], tuple[tuple[int, ...], int, list[tuple[Any, ...]]]] = {}
        count = 0
        prefix = () if source is None else (source,)
        encode = _encode
        for row in rows:
            keys = tuple(row)
            plan = plans.get(keys)
            if plan is None:
                for col in keys:
                    if col not in known:
                        raise StoreError(f"table {table} has no column '{col}'")
                cols = keys if source is None else ("source", *(k for k in keys if k != "source"))
                at = keys.index("source") if source is not None and "source" in keys else -1
                plan = plans[keys] = (tuple(i for i, k in enumerate(keys) if k in json_cols), at,
                                      groups.setdefault(cols, []))
            json_at, source_at, bucket = plan
            if json_at:
                values = list(row.values())
                for i in json_at:
                    v = values[i]
                    if v is not None and not isinstance(v, str):
                        values[i] = encode(v)
                if source_at >= 0:
                    del values[source_at]
                bucket.append((*prefix, *values))
            elif source_at >= 0:
                values = list(row.values())
                del values[source_at]
                bucket.append((*prefix, *values))
            else:
                bucket.append((*prefix, *row.values()))
            count += 1
        for cols, values in groups.items():
            self.conn.executemany(self._upsert_sql(table, cols), values)
        return count

    def quarantine(self, source: str, stream: str, record_id: str | None, error: str, raw: Any) -> None:
        blob = raw if isinstance(raw, str) else json.dumps(raw, default=str)
        self.upsert("quarantine", [{
            "source": source, "stream": stream, "record_key": record_key(record_id, raw),
            "record_id": record_id, "error": error[:2000], "raw": blob, "created_at": int(time.time()),
        }])

    # -- reads --------------------------------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[dict[str, Any]]:
        cur = self.conn.execute(sql, params)
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def scalar(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def counts(self, source: str | None = None) -> dict[str, int]:
        """Rows per data table, optionally for one source (what ``demo`` and ``status`` print)."""
        out = {}
        for table in ("tickets", "messages", "people", "organizations", "ratings", "ticket_events",
                      "quarantine"):
            if source is None:
                out[table] = int(self.scalar(f"SELECT count(*) FROM {table}"))
            else:
                out[table] = int(self.scalar(f"SELECT count(*) FROM {table} WHERE source=?", [source]))
        return out

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
