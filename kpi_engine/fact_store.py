"""Per-ticket KPI facts kept in the store, refreshed only for the tickets that changed.

Why: a two-year ``--by month`` run over a million tickets spent most of its time
re-deriving, on every call, the same per-ticket facts from five million messages and
events (first reply, status-history sums, business seconds, every response). Those
facts depend on the ticket's own rows and on a few settings, not on the period asked,
so they are computed once and kept. The tables (declared in :mod:`kpi_engine.schema`, created by the
store's migrations; this module only fills them):

``kpi_facts``           one row per ticket in the KPI ticket set (deleted/spam/merged are absent),
                        keyed by the ticket's rowid (``ticket_rowid``): dimensions, timestamps, the
                        message and status-history summaries and their business-time values
                        (:data:`FACT_VALUES` says how each column is computed)
``kpi_responses``       one row per response (a reply answering a run of customer messages), with
                        the few ticket columns that decide whether a period needs the ticket
                        (so the average-response pass reads one table)
``kpi_status_changes``  the backlog-relevant status changes of reopened tickets (+1 / -1)
``kpi_id_numbers``      requester, organization and agent ids as small integers (``*_number`` columns):
                        distinct counts then travel between processes as integer arrays, not
                        millions of strings
``kpi_dirty``           tickets whose rows changed since their facts were computed, filled by
                        triggers on ``tickets``, ``messages`` and ``ticket_events``, so correctness
                        never depends on a caller remembering to refresh
``kpi_facts_meta``      the fingerprint of the settings and code the facts were computed with; a
                        different fingerprint recomputes everything (:data:`FACTS_VERSION`)

The facts are computed by exactly the SQL of :mod:`kpi_engine.facts` (the TEMP-table builder,
run for the changed tickets), so stored and freshly built facts cannot differ. A connection that
cannot write (``mode=ro``) while facts are stale, or a store whose migrations predate these tables,
builds the same tables as TEMP tables instead, which shadow the stored ones for that connection:
slower, never wrong.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time

from config.settings import CostSettings, KpiSettings, SlaSettings
from kpi_engine import facts, schema
from kpi_engine.facts import AWAIT_END, DELTA, FIRST_SOLVE, REOPENS, wait_sql
from kpi_engine.periods import Period
from kpi_engine.transactions import savepoint, writing
from kpi_engine.workspace import Workspace, list_sources

logger = logging.getLogger("deskpulse.kpi.facts")

#: bump when the facts' SQL or meaning change: stores recompute their facts on the next computation (a change of
#: the stored columns also needs a migration in :mod:`kpi_engine.schema`)
FACTS_VERSION = 7
#: business-time rows reach this far past the refresh (covers tickets dated slightly in the future)
HORIZON = 400 * 86400

KEYED = ("kpi_facts", "kpi_responses", "kpi_status_changes")  # rows per ticket (ticket_rowid)
TABLES = tuple(schema.FACTS_TABLES)  # the facts tables (created by the store's migrations, filled here)

#: kpi_facts column -> its value, from the TEMP tables of :func:`kpi_engine.facts.build` (aliases: k the ticket,
#: m its messages, e its status history, x its escalations; bf / bq the business-day rows of the first reply /
#: first solve). Filled in by :func:`_fact_values` (some values depend on the schedule).
FACT_VALUES: dict[str, str] = {
    "ticket_rowid": "k.ticket_rowid", "source": "k.source", "ticket_id": "k.ticket_id",
    "created_at": "k.created_at", "synced_solved_at": "k.synced_solved_at", "solved_at": "k.solved_at",
    "status": "k.status", "severity": "k.severity", "requester_id": "k.requester_id",
    "organization_id": "k.organization_id", "assignee_id": "k.assignee_id", "group_id": "k.group_id",
    "channel": "k.channel", "escalated": "COALESCE(x.escalated, 0) OR COALESCE(k.escalated, 0)",
    "vendor_reopens": "k.vendor_reopens", "vendor_first_resolution_s": "k.vendor_first_resolution_s",
    "vendor_sla_status": "k.vendor_sla_status", "created_at_business": "k.created_at_business",
    "solved_at_business": "k.solved_at_business", "first_reply_at": "m.first_reply_at",
    "first_reply_at_business": "{first_reply_at_business}", "agent_replies": "m.agent_replies",
    "public_messages": "m.public_messages", "customer_messages": "m.customer_messages",
    "last_customer_message_at": "m.last_customer_message_at",
    "history_first_solved_at": "e.history_first_solved_at", "history_reopens": "e.history_reopens",
    "first_solved_at": FIRST_SOLVE, "first_solved_at_business": "{first_solved_at_business}", "reopens": REOPENS,
    "first_contact_resolved": (f"({REOPENS} = 0 AND m.agent_replies = 1 AND (m.last_customer_message_at IS NULL "
                               "OR m.last_customer_message_at < m.first_reply_at))"),
    "requester_wait_seconds": "{requester}", "agent_wait_seconds": "{agent}", "on_hold_seconds": "{on_hold}",
    "requester_wait_seconds_business": "{requester_business}", "agent_wait_seconds_business": "{agent_business}",
    "on_hold_seconds_business": "{on_hold_business}",
    "requester_number": "{requester_number}", "organization_number": "{organization_number}",
    "assignee_number": "{assignee_number}", "awaiting_first_reply_until": AWAIT_END,
}


def installed(conn: sqlite3.Connection) -> bool:
    """The store's migrations made the facts tables this code fills, with these columns, and the change log.

    False for a store an older deskpulse migrated (v3: no facts; v4: the short-named columns) and for a
    read-only copy of one: its computation then uses TEMP facts of its own (slower, never wrong).
    """
    for table, columns in schema.FACTS_TABLES.items():
        have = tuple(r[1] for r in conn.execute(f"PRAGMA main.table_info({table})"))
        if have != columns:
            return False
    names = {r[0] for r in conn.execute("SELECT name FROM main.sqlite_master WHERE type = 'table'")}
    return set(schema.STATE_TABLES) <= names


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
    # no SLA targets: the vendor's own SLA outcome (vendor_sla_status) is always extracted; a query decides its use
    return Workspace(conn, kpi=kpi, sla=SlaSettings(), costs=CostSettings(), period=Period(0, hi, kpi.timezone),
                     sources=list_sources(conn), by=None, now=now)


def _fact_values(ws: Workspace, db: str) -> dict[str, str]:
    """:data:`FACT_VALUES` with the values that depend on the schedule and on ``db``'s id numbers filled in."""
    cal = wait_sql(False)
    bus = wait_sql(True) if ws.business else {"requester": "NULL", "agent": "NULL", "on_hold": "NULL"}
    fill = {
        "first_reply_at_business": ws.bexpr("bf", "m.first_reply_at"),
        "first_solved_at_business": ws.bexpr("bq", FIRST_SOLVE),
        **cal, **{f"{name}_business": value for name, value in bus.items()},
        **{f"{who}_number": f"(SELECT number FROM {db}.kpi_id_numbers WHERE id = k.{who}_id)"
           for who in ("requester", "organization", "assignee")},
    }
    return {column: value.format(**fill) if value.startswith("{") else value for column, value in FACT_VALUES.items()}


