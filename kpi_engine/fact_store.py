"""Per-ticket KPI facts kept in the store, refreshed only for the tickets that changed.

Why: a two-year ``--by month`` run over a million tickets spent most of its time
re-deriving, on every call, the same per-ticket facts from five million messages and
events (first reply, status-history sums, business seconds, every response). Those
facts depend on the ticket's own rows and on a few settings, not on the period asked,
so they are computed once and kept:

``kpi_facts``           one row per ticket in the KPI ticket set (deleted/spam/merged are absent),
                        keyed by the ticket's rowid: dimensions, timestamps, the message and
                        status-history summaries and their business-time values
``kpi_responses``       one row per response (a reply answering a run of customer messages), with
                        the few ticket columns that decide whether a period needs the ticket
                        (so the average-response pass reads one table)
``kpi_status_changes``  the backlog-relevant status changes of reopened tickets (+1 / -1)
``kpi_names``           requester, organization and agent ids as small integers (``*_n`` columns):
                        distinct counts then travel between processes as integer arrays, not
                        millions of strings
``kpi_dirty``           tickets whose rows changed since their facts were computed, filled by
                        triggers on ``tickets``, ``messages`` and ``ticket_events``, so correctness
                        never depends on a caller remembering to refresh
``kpi_facts_meta``      the fingerprint of the settings and code the facts were computed with; a
                        different fingerprint rebuilds everything

The facts are computed by exactly the SQL of :mod:`kpi_engine.facts` (the TEMP-table builder,
run for the changed tickets), so stored and freshly built facts cannot differ. A connection that
cannot write (``mode=ro``) while facts are stale builds the same tables as TEMP tables instead,
which shadow the stored ones for that connection: slower, never wrong.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time

from config.settings import CostSettings, KpiSettings, SlaSettings
from kpi_engine import facts
from kpi_engine.periods import Period
from kpi_engine.transactions import savepoint, writing
from kpi_engine.workspace import Workspace, list_sources

logger = logging.getLogger("deskpulse.kpi.facts")

#: bump when the facts' SQL or columns change: stores rebuild their facts on the next computation
FACTS_VERSION = 6
#: business-time rows reach this far past the refresh (covers tickets dated slightly in the future)
HORIZON = 400 * 86400

KEYED = ("kpi_facts", "kpi_responses", "kpi_status_changes")  # rows per ticket (kid)
TABLES = (*KEYED, "kpi_names")
#: kpi_facts columns, in order (see the module docstring; ``b*`` are business-time epochs)
COLUMNS = ("kid", "source", "id", "c", "sa", "s", "st", "sev", "req", "org", "asg", "grp", "chan", "esc", "v_reop",
           "v_fres", "vsla", "bc", "bs", "fr", "bfr", "nr", "n", "nc", "lc", "fs", "reop", "fq", "bfq", "nreop", "fcr",
           "w_rq", "w_ag", "w_oh", "w_rq_b", "w_ag_b", "w_oh_b", "req_n", "org_n", "asg_n", "awe")


def table_ddl(schema: str) -> list[str]:
    """The facts tables and their indexes in ``schema`` ('main' or 'temp')."""
    cols = ", ".join(["kid INTEGER PRIMARY KEY", "source TEXT NOT NULL", "id TEXT NOT NULL"] + list(COLUMNS[3:]))
    return [
        f"CREATE TABLE IF NOT EXISTS {schema}.kpi_facts ({cols})",
        f"CREATE UNIQUE INDEX IF NOT EXISTS {schema}.kpi_facts_key ON kpi_facts (source, id)",
        # (c, source): month counts read the index alone; (st): the backlog's tickets unsolved now
        f"CREATE INDEX IF NOT EXISTS {schema}.kpi_facts_c ON kpi_facts (c, source)",
        f"CREATE INDEX IF NOT EXISTS {schema}.kpi_facts_st ON kpi_facts (st)",
        f"CREATE INDEX IF NOT EXISTS {schema}.kpi_facts_s ON kpi_facts (s)",
        f"CREATE INDEX IF NOT EXISTS {schema}.kpi_facts_fr ON kpi_facts (fr)",
        f"""CREATE TABLE IF NOT EXISTS {schema}.kpi_responses (kid INTEGER NOT NULL, n INTEGER NOT NULL,
            at INTEGER NOT NULL, cal INTEGER NOT NULL, bus INTEGER, source TEXT NOT NULL, c INTEGER, sa INTEGER,
            st TEXT, PRIMARY KEY (kid, n)) WITHOUT ROWID""",
        f"CREATE INDEX IF NOT EXISTS {schema}.kpi_responses_at ON kpi_responses (at)",
        f"""CREATE TABLE IF NOT EXISTS {schema}.kpi_names (n INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)""",
        f"""CREATE TABLE IF NOT EXISTS {schema}.kpi_status_changes (kid INTEGER NOT NULL, at INTEGER NOT NULL,
            n INTEGER NOT NULL, delta INTEGER NOT NULL, PRIMARY KEY (kid, at, n)) WITHOUT ROWID""",
    ]


def _dirty_triggers() -> list[str]:
    out = []
    for table, key in (("tickets", "id"), ("messages", "ticket_id"), ("ticket_events", "ticket_id")):
        # not INSERT OR IGNORE: an outer statement's conflict policy (the store's upserts) overrides a trigger's
        def mark(row: str, key: str = key) -> str:
            return (f"INSERT INTO kpi_dirty (source, ticket_id) SELECT {row}.source, {row}.{key} "
                    f"WHERE {row}.{key} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM kpi_dirty d "
                    f"WHERE d.source = {row}.source AND d.ticket_id = {row}.{key});")
        for op, rows in (("INSERT", ("NEW",)), ("UPDATE", ("NEW", "OLD")), ("DELETE", ("OLD",))):
            body = " ".join(mark(r) for r in rows)
            out.append(f"CREATE TRIGGER IF NOT EXISTS kpi_dirty_{table}_{op.lower()} AFTER {op} ON {table} "
                       f"BEGIN {body} END")
    return out


def install(conn: sqlite3.Connection) -> None:
    """Create the facts tables, the change log and its triggers (a store migration calls this)."""
    conn.execute("""CREATE TABLE IF NOT EXISTS kpi_dirty (source TEXT NOT NULL, ticket_id TEXT NOT NULL,
        PRIMARY KEY (source, ticket_id)) WITHOUT ROWID""")
    conn.execute("CREATE TABLE IF NOT EXISTS kpi_facts_meta (key TEXT PRIMARY KEY, value TEXT)")
    for sql in table_ddl("main") + _dirty_triggers():
        conn.execute(sql)


def installed(conn: sqlite3.Connection) -> bool:
    """The change log and fingerprint exist (the facts tables themselves are recreated by a rebuild)."""
    names = {r[0] for r in conn.execute("SELECT name FROM main.sqlite_master WHERE type = 'table'")}
    return {"kpi_dirty", "kpi_facts_meta"} <= names


def fingerprint(conn: sqlite3.Connection, kpi: KpiSettings) -> str:
    """What the stored facts depend on besides the tickets' own rows: the code version, the schedule,
    severity map and escalation rules, and the ids the escalation group names resolve to."""
    ws = _workspace(conn, kpi, now=0)
    payload = {"version": FACTS_VERSION, "kpi": kpi.model_dump(mode="json"),
               "escalation_group_ids": facts.escalation_groups(ws)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _workspace(conn: sqlite3.Connection, kpi: KpiSettings, now: int) -> Workspace:
    """The facts' computation: every ticket, no period. The period starts at the epoch so business-time
    values are business seconds since 1970-01-01 (a fixed origin: facts refreshed at different times
    stay comparable, even the sums of an inconsistent status history)."""
    hi = max(now, int(time.time())) + HORIZON
    # no SLA targets: the vendor's own SLA outcome (vsla) is always extracted; the query decides whether to use it
    return Workspace(conn, kpi=kpi, sla=SlaSettings(), costs=CostSettings(), period=Period(0, hi, kpi.timezone),
                     sources=list_sources(conn), by=None, now=now)


def _insert_facts(ws: Workspace, schema: str) -> None:
    """Copy the TEMP facts of :func:`kpi_engine.facts.build` into ``schema``'s tables."""
    from kpi_engine.facts import AWAIT_END, DELTA, FIRST_SOLVE, REOPENS, wait_sql

    ws.execute(f"""INSERT OR IGNORE INTO {schema}.kpi_names (name) SELECT req FROM _kpi_t WHERE req IS NOT NULL
        UNION SELECT org FROM _kpi_t WHERE org IS NOT NULL UNION SELECT asg FROM _kpi_t WHERE asg IS NOT NULL""", {})
    names = {c: f"(SELECT n FROM {schema}.kpi_names WHERE name = k.{c})" for c in ("req", "org", "asg")}
    cal = wait_sql(False)
    bus = wait_sql(True) if ws.business else {"requester": "NULL", "agent": "NULL", "on_hold": "NULL"}
    ws.execute(f"""INSERT INTO {schema}.kpi_facts ({', '.join(COLUMNS)})
        SELECT k.kid, k.source, k.id, k.c, k.sa, k.s, k.st, k.sev, k.req, k.org, k.asg, k.grp, k.chan,
            COALESCE(x.esc, 0) OR COALESCE(k.esc, 0), k.v_reop, k.v_fres, k.vsla, k.bc, k.bs,
            m.fr, {ws.bexpr('bf', 'm.fr')}, m.nr, m.n, m.nc, m.lc,
            e.fs, e.reop, {FIRST_SOLVE}, {ws.bexpr('bq', FIRST_SOLVE)}, {REOPENS},
            ({REOPENS} = 0 AND m.nr = 1 AND (m.lc IS NULL OR m.lc < m.fr)),
            {cal['requester']}, {cal['agent']}, {cal['on_hold']}, {bus['requester']}, {bus['agent']}, {bus['on_hold']},
            {names['req']}, {names['org']}, {names['asg']}, {AWAIT_END}
        FROM _kpi_t k LEFT JOIN _kpi_m m ON m.kid = k.kid LEFT JOIN _kpi_e e ON e.kid = k.kid
            LEFT JOIN _kpi_x x ON x.kid = k.kid{ws.bjoin('bf', 'm.fr')}{ws.bjoin('bq', FIRST_SOLVE)}""", {})
    rows = []
    insert = f"INSERT INTO {schema}.kpi_responses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    for kid, seq, source, c, sa, st in ws.conn.execute("""SELECT m.kid, m.seq, k.source, k.c, k.sa, k.st
            FROM _kpi_m m JOIN _kpi_t k ON k.kid = m.kid WHERE m.nr > 0 AND m.nc > 0"""):
        for n, (cs, cb, rs, rb) in enumerate(facts.runs(seq, ws.business)):
            rows.append((kid, n, rs, rs - cs, None if cb is None or rb is None else rb - cb, source, c, sa, st))
        if len(rows) >= 50_000:
            ws.conn.executemany(insert, rows)
            rows.clear()
    ws.conn.executemany(insert, rows)
    ws.execute(f"""INSERT INTO {schema}.kpi_status_changes (kid, at, n, delta)
        SELECT k.kid, x.created_at, x.rowid, {DELTA} FROM _kpi_t k JOIN _kpi_e e ON e.kid = k.kid
        JOIN ticket_events x ON x.source = k.source AND x.ticket_id = k.id AND x.field = 'status'
        WHERE e.reop > 0 AND {DELTA} <> 0""", {})


def _build(conn: sqlite3.Connection, kpi: KpiSettings, now: int, schema: str, selection: str | None) -> int:
    """Facts for the tickets ``selection`` picks (all when None) into ``schema``; returns the ticket count."""
    ws = _workspace(conn, kpi, now)
    if not ws.sources:
        return 0
    ws.selection = selection if selection is not None else "SELECT rowid FROM tickets"
    try:
        facts.build(ws)
        _insert_facts(ws, schema)
        return int(conn.execute("SELECT COUNT(*) FROM _kpi_t").fetchone()[0])
    finally:
        ws.close()


def _writable(conn: sqlite3.Connection) -> bool:
    try:
        return not conn.execute("PRAGMA main.query_only").fetchone()[0] and not _readonly_file(conn)
    except sqlite3.Error:
        return False


def _readonly_file(conn: sqlite3.Connection) -> bool:
    """True for a ``mode=ro`` connection (SQLite says so only when a write is attempted)."""
    try:
        conn.execute("SAVEPOINT kpi_probe")
        try:
            conn.execute("INSERT OR IGNORE INTO kpi_facts_meta (key, value) VALUES ('probe', NULL)")
            return False
        finally:
            conn.execute("ROLLBACK TO kpi_probe")
            conn.execute("RELEASE kpi_probe")
    except sqlite3.OperationalError:
        return True


def stale(conn: sqlite3.Connection, kpi: KpiSettings) -> tuple[bool, int]:
    """(needs a full rebuild, tickets changed since their facts were computed)."""
    row = conn.execute("SELECT value FROM kpi_facts_meta WHERE key = 'fingerprint'").fetchone()
    full = row is None or row[0] != fingerprint(conn, kpi)
    dirty = int(conn.execute("SELECT COUNT(*) FROM kpi_dirty").fetchone()[0])
    return full, dirty


def refresh(conn: sqlite3.Connection, kpi: KpiSettings, *, now: int | None = None) -> int:
    """Bring the stored facts up to date; returns the number of tickets recomputed (0: already fresh).

    One write transaction: a crash or a concurrent reader never sees half-refreshed facts.
    """
    now = int(time.time()) if now is None else int(now)
    started = time.perf_counter()
    with writing(conn, "kpi_facts"):
        full, dirty = stale(conn, kpi)
        if not full and not dirty:
            return 0
        if not full:
            try:
                with savepoint(conn, "kpi_facts_changed"):
                    count = _refresh_changed(conn, kpi, now)
            except sqlite3.IntegrityError:
                # a fact key is a ticket's rowid, which a VACUUM may renumber: rebuilt under the new ones
                logger.warning("KPI facts no longer match the tickets' row ids (was the store VACUUMed?): "
                               "rebuilding them all")
                full = True
        if full:
            for table in TABLES:  # recreated: a new FACTS_VERSION may have changed their columns
                conn.execute(f"DROP TABLE IF EXISTS main.{table}")
            for sql in table_ddl("main"):
                conn.execute(sql)
            count = _build(conn, kpi, now, "main", None)
            conn.execute("INSERT OR REPLACE INTO kpi_facts_meta (key, value) VALUES ('fingerprint', ?)",
                         [fingerprint(conn, kpi)])
        conn.execute("DELETE FROM kpi_dirty")
    logger.info("KPI facts %s: %d tickets in %.2fs", "rebuilt" if full else "refreshed", count,
                time.perf_counter() - started)
    return count


def _refresh_changed(conn: sqlite3.Connection, kpi: KpiSettings, now: int) -> int:
    """Replace the facts of the tickets in ``kpi_dirty`` (a deleted ticket's facts just go)."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS _kpi_dirty_kids (kid INTEGER PRIMARY KEY)")
    conn.execute("""INSERT OR IGNORE INTO _kpi_dirty_kids SELECT f.kid FROM kpi_dirty d
        JOIN main.kpi_facts f ON f.source = d.source AND f.id = d.ticket_id""")
    for table in KEYED:
        conn.execute(f"DELETE FROM main.{table} WHERE kid IN (SELECT kid FROM _kpi_dirty_kids)")
    conn.execute("DROP TABLE temp._kpi_dirty_kids")
    return _build(conn, kpi, now, "main", "SELECT t.rowid FROM kpi_dirty d JOIN tickets t "
                                          "ON t.source = d.source AND t.id = d.ticket_id")


STORED, UNCOMMITTED, TEMP = "stored", "uncommitted", "temp"


def prepare(conn: sqlite3.Connection, kpi: KpiSettings, *, now: int | None = None) -> str:
    """Make facts current for this connection and say where they are:

    ``STORED``       current and committed: shard workers on other connections may read them
    ``UNCOMMITTED``  current for this connection only (refreshed inside the caller's open transaction)
    ``TEMP``         TEMP tables of this connection (a read-only store with stale facts, or a database
                     without the facts tables); drop them with :func:`drop_temp`
    """
    if installed(conn):
        full, dirty = stale(conn, kpi)
        if not full and not dirty:  # current: no write, so no wait for a sync holding the write lock
            return STORED
        if _writable(conn):
            outer = conn.in_transaction
            changed = refresh(conn, kpi, now=now)
            return UNCOMMITTED if outer and changed else STORED
        logger.info("the store is read-only and its KPI facts are stale: computing them for this run only")
    began = not conn.in_transaction
    for sql in table_ddl("temp"):
        conn.execute(sql)
    _build(conn, kpi, int(time.time()) if now is None else int(now), "temp", None)
    if began and conn.in_transaction:  # sqlite3's legacy mode opened one for the INSERTs: end it
        conn.commit()
    return TEMP


def drop_temp(conn: sqlite3.Connection) -> None:
    for table in TABLES:
        conn.execute(f"DROP TABLE IF EXISTS temp.{table}")

