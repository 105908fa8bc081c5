"""The tables, indexes and triggers kpi_engine keeps in the store, as migrations the store runs.

Why the store runs them: ``sync/store.py`` ``MIGRATIONS`` is the one list of every table a store holds,
applied in order under ``PRAGMA user_version``. kpi_engine declares its part here, next to the code that
reads it, as plain SQL statements; it never creates a table of the store itself (the TEMP tables of one
computation, and the TEMP copy of the facts a read-only store needs, aside).

Append only, like the store's own list: a shipped step (:data:`V2_ANALYTICS` ... :data:`V5_NAMED_FACTS`) is never
edited, because stores already ran it. A new stored fact column means a new step (and a bump of
``fact_store.FACTS_VERSION``, so the facts, a cache, are recomputed); :data:`FACTS_TABLES` then describes
the tables as the newest step leaves them.

What lives here (see :mod:`kpi_engine.fact_store` for what the facts mean):

``message_sentiment``   VADER compound per customer message (:mod:`kpi_engine.sentiment`)
``kpi_snapshots``       the catalog of each ISO week (:mod:`kpi_engine.snapshots`)
``cdi_history``         the daily CDI per account (:mod:`kpi_engine.distress`)
``idx_*_kpi``           covering indexes on synced tables for the per-ticket passes (:mod:`kpi_engine.facts`)
``idx_tickets_account`` the tickets in account order, for the CDI's lifetime counts (:mod:`kpi_engine.distress_data`)

``kpi_facts``           one row per ticket in the KPI ticket set, keyed by the ticket's rowid
``kpi_responses``       one row per response (a reply answering a run of customer messages)
``kpi_status_changes``  the backlog-relevant status changes of reopened tickets (+1 / -1)
``kpi_id_numbers``      requester, organization and agent ids as small integers (``*_number`` columns)
``kpi_dirty``           tickets changed since their facts were computed, filled by triggers on ``tickets``,
                        ``messages`` and ``ticket_events`` (read by the daemon's health metrics too)
``kpi_facts_meta``      the fingerprint the stored facts were computed with
``sentiment_pending``   messages whose sentiment is still to score, filled by triggers on ``messages``
``cdi_latest``          the latest CDI result whole (:mod:`kpi_engine.distress_latest`)
``customer_map_cache``  the resolved customer map per settings, valid for one ``customer_inputs`` generation,
                        which triggers on ``organizations`` and ``people`` bump (:mod:`kpi_engine.customers`)
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """One migration: SQL statements run in order, in the store's migration transaction."""

    name: str
    doc: str
    statements: tuple[str, ...]

    def apply(self, conn: sqlite3.Connection) -> None:
        for sql in self.statements:
            conn.execute(sql)


# -- v2, v3 (shipped; frozen): the SQL sync/store.py ran for them (v2 through sqlite-utils, which wrote exactly
# these statements), moved here unchanged so kpi_engine's part of the schema is declared in one module --------

V2_ANALYTICS = Step(
    "v2_analytics", "Derived data: sentiment scored once per message, weekly KPI snapshots, daily CDI per account.", (
        'CREATE TABLE IF NOT EXISTS "message_sentiment" (\n   "source" TEXT,\n   "message_id" TEXT,\n'
        '   "compound" REAL,\n   "scored_at" INTEGER,\n   PRIMARY KEY ("source", "message_id")\n)',
        'CREATE TABLE IF NOT EXISTS "kpi_snapshots" (\n   "period" TEXT,\n   "scope" TEXT,\n   "since" INTEGER,\n'
        '   "until" INTEGER,\n   "computed_at" INTEGER,\n   "kpis" TEXT,\n   PRIMARY KEY ("period", "scope")\n)',
        'CREATE TABLE IF NOT EXISTS "cdi_history" (\n   "day" TEXT,\n   "account" TEXT,\n   "source" TEXT,\n'
        '   "organization_id" TEXT,\n   "requester_id" TEXT,\n   "cdi" INTEGER,\n   "band" TEXT,\n'
        '   "priority" REAL,\n   "components" TEXT,\n   "computed_at" INTEGER,\n   PRIMARY KEY ("day", "account")\n)',
        'CREATE INDEX IF NOT EXISTS "idx_cdi_history_account_day"\n    ON "cdi_history" ("account", "day")',
    ))

V3_KPI_INDEXES = Step(
    "v3_kpi_indexes", "Covering indexes for the KPI engine's per-ticket passes (measured with bench/bench_kpi.py).", (
        "CREATE INDEX IF NOT EXISTS idx_messages_kpi ON messages "
        "(source, ticket_id, created_at, author_role, public, kind)",
        "CREATE INDEX IF NOT EXISTS idx_ticket_events_kpi ON ticket_events "
        "(source, ticket_id, field, created_at, new_value, old_value)",
        "CREATE INDEX IF NOT EXISTS idx_tickets_kpi ON tickets (source, created_at, status, is_spam, is_merged)",
    ))