def _insert_facts(ws: Workspace, db: str) -> None:
    """Copy the TEMP facts of :func:`kpi_engine.facts.build` into ``db``'s (main or temp) tables."""
    ws.execute(f"""INSERT OR IGNORE INTO {db}.kpi_id_numbers (id)
        SELECT requester_id FROM _kpi_tickets WHERE requester_id IS NOT NULL
        UNION SELECT organization_id FROM _kpi_tickets WHERE organization_id IS NOT NULL
        UNION SELECT assignee_id FROM _kpi_tickets WHERE assignee_id IS NOT NULL""", {})
    values = _fact_values(ws, db)
    ws.execute(f"""INSERT INTO {db}.kpi_facts ({', '.join(values)})
        SELECT {', '.join(values.values())}
        FROM _kpi_tickets k LEFT JOIN _kpi_messages m ON m.ticket_rowid = k.ticket_rowid
            LEFT JOIN _kpi_status_history e ON e.ticket_rowid = k.ticket_rowid
            LEFT JOIN _kpi_escalations x ON x.ticket_rowid = k.ticket_rowid
            {ws.bjoin('bf', 'm.first_reply_at')}{ws.bjoin('bq', FIRST_SOLVE)}""", {})
    rows = []
    columns = schema.FACTS_TABLES["kpi_responses"]
    insert = f"INSERT INTO {db}.kpi_responses ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    for rowid, sequence, source, created, synced_solved, status in ws.conn.execute(
            """SELECT m.ticket_rowid, m.sequence, k.source, k.created_at, k.synced_solved_at, k.status
            FROM _kpi_messages m JOIN _kpi_tickets k ON k.ticket_rowid = m.ticket_rowid
            WHERE m.agent_replies > 0 AND m.customer_messages > 0"""):
        for n, (cs, cb, rs, rb) in enumerate(facts.runs(sequence, ws.business)):
            rows.append((rowid, n, rs, rs - cs, None if cb is None or rb is None else rb - cb, source, created,
                         synced_solved, status))
        if len(rows) >= 50_000:
            ws.conn.executemany(insert, rows)
            rows.clear()
    ws.conn.executemany(insert, rows)
    ws.execute(f"""INSERT INTO {db}.kpi_status_changes (ticket_rowid, changed_at, event_rowid, unsolved_delta)
        SELECT k.ticket_rowid, x.created_at, x.rowid, {DELTA} FROM _kpi_tickets k
        JOIN _kpi_status_history e ON e.ticket_rowid = k.ticket_rowid
        JOIN ticket_events x ON x.source = k.source AND x.ticket_id = k.ticket_id AND x.field = 'status'
        WHERE e.history_reopens > 0 AND {DELTA} <> 0""", {})


def _build(conn: sqlite3.Connection, kpi: KpiSettings, now: int, db: str, selection: str | None) -> int:
    """Facts for the tickets ``selection`` picks (all when None) into ``db``; returns the ticket count."""
    ws = _workspace(conn, kpi, now)
    if not ws.sources:
        return 0
    ws.selection = selection if selection is not None else "SELECT rowid FROM tickets"
    try:
        facts.build(ws)
        _insert_facts(ws, db)
        return int(conn.execute("SELECT COUNT(*) FROM _kpi_tickets").fetchone()[0])
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
            for table in TABLES:  # emptied, not recreated: the tables are the migrations' (kpi_engine.schema)
                conn.execute(f"DELETE FROM main.{table}")
            count = _build(conn, kpi, now, "main", None)
            conn.execute("INSERT OR REPLACE INTO kpi_facts_meta (key, value) VALUES ('fingerprint', ?)",
                         [fingerprint(conn, kpi)])
        conn.execute("DELETE FROM kpi_dirty")
    logger.info("KPI facts %s: %d tickets in %.2fs", "rebuilt" if full else "refreshed", count,
                time.perf_counter() - started)
    return count


def _refresh_changed(conn: sqlite3.Connection, kpi: KpiSettings, now: int) -> int:
    """Replace the facts of the tickets in ``kpi_dirty`` (a deleted ticket's facts just go)."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS _kpi_dirty_rowids (ticket_rowid INTEGER PRIMARY KEY)")
    conn.execute("""INSERT OR IGNORE INTO _kpi_dirty_rowids SELECT f.ticket_rowid FROM kpi_dirty d
        JOIN main.kpi_facts f ON f.source = d.source AND f.ticket_id = d.ticket_id""")
    for table in KEYED:
        conn.execute(f"DELETE FROM main.{table} WHERE ticket_rowid IN "
                     "(SELECT ticket_rowid FROM _kpi_dirty_rowids)")
    conn.execute("DROP TABLE temp._kpi_dirty_rowids")
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
    for sql in schema.facts_ddl("temp"):
        conn.execute(sql)
    _build(conn, kpi, int(time.time()) if now is None else int(now), "temp", None)
    if began and conn.in_transaction:  # sqlite3's legacy mode opened one for the INSERTs: end it
        conn.commit()
    return TEMP


def drop_temp(conn: sqlite3.Connection) -> None:
    for table in TABLES:
        conn.execute(f"DROP TABLE IF EXISTS temp.{table}")