# -- v4 (shipped; frozen) ---------------------------------------------------------------------------------------


def _v4_dirty_triggers() -> tuple[str, ...]:
    """The change log's triggers (frozen with v4; ``fact_store.install`` generated exactly these)."""
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
    return tuple(out)


#: what ``fact_store.install()`` created when v4 shipped (its facts tables had one- and two-letter columns;
#: :data:`V5_NAMED_FACTS` replaces them)
V4_FACTS = Step("v4_kpi_facts", "Stored per-ticket KPI facts and the triggers that log which tickets changed since.", (
    """CREATE TABLE IF NOT EXISTS kpi_dirty (source TEXT NOT NULL, ticket_id TEXT NOT NULL,
        PRIMARY KEY (source, ticket_id)) WITHOUT ROWID""",
    "CREATE TABLE IF NOT EXISTS kpi_facts_meta (key TEXT PRIMARY KEY, value TEXT)",
    "CREATE TABLE IF NOT EXISTS main.kpi_facts (kid INTEGER PRIMARY KEY, source TEXT NOT NULL, id TEXT NOT NULL, "
    "c, sa, s, st, sev, req, org, asg, grp, chan, esc, v_reop, v_fres, vsla, bc, bs, fr, bfr, nr, n, nc, lc, fs, "
    "reop, fq, bfq, nreop, fcr, w_rq, w_ag, w_oh, w_rq_b, w_ag_b, w_oh_b, req_n, org_n, asg_n, awe)",
    "CREATE UNIQUE INDEX IF NOT EXISTS main.kpi_facts_key ON kpi_facts (source, id)",
    "CREATE INDEX IF NOT EXISTS main.kpi_facts_c ON kpi_facts (c, source)",
    "CREATE INDEX IF NOT EXISTS main.kpi_facts_st ON kpi_facts (st)",
    "CREATE INDEX IF NOT EXISTS main.kpi_facts_s ON kpi_facts (s)",
    "CREATE INDEX IF NOT EXISTS main.kpi_facts_fr ON kpi_facts (fr)",
    """CREATE TABLE IF NOT EXISTS main.kpi_responses (kid INTEGER NOT NULL, n INTEGER NOT NULL,
            at INTEGER NOT NULL, cal INTEGER NOT NULL, bus INTEGER, source TEXT NOT NULL, c INTEGER, sa INTEGER,
            st TEXT, PRIMARY KEY (kid, n)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS main.kpi_responses_at ON kpi_responses (at)",
    "CREATE TABLE IF NOT EXISTS main.kpi_names (n INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
    """CREATE TABLE IF NOT EXISTS main.kpi_status_changes (kid INTEGER NOT NULL, at INTEGER NOT NULL,
            n INTEGER NOT NULL, delta INTEGER NOT NULL, PRIMARY KEY (kid, at, n)) WITHOUT ROWID""",
    *_v4_dirty_triggers(),
))

# -- v5 (shipped; frozen): the facts tables with column names that explain themselves --------------------------

#: table -> column definitions, as v5 creates them. ``*_business`` columns are business-time epochs (business
#: seconds since 1970-01-01 in the configured schedule); ``*_seconds`` durations; ``*_at`` epochs (UTC).
_V5_TABLES: dict[str, tuple[str, ...]] = {
    "kpi_facts": (
        "ticket_rowid INTEGER PRIMARY KEY",   # tickets.rowid: the fact key (shards are ranges of it)
        "source TEXT NOT NULL", "ticket_id TEXT NOT NULL",
        "created_at",
        "synced_solved_at",                   # tickets.solved_at as synced (kept by some vendors after a reopen)
        "solved_at",                          # latest solve, only for a ticket solved or closed now
        "status", "severity", "requester_id", "organization_id", "assignee_id", "group_id", "channel",
        "escalated",                          # 0/1: escalation rules ([kpi.escalation]) met now or by a change
        "vendor_reopens", "vendor_first_resolution_s", "vendor_sla_status",
        "created_at_business", "solved_at_business",
        "first_reply_at", "first_reply_at_business",
        "agent_replies",                      # public agent messages that are not the description
        "public_messages",                    # public customer + agent messages, descriptions included
        "customer_messages", "last_customer_message_at",
        "history_first_solved_at",            # first solve in the status history (NULL: no usable history)
        "history_reopens",                    # solved -> unsolved changes in the status history
        "first_solved_at", "first_solved_at_business",  # history's first solve, else the vendor's figure
        "reopens",                            # history's reopens, else the vendor's count
        "first_contact_resolved",             # 0/1: no reopen, one agent reply, no customer message after it
        "requester_wait_seconds", "agent_wait_seconds", "on_hold_seconds",
        "requester_wait_seconds_business", "agent_wait_seconds_business", "on_hold_seconds_business",
        "requester_number", "organization_number", "assignee_number",  # kpi_id_numbers.number of the ids
        "awaiting_first_reply_until",         # min(first agent reply, first solve)
    ),
    "kpi_responses": (
        "ticket_rowid INTEGER NOT NULL", "response_number INTEGER NOT NULL",
        "responded_at INTEGER NOT NULL", "wait_seconds INTEGER NOT NULL", "wait_seconds_business INTEGER",
        # the ticket's columns that decide whether a period needs it (so that pass reads one table)
        "source TEXT NOT NULL", "created_at INTEGER", "synced_solved_at INTEGER", "status TEXT",
    ),
    "kpi_id_numbers": ("number INTEGER PRIMARY KEY", "id TEXT NOT NULL UNIQUE"),
    "kpi_status_changes": (
        "ticket_rowid INTEGER NOT NULL", "changed_at INTEGER NOT NULL",
        "event_rowid INTEGER NOT NULL",       # ticket_events.rowid (two changes in one second stay apart)
        "unsolved_delta INTEGER NOT NULL",    # +1 solved -> unsolved, -1 into a solved status
    ),
}
_V5_KEYS = {"kpi_responses": "PRIMARY KEY (ticket_rowid, response_number)",
            "kpi_status_changes": "PRIMARY KEY (ticket_rowid, changed_at, event_rowid)"}
_V5_INDEXES = (
    "CREATE UNIQUE INDEX IF NOT EXISTS {schema}.kpi_facts_key ON kpi_facts (source, ticket_id)",
    # (created_at, source): month counts read the index alone; (status): the backlog's tickets unsolved now
    "CREATE INDEX IF NOT EXISTS {schema}.kpi_facts_created_at ON kpi_facts (created_at, source)",
    "CREATE INDEX IF NOT EXISTS {schema}.kpi_facts_status ON kpi_facts (status)",
    "CREATE INDEX IF NOT EXISTS {schema}.kpi_facts_solved_at ON kpi_facts (solved_at)",
    "CREATE INDEX IF NOT EXISTS {schema}.kpi_facts_first_reply_at ON kpi_facts (first_reply_at)",
    "CREATE INDEX IF NOT EXISTS {schema}.kpi_responses_responded_at ON kpi_responses (responded_at)",
)


def _v5_ddl(schema: str) -> tuple[str, ...]:
    out = []
    for table, cols in _V5_TABLES.items():
        key = _V5_KEYS.get(table)
        body = ", ".join([*cols, key] if key else cols)
        out.append(f"CREATE TABLE IF NOT EXISTS {schema}.{table} ({body}){' WITHOUT ROWID' if key else ''}")
    return (*out, *(sql.format(schema=schema) for sql in _V5_INDEXES))


V5_NAMED_FACTS = Step(
    "v5_kpi_facts_named",
    "The facts tables again, with column names that explain themselves; their rows are recomputed.",
    ("DROP TABLE IF EXISTS main.kpi_facts", "DROP TABLE IF EXISTS main.kpi_responses",
     "DROP TABLE IF EXISTS main.kpi_status_changes", "DROP TABLE IF EXISTS main.kpi_names",
     "DELETE FROM kpi_facts_meta WHERE key = 'fingerprint'",  # no facts: the next computation rebuilds them
     *_v5_ddl("main")))

# -- v6: the messages sentiment has yet to score, logged by triggers ------------------------------------------

#: which messages :func:`kpi_engine.sentiment.score_pending` scores: public customer messages
_SCORED = "NEW.author_role = 'customer' AND NEW.public = 1"
_QUEUE = ("INSERT INTO sentiment_pending (message_rowid) SELECT NEW.rowid WHERE NOT EXISTS "
          "(SELECT 1 FROM sentiment_pending WHERE message_rowid = NEW.rowid);")

V6_SENTIMENT_QUEUE = Step(
    "v6_sentiment_queue",
    "Messages waiting for a sentiment score, logged by triggers (finding them was a scan of every message).", (
        "CREATE TABLE IF NOT EXISTS sentiment_pending (message_rowid INTEGER PRIMARY KEY)",
        # a re-synced message is upserted unchanged: only a new text, role or visibility needs a new score
        f"CREATE TRIGGER IF NOT EXISTS sentiment_pending_insert AFTER INSERT ON messages WHEN {_SCORED} "
        f"BEGIN {_QUEUE} END",
        f"CREATE TRIGGER IF NOT EXISTS sentiment_pending_update AFTER UPDATE OF body, author_role, public ON messages "
        f"WHEN {_SCORED} AND (OLD.body IS NOT NEW.body OR OLD.author_role IS NOT NEW.author_role "
        f"OR OLD.public IS NOT NEW.public) BEGIN {_QUEUE} END",
        # what the scan used to find: every public customer message without a score
        "INSERT OR IGNORE INTO sentiment_pending (message_rowid) SELECT m.rowid FROM messages AS m "
        "WHERE m.author_role = 'customer' AND m.public = 1 AND NOT EXISTS "
        "(SELECT 1 FROM message_sentiment AS s WHERE s.source = m.source AND s.message_id = m.id)",
    ))

# -- v7: tickets in account order --------------------------------------------------------------------------------

V7_ACCOUNT_INDEX = Step(
    "v7_tickets_by_account",
    "A covering index of the tickets by organization and requester (measured with bench/bench_report.py).", (
        # the CDI's lifetime counts (kpi_engine.distress_data._lifetime) group every ticket by its account: read
        # in this order they need no sort of a million rows (2.0 -> 0.7 s on the bench store)
        "CREATE INDEX IF NOT EXISTS idx_tickets_account ON tickets "
        "(source, organization_id, requester_id, created_at, status, is_spam, is_merged)",
    ))

# -- v8: the latest CDI, whole ------------------------------------------------------------------------------------

V8_CDI_LATEST = Step(
    "v8_cdi_latest",
    "The latest CDI result kept whole, reused while no sync has run since (kpi_engine.distress_latest).", (
        "CREATE TABLE IF NOT EXISTS cdi_latest (scope TEXT PRIMARY KEY, day TEXT NOT NULL, "
        "computed_at INTEGER NOT NULL, fingerprint TEXT NOT NULL, result TEXT NOT NULL)",
    ))

# -- v9: the customer map, kept until an organization or a person changes -----------------------------------------

_BUMP = "BEGIN UPDATE customer_inputs SET generation = generation + 1; END"
#: what kpi_engine.customers.resolve reads of each table (besides the key, which an update never changes)
_CUSTOMER_COLUMNS = {"organizations": ("name", "raw"), "people": ("organization_id", "email", "name", "role")}

V9_CUSTOMER_MAP = Step(
    "v9_customer_map",
    "The resolved customer map kept under a generation that triggers on organizations and people bump.", (
        "CREATE TABLE IF NOT EXISTS customer_inputs (one INTEGER PRIMARY KEY CHECK (one = 1), "
        "generation INTEGER NOT NULL)",
        "INSERT OR IGNORE INTO customer_inputs (one, generation) VALUES (1, 0)",
        "CREATE TABLE IF NOT EXISTS customer_map_cache (fingerprint TEXT PRIMARY KEY, generation INTEGER NOT NULL, "
        "map TEXT NOT NULL)",
        *(f"CREATE TRIGGER IF NOT EXISTS customer_inputs_{table}_{op.lower()} AFTER {op} ON {table} {_BUMP}"
          for table in _CUSTOMER_COLUMNS for op in ("INSERT", "DELETE")),
        # a re-synced record is upserted unchanged: only a change of what matching reads counts
        *(f"CREATE TRIGGER IF NOT EXISTS customer_inputs_{table}_update AFTER UPDATE OF {', '.join(cols)} ON {table} "
          f"WHEN {' OR '.join(f'OLD.{c} IS NOT NEW.{c}' for c in cols)} {_BUMP}"
          for table, cols in _CUSTOMER_COLUMNS.items()),
    ))

#: every kpi_engine step, oldest first (sync/store.py MIGRATIONS lists each at its place among the store's own)
MIGRATIONS: tuple[Step, ...] = (V2_ANALYTICS, V3_KPI_INDEXES, V4_FACTS, V5_NAMED_FACTS, V6_SENTIMENT_QUEUE,
                                V7_ACCOUNT_INDEX, V8_CDI_LATEST, V9_CUSTOMER_MAP)

# -- the facts tables as the newest step leaves them --------------------------------------------------------------

#: table -> column names, in order (what :mod:`kpi_engine.fact_store` writes and checks the store has)
FACTS_TABLES: dict[str, tuple[str, ...]] = {t: tuple(c.split()[0] for c in cols) for t, cols in _V5_TABLES.items()}
#: the change log and the fingerprint (created by v4, unchanged since)
STATE_TABLES = ("kpi_dirty", "kpi_facts_meta")


def facts_ddl(schema: str) -> tuple[str, ...]:
    """The newest facts tables and their indexes in ``schema``: ``temp`` for the copy a read-only store's
    computation makes for itself (the store's own are made by the migrations)."""
    return _v5_ddl(schema)


def dirty_triggers() -> tuple[str, ...]:
    """The change log's triggers (``CREATE TRIGGER IF NOT EXISTS``), as the newest step leaves them."""
    return _v4_dirty_triggers()
