"""Stored KPI facts (kpi_engine.fact_store): an incremental refresh leaves exactly what a full rebuild and a
fresh store give; the triggers log exactly the changed tickets; a settings change rebuilds; a read-only
connection never writes; a failed refresh changes nothing; shards and the v4 migration agree."""

from __future__ import annotations

import contextlib
import sqlite3
import sys
import warnings
from collections.abc import Callable, Collection
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.settings import CostSettings, EscalationSettings, KpiSettings, SlaSettings
from kpi_engine import fact_store, facts, schema
from kpi_engine.engine import compute
from kpi_engine.periods import Period
from kpi_engine.workspace import sql_list
from sync.store import MIGRATIONS, TABLES, Store
from tests.test_kpi_fixtures import DAY, HOUR, WEEKDAYS_9_17, Desk, h

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import gen_store  # noqa: E402

with warnings.catch_warnings():
    # Hypothesis imports libcst to suggest a patch for a failing example; that import warns (DeprecationWarning
    # from mypy_extensions), and filterwarnings=error then turns the test failure into an INTERNALERROR.
    warnings.simplefilter("ignore", DeprecationWarning)
    with contextlib.suppress(ImportError):
        import hypothesis.extra._patching  # noqa: E402, F401

TZ = "Europe/Berlin"
KPI = KpiSettings(timezone=TZ, business_hours=WEEKDAYS_9_17)
#: calendar time only, for the tests of the mechanism itself: a build with business hours loads the business
#: time of every day since 1970 (about 0.2 s a build, whatever the store's size)
CAL = KpiSettings(timezone=TZ)
CAL_BILLING = KpiSettings(timezone=TZ, escalation=EscalationSettings(tags=["escalated", "billing"]))
SLA = SlaSettings(first_reply={3: 60, 2: 240, 1: 480}, resolution={3: 480, 2: 1440, 1: 4320})
COSTS = CostSettings(monthly_total=9000)
END = int(Period.from_dates(date(2026, 4, 20), date(2026, 4, 21), TZ).since)
SINCE = int(Period.from_dates(date(2026, 2, 1), date(2026, 2, 2), TZ).since)
BYS = (None, "month", "agent")
#: the ticket data a fresh copy of a store needs (the facts tables are what is under test: never copied)
DATA_TABLES = ("organizations", "people", "groups", "tickets", "messages", "ticket_events", "ratings", "time_entries")
STATE_TABLES = (*fact_store.TABLES, "kpi_dirty", "kpi_facts_meta")
ID_NUMBERS = ("requester_number", "organization_number", "assignee_number")  # kpi_id_numbers.number


# -- helpers --------------------------------------------------------------------------------------------------


def generate(store: Store, *, tickets: int = 200, seed: int = 11, days: int = 90) -> Store:
    gen = gen_store.Gen(store, tickets=tickets, seed=seed, end=END, days=days)
    gen.people()
    for i in range(tickets):
        gen.ticket(i)
    gen.flush()
    store.conn.execute("INSERT INTO ratings (source, id, kind, score, score_1_5, created_at) "
                       "VALUES ('survey', 'n1', 'nps', 9, 4.2, ?)", [END - 20 * DAY])
    return store


def kpis(conn: sqlite3.Connection, by: str | None = None, *, kpi: KpiSettings = KPI, **kw: Any) -> dict[str, Any]:
    return compute(conn, kpi=kpi, sla=SLA, costs=COSTS, since=SINCE, until=END, now=END, by=by, **kw)


def all_kpis(conn: sqlite3.Connection, *, kpi: KpiSettings = KPI) -> dict[str | None, dict[str, Any]]:
    return {by: kpis(conn, by, kpi=kpi) for by in BYS}


def copy_store(conn: sqlite3.Connection, path: Any = ":memory:") -> Store:
    """The same ticket data (what ``conn`` sees, uncommitted rows included) in a new store, in row order."""
    dst = Store(path)
    with dst.transaction():
        for table in DATA_TABLES:
            cols = list(TABLES[table]["columns"])
            rows = conn.execute(f"SELECT {', '.join(cols)} FROM main.{table} ORDER BY rowid").fetchall()
            dst.conn.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                                 rows)
    return dst


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA main.table_info({table})").fetchall()]


def snapshot(conn: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the stored facts, the change log and the fingerprint (never the TEMP shadows)."""
    out = {}
    for table in STATE_TABLES:
        order = ", ".join(str(i + 1) for i in range(len(_columns(conn, table))))
        out[table] = conn.execute(f"SELECT * FROM main.{table} ORDER BY {order}").fetchall()
    return out


def fact_rows(conn: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """The stored per-ticket facts, comparable between stores: every table keyed by ticket (``ticket_rowid``),
    with surrogate id numbers (``*_number``, numbered as ids were first seen) replaced by the ids themselves."""
    out = {}
    for table in fact_store.TABLES:
        cols = _columns(conn, table)
        if "ticket_rowid" not in cols:
            continue
        select = [f"(SELECT id FROM main.kpi_id_numbers WHERE number = t.{c})" if c in ID_NUMBERS else f"t.{c}"
                  for c in cols]
        order = ", ".join(str(i + 1) for i in range(len(cols)))
        out[table] = conn.execute(f"SELECT {', '.join(select)} FROM main.{table} t ORDER BY {order}").fetchall()
    assert out["kpi_facts"]
    return out


def dirty(conn: sqlite3.Connection) -> set[tuple[str, str]]:
    return set(conn.execute("SELECT source, ticket_id FROM kpi_dirty").fetchall())


def temp_objects(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT name FROM sqlite_temp_master").fetchall()]


def scalar(conn: sqlite3.Connection, sql: str, params: Any = ()) -> Any:
    return conn.execute(sql, params).fetchone()[0]


def in_set_count(conn: sqlite3.Connection) -> int:
    return scalar(conn, "SELECT COUNT(*) FROM tickets WHERE status IS NOT 'deleted' AND COALESCE(is_spam, 0) = 0 "
                        "AND COALESCE(is_merged, 0) = 0")


def clone(conn: sqlite3.Connection) -> sqlite3.Connection:
    """A byte copy of the whole database (facts, change log and triggers included)."""
    out = sqlite3.connect(":memory:", isolation_level=None)
    conn.backup(out)
    return out


def breakdown(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["key"]: row["kpis"] for row in result["breakdown"]}


_ids = iter(range(1, 10**9))


def message(store: Store, source: str, tid: str, at: int, role: str, *, kind: str = "comment",
            public: int = 1) -> str:
    mid = f"x{next(_ids)}"
    store.upsert("messages", [{"source": source, "id": mid, "ticket_id": tid, "author_id": role, "author_role": role,
                               "public": public, "kind": kind, "body": "more", "created_at": at}])
    return mid


def event(store: Store, source: str, tid: str, at: int, field: str, old: str | None, new: str | None) -> str:
    eid = f"y{next(_ids)}"
    store.upsert("ticket_events", [{"source": source, "id": eid, "ticket_id": tid, "created_at": at, "field": field,
                                    "old_value": old, "new_value": new}])
    return eid


def new_ticket(store: Store, source: str, tid: str, created: int, *, solved: bool = True, bare: bool = False) -> None:
    """A ticket with its description, two replies and status history (``bare``: the ticket row alone)."""
    store.upsert("tickets", [{
        "source": source, "id": tid, "subject": "new", "status": "solved" if solved else "open",
        "vendor_status": "solved", "priority": "normal", "severity": 2, "channel": "email", "requester_id": "u1",
        "organization_id": "o1", "assignee_id": "a_new", "group_id": "g1", "tags": ["escalated"],
        "custom_fields": {}, "created_at": created, "updated_at": created + 7 * HOUR,
        "solved_at": created + 7 * HOUR if solved else None, "is_spam": 0, "is_merged": 0}])
    if bare:
        return
    message(store, source, tid, created, "customer", kind="description")
    message(store, source, tid, created + 2 * HOUR, "agent")
    message(store, source, tid, created + 5 * HOUR, "customer")
    message(store, source, tid, created + 6 * HOUR, "agent")
    event(store, source, tid, created, "status", None, "new")
    event(store, source, tid, created + 2 * HOUR, "status", "new", "pending")
    event(store, source, tid, created + 5 * HOUR, "status", "pending", "open")
    if solved:
        event(store, source, tid, created + 7 * HOUR, "status", "open", "solved")


def pick(conn: sqlite3.Connection, where: str, offset: int = 0,
         avoid: Collection[tuple[str, str]] = ()) -> tuple[str, str]:
    """A ticket in the KPI ticket set, created in the period (never the store's earliest ticket), not in ``avoid``."""
    others = f"AND t.source || '/' || t.id NOT IN {sql_list(f'{s}/{i}' for s, i in avoid)}" if avoid else ""
    row = conn.execute(f"""SELECT t.source, t.id FROM tickets t WHERE t.created_at >= {SINCE}
        AND t.status IS NOT 'deleted' AND t.is_spam = 0 AND t.is_merged = 0 AND {where} {others}
        ORDER BY t.rowid LIMIT 1 OFFSET ?""", [offset]).fetchone()
    assert row is not None, where
    return row


def apply_edits(store: Store) -> set[tuple[str, str]]:
    """The edits a sync makes, through Store.upsert and raw SQL; returns the tickets they touch."""
    conn = store.conn
    touched: set[tuple[str, str]] = set()

    def choose(where: str, offset: int = 0) -> tuple[str, str]:
        return pick(conn, where, offset, touched)

    # a new customer message and its answer on an answered ticket
    src, tid = choose("EXISTS (SELECT 1 FROM messages m WHERE m.source = t.source AND m.ticket_id = t.id "
                      "AND m.author_role = 'agent' AND m.public = 1)")
    last = scalar(conn, "SELECT MAX(created_at) FROM messages WHERE source = ? AND ticket_id = ?", [src, tid])
    message(store, src, tid, last + 3 * HOUR, "customer")
    message(store, src, tid, last + 30 * HOUR, "agent")
    touched.add((src, tid))
    # a solved ticket reopened by the customer (status event + message + ticket row)
    src, tid = choose(f"t.status = 'solved' AND t.solved_at < {END - 3 * DAY}")
    solved_at = scalar(conn, "SELECT solved_at FROM tickets WHERE source = ? AND id = ?", [src, tid])
    message(store, src, tid, solved_at + DAY, "customer")
    event(store, src, tid, solved_at + DAY, "status", "solved", "open")
    store.upsert("tickets", [{"source": src, "id": tid, "status": "open", "updated_at": solved_at + DAY}])
    touched.add((src, tid))
    # a ticket deleted (status) and one marked spam (raw SQL)
    src, tid = choose("t.status = 'closed'")
    store.upsert("tickets", [{"source": src, "id": tid, "status": "deleted"}])
    touched.add((src, tid))
    src, tid = choose("t.status IN ('open', 'pending')")
    conn.execute("UPDATE tickets SET is_spam = 1 WHERE source = ? AND id = ?", [src, tid])
    touched.add((src, tid))
    # a hard DELETE of a ticket's first reply
    src, tid = choose("t.status = 'solved' AND (SELECT COUNT(*) FROM messages m WHERE m.source = t.source "
                      "AND m.ticket_id = t.id AND m.author_role = 'agent' AND m.public = 1) >= 2", 1)
    conn.execute("""DELETE FROM messages WHERE rowid = (SELECT rowid FROM messages WHERE source = ? AND ticket_id = ?
        AND author_role = 'agent' AND public = 1 ORDER BY created_at LIMIT 1)""", [src, tid])
    touched.add((src, tid))
    # a reply turned into an internal note (raw UPDATE of a message)
    src, tid = choose("t.status = 'solved' AND t.id IN (SELECT m.ticket_id FROM messages m WHERE m.source = "
                      "t.source AND m.author_role = 'agent' AND m.public = 1)", 2)
    conn.execute("""UPDATE messages SET public = 0 WHERE rowid = (SELECT rowid FROM messages WHERE source = ?
        AND ticket_id = ? AND author_role = 'agent' AND public = 1 ORDER BY created_at LIMIT 1)""", [src, tid])
    touched.add((src, tid))
    # status history only: a solve synced two hours late (UPDATE), an escalation tag (INSERT)
    src, tid = choose("t.status = 'solved' AND EXISTS (SELECT 1 FROM ticket_events e WHERE e.source = t.source "
                      "AND e.ticket_id = t.id AND e.field = 'status' AND e.new_value = 'solved')", 4)
    conn.execute("""UPDATE ticket_events SET created_at = created_at + 7200 WHERE source = ? AND ticket_id = ?
        AND field = 'status' AND new_value = 'solved'""", [src, tid])
    touched.add((src, tid))
    src, tid = choose("t.tags NOT LIKE '%escalated%'", 5)
    event(store, src, tid, scalar(conn, "SELECT created_at FROM tickets WHERE source = ? AND id = ?", [src, tid])
          + HOUR, "tags", "[]", '["escalated"]')
    touched.add((src, tid))
    # new tickets (one with messages and history; one bare, older than every other ticket: a backfill),
    # a reassigned one and a hard-deleted one
    new_ticket(store, "acme-zendesk", "n1", END - 9 * DAY + 10 * HOUR)
    new_ticket(store, "acme-freshdesk", "n2", END - 200 * DAY, solved=False, bare=True)
    touched |= {("acme-zendesk", "n1"), ("acme-freshdesk", "n2")}
    src, tid = choose("t.status = 'solved'", 3)
    conn.execute("UPDATE tickets SET assignee_id = 'a_moved' WHERE source = ? AND id = ?", [src, tid])
    touched.add((src, tid))
    src, tid = choose("t.status = 'closed'", 1)
    conn.execute("DELETE FROM tickets WHERE source = ? AND id = ?", [src, tid])
    touched.add((src, tid))
    assert len(touched) == 12
    return touched


#: of the tickets apply_edits touches, these have no facts afterwards: deleted, spam, hard-deleted
GONE = 3


# -- 1. incremental == rebuild == fresh store -----------------------------------------------------------------


def test_incremental_refresh_equals_a_full_rebuild_and_a_fresh_store() -> None:
    s = generate(Store(":memory:"))
    before = all_kpis(s.conn)
    assert dirty(s.conn) == set()
    touched = apply_edits(s)
    assert dirty(s.conn) == touched
    assert fact_store.stale(s.conn, KPI) == (False, len(touched))
    unrefreshed = clone(s.conn)  # what the old facts would say: drop the change log instead of refreshing
    unrefreshed.execute("DELETE FROM kpi_dirty")

    assert fact_store.refresh(s.conn, KPI, now=END) == len(touched) - GONE
    incremental = all_kpis(s.conn)
    stored = fact_rows(s.conn)
    assert dirty(s.conn) == set()

    s.conn.execute("DELETE FROM kpi_facts_meta")  # forces a full rebuild
    assert fact_store.stale(s.conn, KPI) == (True, 0)
    assert fact_store.refresh(s.conn, KPI, now=END) == in_set_count(s.conn)
    assert fact_rows(s.conn) == stored
    assert all_kpis(s.conn) == incremental
    assert all_kpis(copy_store(s.conn).conn) == incremental

    # the edits matter, so the comparison above could fail
    for by in BYS:
        assert kpis(unrefreshed, by) != incremental[by], by
    assert incremental[None]["kpis"]["tickets_created"] == before[None]["kpis"]["tickets_created"] - 2  # +1 -3
    agents = breakdown(incremental["agent"])
    assert agents["a_new"]["tickets_created"] == 1 and agents["a_new"]["backlog_size"] == 1  # n1; n2 (older, open)
    assert agents["a_moved"]["tickets_solved"] == 1
    assert {"a_new", "a_moved"}.isdisjoint(breakdown(before["agent"]))


@pytest.mark.parametrize("share", [0.0, 2.0], ids=["scan", "seek"])
def test_incremental_refresh_by_either_plan_stores_the_rebuilt_rows(monkeypatch: pytest.MonkeyPatch,
                                                                    share: float) -> None:
    s = generate(Store(":memory:"), tickets=120)
    fact_store.refresh(s.conn, CAL, now=END)
    apply_edits(s)
    plans: list[bool] = []
    real_fill = facts._fill

    def spy(*args: Any) -> None:
        plans.append(args[-1])
        real_fill(*args)

    monkeypatch.setattr(facts, "_fill", spy)
    monkeypatch.setattr(facts, "SCAN_SHARE", share)
    assert fact_store.refresh(s.conn, CAL, now=END) == 12 - GONE
    assert plans and set(plans) == {share == 0.0}
    incremental = fact_rows(s.conn)
    monkeypatch.undo()
    s.conn.execute("DELETE FROM kpi_facts_meta")
    fact_store.refresh(s.conn, CAL, now=END)
    assert fact_rows(s.conn) == incremental


@cache
def _template() -> sqlite3.Connection:
    """A small generated store with current facts, cloned for every hypothesis example."""
    s = generate(Store(":memory:"), tickets=40, seed=2, days=60)
    fact_store.refresh(s.conn, CAL, now=END)
    return s.conn


OPS = ("customer", "reply", "note", "reopen", "solve", "status", "deleted", "spam", "unspam", "merged", "assignee",
       "drop_message", "drop_event", "drop_ticket", "new_ticket", "move_message", "private", "retime_event", "tag",
       "priority", "rekey", "refresh")
EDITS = st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 60), st.integers(0, 300)), min_size=1, max_size=7)


def _random_edit(s: Store, op: str, n: int, hours: int) -> None:
    conn = s.conn
    if op == "refresh":
        fact_store.refresh(conn, CAL, now=END)
        return
    if op == "new_ticket":  # the first 240 h: older than every generated ticket
        new_ticket(s, "acme-intercom", f"n{n}-{hours}", END - 70 * DAY + hours * HOUR, solved=hours % 2 == 0,
                   bare=hours % 3 == 0)
        return
    count = scalar(conn, "SELECT COUNT(*) FROM tickets")
    if not count:
        return
    rowid, src, tid, created = conn.execute("SELECT rowid, source, id, created_at FROM tickets ORDER BY rowid "
                                            "LIMIT 1 OFFSET ?", [n % count]).fetchone()
    at = created + hours * HOUR
    if op in ("customer", "reply", "note"):
        message(s, src, tid, at, "customer" if op == "customer" else "agent", public=int(op != "note"))
    elif op in ("reopen", "solve", "status"):
        old, new = {"reopen": ("solved", "open"), "solve": ("open", "solved"),
                    "status": ("pending", "on_hold" if hours % 2 else "open")}[op]
        event(s, src, tid, at, "status", old, new)
        s.upsert("tickets", [{"source": src, "id": tid, "status": new, "updated_at": at,
                              **({"solved_at": at} if new == "solved" else {})}])
    elif op in ("deleted", "spam", "unspam", "merged"):
        column, value = {"deleted": ("status", "deleted"), "spam": ("is_spam", 1), "unspam": ("is_spam", 0),
                         "merged": ("is_merged", 1)}[op]
        conn.execute(f"UPDATE tickets SET {column} = ? WHERE rowid = ?", [value, rowid])
    elif op == "assignee":
        conn.execute("UPDATE tickets SET assignee_id = ? WHERE rowid = ?", [f"a{hours % 3}", rowid])
    elif op in ("drop_message", "drop_event"):
        table = "messages" if op == "drop_message" else "ticket_events"
        conn.execute(f"""DELETE FROM {table} WHERE rowid = (SELECT rowid FROM {table} WHERE source = ?
            AND ticket_id = ? ORDER BY created_at LIMIT 1 OFFSET ?)""", [src, tid, hours % 3])
    elif op == "drop_ticket":
        conn.execute("DELETE FROM tickets WHERE rowid = ?", [rowid])
    elif op == "move_message":
        other = conn.execute("SELECT id FROM tickets WHERE source = ? AND id <> ? ORDER BY rowid LIMIT 1",
                             [src, tid]).fetchone()
        if other:
            conn.execute("""UPDATE messages SET ticket_id = ? WHERE rowid = (SELECT rowid FROM messages
                WHERE source = ? AND ticket_id = ? ORDER BY created_at DESC LIMIT 1)""", [other[0], src, tid])
    elif op == "private":
        conn.execute("""UPDATE messages SET public = 1 - public WHERE rowid = (SELECT rowid FROM messages
            WHERE source = ? AND ticket_id = ? ORDER BY created_at LIMIT 1 OFFSET ?)""", [src, tid, hours % 3])
    elif op == "retime_event":
        conn.execute("""UPDATE ticket_events SET created_at = created_at + ? WHERE rowid = (SELECT rowid
            FROM ticket_events WHERE source = ? AND ticket_id = ? ORDER BY created_at DESC LIMIT 1)""",
                     [(hours - 150) * 60, src, tid])
    elif op == "tag":
        event(s, src, tid, at, "tags", "[]", '["escalated"]')
    elif op == "priority":
        event(s, src, tid, at, "priority", "normal", "urgent")
    elif op == "rekey":
        conn.execute("UPDATE tickets SET id = id || 'r' WHERE rowid = ?", [rowid])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=EDITS)
def test_random_edit_sequences_refresh_like_a_fresh_store(edits: list[tuple[str, int, int]]) -> None:
    s = Store(":memory:")
    _template().backup(s.conn)
    for op, n, hours in edits:
        _random_edit(s, op, n, hours)
    incremental = {by: kpis(s.conn, by, kpi=CAL) for by in ("month", "agent")}
    stored = fact_rows(s.conn)
    fresh = copy_store(s.conn)
    assert {by: kpis(fresh.conn, by, kpi=CAL) for by in ("month", "agent")} == incremental
    s.conn.execute("DELETE FROM kpi_facts_meta")
    fact_store.refresh(s.conn, CAL, now=END)
    assert fact_rows(s.conn) == stored


def test_business_epochs_of_earlier_refreshes_stay_valid() -> None:
    """Stored business-time epochs B(t) must not depend on when a ticket was refreshed: facts kept from an
    earlier refresh must give what a rebuild gives after an older ticket arrives. A consistent status history
    cancels any anchor out; this one shows a reopen (day 5) but not the solve before it, so its solved-time
    sum does not (regression: B(t) counted from a day before the store's first ticket at refresh time)."""
    kpi = KpiSettings(business_hours={d: "00:00-24:00" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})
    desk = Desk()
    desk.ticket("1", h(0), status="solved", solved=h(240))
    desk.desc("1", h(0))
    desk.msg("1", h(2), "agent")
    desk.status("1", h(0), None, "new")
    desk.status("1", h(120), "solved", "open")
    desk.status("1", h(240), "open", "solved")
    since, until = h(-240), h(480)
    first = desk.kpis(since, until, kpi=kpi)["kpis"]
    assert first["requester_wait_time_mean_s"] is None  # calendar time: the inconsistent history is rejected
    desk.ticket("0", h(-120), status="open")  # an older ticket synced later (a backfill, a new source)
    incremental = desk.kpis(since, until, kpi=kpi)["kpis"]
    rebuilt = Desk()
    desk.store.conn.backup(rebuilt.store.conn)
    rebuilt.store.conn.execute("DELETE FROM kpi_facts_meta")
    assert incremental == rebuilt.kpis(since, until, kpi=kpi)["kpis"]


# -- 2. the change log ----------------------------------------------------------------------------------------


def _desk() -> Desk:
    """zd/1, zd/2 and fd/1 (the same id in two sources) with messages and events, facts current."""
    d = Desk()
    for src, tid in (("zd", "1"), ("zd", "2"), ("fd", "1")):
        d.ticket(tid, h(0), source=src, status="solved", solved=h(5))
        d.desc(tid, h(0), source=src)
        d.msg(tid, h(1), "agent", source=src)
        d.status(tid, h(5), "open", "solved", source=src)
    fact_store.refresh(d.store.conn, CAL, now=h(100))
    assert dirty(d.store.conn) == set()
    return d


def _row(conn: sqlite3.Connection, table: str, source: str, ticket_id: str) -> dict[str, Any]:
    cur = conn.execute(f"SELECT * FROM {table} WHERE source = ? AND ticket_id = ? LIMIT 1", [source, ticket_id])
    names = [c[0] for c in cur.description]
    return dict(zip(names, cur.fetchone(), strict=True))


def _child_edits(table: str) -> dict[str, tuple[Callable[[Desk], None], set[tuple[str, str]]]]:
    def insert(d: Desk) -> None:
        d.store.upsert(table, [{**_row(d.store.conn, table, "zd", "2"), "id": "new1", "source": "fd",
                                "ticket_id": "1"}])

    def upsert_existing(d: Desk) -> None:
        row = _row(d.store.conn, table, "fd", "1")
        d.store.upsert(table, [{**row, "created_at": row["created_at"] + 60}])

    def move(d: Desk) -> None:
        d.store.conn.execute(f"UPDATE {table} SET ticket_id = '2' WHERE source = 'zd' AND ticket_id = '1'")

    def delete(d: Desk) -> None:
        d.store.conn.execute(f"DELETE FROM {table} WHERE source = 'zd' AND ticket_id = '2'")

    def orphan(d: Desk) -> None:
        d.store.upsert(table, [{**_row(d.store.conn, table, "zd", "2"), "id": "new2", "ticket_id": None}])

    return {
        f"{table}-insert": (insert, {("fd", "1")}),
        f"{table}-upsert": (upsert_existing, {("fd", "1")}),
        f"{table}-update-moves": (move, {("zd", "1"), ("zd", "2")}),
        f"{table}-delete": (delete, {("zd", "2")}),
        f"{table}-no-ticket": (orphan, set()),
    }


TRIGGER_CASES: dict[str, tuple[Callable[[Desk], None], set[tuple[str, str]]]] = {
    "tickets-insert": (lambda d: d.ticket("3", h(1), source="zd"), {("zd", "3")}),
    "tickets-upsert": (lambda d: d.store.upsert("tickets", [{"source": "fd", "id": "1", "status": "open"}]),
                       {("fd", "1")}),
    "tickets-update-rekeys": (lambda d: d.store.conn.execute("UPDATE tickets SET id = '9' WHERE source = 'zd' "
                                                             "AND id = '2'"), {("zd", "2"), ("zd", "9")}),
    "tickets-delete": (lambda d: d.store.conn.execute("DELETE FROM tickets WHERE source = 'fd' AND id = '1'"),
                       {("fd", "1")}),
    **_child_edits("messages"),
    **_child_edits("ticket_events"),
    "other-tables": (lambda d: (d.rating("csat", h(6), tid="1", score=1.0), d.time_entry("1", 60, h(2)),
                                d.store.upsert("people", [{"source": "zd", "id": "u1", "name": "U"}]),
                                d.store.upsert("groups", [{"source": "zd", "id": "g1", "name": "G"}])), set()),
}


@pytest.mark.parametrize("case", list(TRIGGER_CASES))
def test_triggers_log_exactly_the_changed_tickets(case: str) -> None:
    d = _desk()
    action, expected = TRIGGER_CASES[case]
    action(d)
    assert dirty(d.store.conn) == expected
    assert fact_store.stale(d.store.conn, CAL) == (False, len(expected))


def test_repeated_upserts_in_one_transaction() -> None:
    """Regression: the trigger's INSERT OR IGNORE took the outer upsert's conflict policy and raised
    'UNIQUE constraint failed: kpi_dirty...' on the second upsert of an already logged ticket."""
    d = _desk()
    conn = d.store.conn
    tickets = conn.execute("SELECT source, id, status, created_at FROM tickets WHERE id = '1'").fetchall()
    rows = {
        "tickets": [{"source": s, "id": i, "status": st, "created_at": c} for s, i, st, c in tickets],
        "messages": [_row(conn, "messages", "zd", "1"), _row(conn, "messages", "fd", "1")],
        "ticket_events": [_row(conn, "ticket_events", "zd", "1")],
    }
    with d.store.transaction():
        for _ in range(2):
            for table, batch in rows.items():
                d.store.upsert(table, batch)
        d.store.upsert("messages", rows["messages"] * 2)  # the same rows twice in one executemany
        with d.store.transaction():  # a nested savepoint, as a sync page inside a run
            d.store.upsert("tickets", rows["tickets"])
    d.store.upsert("tickets", rows["tickets"])  # and once more, outside
    assert dirty(conn) == {("zd", "1"), ("fd", "1")}


def test_refresh_empties_the_log_and_a_second_refresh_does_nothing() -> None:
    s = generate(Store(":memory:"), tickets=60)
    conn = s.conn
    assert fact_store.stale(conn, CAL) == (True, 60)  # no facts yet, and every generated ticket is logged
    assert fact_store.refresh(conn, CAL, now=END) == in_set_count(conn) == scalar(conn, "SELECT COUNT(*) FROM "
                                                                                        "kpi_facts")
    assert fact_store.stale(conn, CAL) == (False, 0)
    assert fact_store.refresh(conn, CAL, now=END) == 0
    src, tid = pick(conn, "1")
    message(s, src, tid, END - HOUR, "agent")
    new_ticket(s, "acme-zendesk", "n1", END - DAY)
    assert fact_store.stale(conn, CAL) == (False, 2)
    assert fact_store.refresh(conn, CAL, now=END) == 2
    assert dirty(conn) == set()
    assert fact_store.refresh(conn, CAL, now=END) == 0
    assert temp_objects(conn) == []


# -- 3. the fingerprint ---------------------------------------------------------------------------------------

MARCH = [date(2026, 3, 1) + timedelta(days=i) for i in range(31)]
CHANGED = {
    "business_hours": KpiSettings(timezone=TZ, business_hours={d: "08:00-12:00" for d in ("mon", "tue", "wed")}),
    "holidays": KpiSettings(timezone=TZ, business_hours=WEEKDAYS_9_17, holidays=MARCH),
    "escalation_tags": KpiSettings(timezone=TZ, business_hours=WEEKDAYS_9_17,
                                   escalation=EscalationSettings(tags=["escalated", "billing"])),
}
BUSINESS = ("first_response_time_median_s_business", "full_resolution_time_mean_s_business",
            "average_response_time_mean_s_business")


@pytest.mark.parametrize("change", list(CHANGED))
def test_a_settings_change_rebuilds_the_facts(change: str) -> None:
    s = generate(Store(":memory:"), tickets=150)
    old = kpis(s.conn, "month")
    new_kpi = CHANGED[change]
    assert fact_store.stale(s.conn, new_kpi) == (True, 0)
    assert fact_store.refresh(s.conn, new_kpi, now=END) == in_set_count(s.conn)
    new = kpis(s.conn, "month", kpi=new_kpi)
    assert new == kpis(copy_store(s.conn).conn, "month", kpi=new_kpi)
    if change == "escalation_tags":  # 30% of generated tickets are tagged billing
        assert new["kpis"]["escalation_rate_pct"] > old["kpis"]["escalation_rate_pct"] + 10
        assert all(new["kpis"][name] == old["kpis"][name] for name in BUSINESS)
    else:
        assert new["kpis"]["escalation_rate_pct"] == old["kpis"]["escalation_rate_pct"]
        assert new["kpis"]["first_response_time_mean_s"] == old["kpis"]["first_response_time_mean_s"]
        for name in BUSINESS:
            assert new["kpis"][name] != old["kpis"][name], name
    if change == "holidays":  # a month of holidays: no business time at all in March
        march = breakdown(new)["2026-03"]
        assert march["first_response_time_median_s_business"] == 0
    # and back: the old settings rebuild again and give the old numbers
    assert fact_store.stale(s.conn, KPI) == (True, 0)
    assert kpis(s.conn, "month") == old


def test_an_escalation_group_resolving_to_a_new_id_rebuilds_the_facts() -> None:
    kpi = KpiSettings(escalation=EscalationSettings(groups=["Tier 2"], tags=[]))
    desk = Desk()
    desk.ticket("1", h(0), group="g9")  # sits in the escalation group
    desk.ticket("2", h(1), group="g1")
    desk.event("2", h(2), "group_id", "g1", "g9")  # moved into it (and back out)
    desk.event("2", h(3), "group_id", "g9", "g1")
    desk.ticket("3", h(4), group="g1")
    desk.ticket("4", h(5), group="Tier 2")  # a group id that is the configured value itself
    conn = desk.store.conn
    assert desk.kpis(h(0), h(24), kpi=kpi)["kpis"]["escalation_rate_pct"] == 25.0
    desk.store.upsert("groups", [{"source": "zd", "id": "g9", "name": "Tier 2"}])
    assert dirty(conn) == set()  # no ticket changed ...
    assert fact_store.stale(conn, kpi) == (True, 0)  # ... but what the name means did
    assert desk.kpis(h(0), h(24), kpi=kpi)["kpis"]["escalation_rate_pct"] == 75.0
    assert fact_store.stale(conn, kpi) == (False, 0)
    desk.store.upsert("groups", [{"source": "zd", "id": "g9", "name": "Billing"}])
    assert fact_store.stale(conn, kpi) == (True, 0)
    result = desk.kpis(h(0), h(24), kpi=kpi)
    assert result["kpis"]["escalation_rate_pct"] == 25.0
    assert result == compute(copy_store(conn).conn, kpi=kpi, sla=SlaSettings(), costs=CostSettings(), since=h(0),
                             until=h(24), now=h(24))


# -- 4. read-only connections ---------------------------------------------------------------------------------


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)


def test_a_read_only_connection_computes_fresh_facts_without_writing(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ro.db"
    s = generate(Store(path), tickets=150)
    original = all_kpis(s.conn, kpi=CAL)
    touched = apply_edits(s)
    before = snapshot(s.conn)
    fresh = all_kpis(copy_store(s.conn).conn, kpi=CAL)
    assert fresh[None] != original[None]

    ro = _read_only(path)
    assert all_kpis(ro, kpi=CAL) == fresh
    assert temp_objects(ro) == []
    assert snapshot(s.conn) == before and dirty(s.conn) == touched  # nothing was written
    assert snapshot(ro) == before
    # settings the stored facts were not built for (business hours and holidays): the same TEMP path
    holidays = CHANGED["holidays"]
    assert kpis(ro, "month", kpi=holidays) == kpis(copy_store(s.conn).conn, "month", kpi=holidays)
    assert snapshot(s.conn) == before and temp_objects(ro) == []

    # once a writer refreshed them, a read-only connection reads the stored facts
    assert kpis(s.conn, kpi=CAL) == fresh[None]
    stored = snapshot(s.conn)

    def no_build(*args: Any, **kw: Any) -> int:
        raise AssertionError("current facts must not be rebuilt")

    monkeypatch.setattr(fact_store, "_build", no_build)
    assert all_kpis(ro, kpi=CAL) == fresh
    assert all_kpis(_read_only(path), kpi=CAL) == fresh
    assert snapshot(s.conn) == stored and temp_objects(ro) == []


def test_a_read_only_run_on_stale_facts_leaves_no_transaction_open(tmp_path: Path) -> None:
    """Regression: the TEMP facts' INSERTs opened an implicit transaction (sqlite3's default legacy mode) that
    was never ended, so the connection kept reading its first snapshot and blocked checkpoints."""
    path = tmp_path / "ro.db"
    s = generate(Store(path), tickets=80)
    kpis(s.conn, kpi=CAL)
    src, tid = pick(s.conn, "t.status = 'solved'")
    s.conn.execute("UPDATE tickets SET assignee_id = 'a_one' WHERE source = ? AND id = ?", [src, tid])
    ro = _read_only(path)
    assert "a_one" in breakdown(kpis(ro, "agent", kpi=CAL))
    assert not ro.in_transaction
    src, tid = pick(s.conn, "t.status = 'solved'", 5)
    s.conn.execute("UPDATE tickets SET assignee_id = 'a_two' WHERE source = ? AND id = ?", [src, tid])
    assert "a_two" in breakdown(kpis(s.conn, "agent", kpi=CAL))  # committed and refreshed by the writer
    assert "a_two" in breakdown(kpis(ro, "agent", kpi=CAL))  # and seen by the reader
    assert s.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0  # no reader holds the WAL


# -- 5. atomicity ---------------------------------------------------------------------------------------------


class DiskOnFire(RuntimeError):
    pass


def _fail_midway(monkeypatch: pytest.MonkeyPatch, conn: sqlite3.Connection, where: str,
                 seen: list[dict[str, Any]]) -> None:
    """Make the next refresh raise after it has already written facts rows (recorded in ``seen``)."""
    if where == "after_insert":
        real_insert = fact_store._insert_facts

        def insert_then_fail(*args: Any) -> None:
            real_insert(*args)
            seen.append(snapshot(conn))
            raise DiskOnFire("after inserting the facts")

        monkeypatch.setattr(fact_store, "_insert_facts", insert_then_fail)
    else:
        real_runs = facts.runs

        def runs_then_fail(seq: str, business: bool) -> list[tuple[int, int | None, int, int | None]]:
            if seen:
                raise DiskOnFire("while splitting responses")
            seen.append(snapshot(conn))
            return real_runs(seq, business)

        monkeypatch.setattr(facts, "runs", runs_then_fail)


@pytest.mark.parametrize("where", ["after_insert", "in_runs"])
@pytest.mark.parametrize("kind", ["full", "incremental"])
def test_a_failed_refresh_changes_nothing(monkeypatch: pytest.MonkeyPatch, kind: str, where: str) -> None:
    s = generate(Store(":memory:"), tickets=120)
    kpis(s.conn, kpi=CAL)
    apply_edits(s)
    if where == "in_runs":  # two more tickets with responses to split, so the failure comes after the first
        new_ticket(s, "acme-zendesk", "n3", END - 5 * DAY)
        new_ticket(s, "acme-zendesk", "n4", END - 4 * DAY)
    kpi = CAL_BILLING if kind == "full" else CAL  # a new fingerprint: a full rebuild
    before = snapshot(s.conn)
    seen: list[dict[str, Any]] = []
    _fail_midway(monkeypatch, s.conn, where, seen)
    with pytest.raises(DiskOnFire):
        kpis(s.conn, "month", kpi=kpi)
    assert seen and seen[0] != before  # the refresh had written something before it failed ...
    assert snapshot(s.conn) == before  # ... and all of it was rolled back
    assert not s.conn.in_transaction
    assert temp_objects(s.conn) == []
    monkeypatch.undo()
    assert kpis(s.conn, "month", kpi=kpi) == kpis(copy_store(s.conn).conn, "month", kpi=kpi)
    assert dirty(s.conn) == set()


def test_compute_inside_the_callers_transaction(monkeypatch: pytest.MonkeyPatch) -> None:
    s = generate(Store(":memory:"), tickets=120)
    conn = s.conn
    original = kpis(conn, "agent", kpi=CAL)
    facts_before = snapshot(conn)

    conn.execute("BEGIN")
    src, tid = pick(conn, "t.status = 'solved'")
    conn.execute("UPDATE tickets SET assignee_id = 'a_tx' WHERE source = ? AND id = ?", [src, tid])
    inside = kpis(conn, "agent", kpi=CAL)
    assert conn.in_transaction  # the caller's transaction is still open ...
    assert breakdown(inside)["a_tx"]["tickets_solved"] == 1  # ... and its own uncommitted change is counted
    assert inside == kpis(copy_store(conn).conn, "agent", kpi=CAL)
    assert dirty(conn) == set()
    conn.execute("ROLLBACK")  # the caller's rollback takes the refresh with it
    assert snapshot(conn) == facts_before
    assert kpis(conn, "agent", kpi=CAL) == original

    # a refresh failing inside the caller's transaction undoes only itself
    with s.transaction():
        conn.execute("UPDATE tickets SET assignee_id = 'a_tx' WHERE source = ? AND id = ?", [src, tid])
        _fail_midway(monkeypatch, conn, "after_insert", [])
        with pytest.raises(DiskOnFire):
            kpis(conn, "agent", kpi=CAL)
        assert conn.in_transaction
        assert scalar(conn, "SELECT assignee_id FROM tickets WHERE source = ? AND id = ?", [src, tid]) == "a_tx"
        assert dirty(conn) == {(src, tid)}
        assert temp_objects(conn) == []
    monkeypatch.undo()
    assert kpis(conn, "agent", kpi=CAL) == inside


# -- 6. sharding ----------------------------------------------------------------------------------------------


def test_sharded_compute_after_an_incremental_refresh(tmp_path: Path) -> None:
    s = generate(Store(tmp_path / "shards.db"), tickets=200)
    kpis(s.conn, "month", workers=1)
    apply_edits(s)
    sharded = kpis(s.conn, "month", workers=2)  # refreshes the stored facts, then the worker reads them
    assert fact_store.stale(s.conn, KPI) == (False, 0)
    assert sharded == kpis(s.conn, "month", workers=1)
    assert sharded == kpis(copy_store(s.conn).conn, "month")


def test_sharded_compute_inside_a_transaction_reads_current_facts(tmp_path: Path) -> None:
    """Regression: facts refreshed inside the caller's open transaction were sharded to worker processes,
    which read the committed (stale) facts."""
    s = generate(Store(tmp_path / "shards.db"), tickets=200)
    kpis(s.conn, workers=1, kpi=CAL)
    # committed edits on the tickets the second shard reads: the stored facts are stale
    s.conn.execute("UPDATE tickets SET assignee_id = 'a_late' WHERE rowid IN "
                   "(SELECT ticket_rowid FROM kpi_facts ORDER BY ticket_rowid DESC LIMIT 20)")
    s.conn.execute("BEGIN")  # e.g. a caller wanting one consistent snapshot for several computations
    try:
        sharded = kpis(s.conn, "agent", workers=2, kpi=CAL)
        single = kpis(s.conn, "agent", workers=1, kpi=CAL)
    finally:
        s.conn.execute("ROLLBACK")
    assert breakdown(single)["a_late"]["tickets_created"] > 0
    assert sharded == single


# -- 7. the migrations (v4: facts and change log; v5: the facts tables with self-explaining columns) ---------


def _store_at(path: Path, version: int) -> Store:
    """A store as a deskpulse whose migration list ended at ``version`` left it."""
    old = Store(path, migrate=False)
    for number, step in enumerate(MIGRATIONS[:version], start=1):
        with old.transaction():
            step(old.db)
            old.conn.execute(f"PRAGMA user_version = {number}")
    return old


def test_a_v3_store_migrates_and_computes_the_same(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    old = _store_at(path, 3)
    generate(old, tickets=150)
    assert old.schema_version == 3 and not fact_store.installed(old.conn)
    at_v3 = kpis(old.conn, "month", kpi=CAL)  # no stored facts yet: TEMP facts for the run
    assert temp_objects(old.conn) == []
    assert kpis(_read_only(path), "month", kpi=CAL) == at_v3
    old.close()

    s = Store(path)
    assert s.schema_version == len(MIGRATIONS)
    assert fact_store.installed(s.conn)
    assert fact_store.stale(s.conn, CAL) == (True, 0)  # rows from before the triggers: the fingerprint rebuilds
    migrated = kpis(s.conn, "month", kpi=CAL)
    assert scalar(s.conn, "SELECT COUNT(*) FROM kpi_facts") == in_set_count(s.conn)
    assert migrated == at_v3
    assert migrated == kpis(generate(Store(tmp_path / "v4.db"), tickets=150).conn, "month", kpi=CAL)
    # and the change log works on the migrated store
    src, tid = pick(s.conn, "1")
    message(s, src, tid, END - HOUR, "agent")
    assert dirty(s.conn) == {(src, tid)}


def test_a_v4_store_upgrades_to_named_facts_and_computes_the_same(tmp_path: Path) -> None:
    """A store a deskpulse with migrations up to v4 wrote (facts with one- and two-letter columns, their
    fingerprint, a change log) upgrades: v5 replaces the facts tables, the facts are recomputed on the next
    computation, and every KPI is what the v4 store gave and what a new store gives."""
    path = tmp_path / "v4.db"
    old = _store_at(path, 4)
    generate(old, tickets=150)
    old_columns = _columns(old.conn, "kpi_facts")
    assert {"c", "sa", "s", "bc", "bs", "org", "asg"} <= set(old_columns)
    # the v4 store as the previous deskpulse left it: stored facts under a fingerprint, a pending change
    old.conn.execute("INSERT INTO main.kpi_facts (kid, source, id, c) VALUES (1, 'zd', '1', 0)")
    old.conn.execute("INSERT INTO kpi_facts_meta (key, value) VALUES ('fingerprint', 'from deskpulse v4')")
    assert not fact_store.installed(old.conn)  # this code cannot read those columns: TEMP facts for the run
    at_v4 = kpis(old.conn, "month", kpi=CAL)
    assert temp_objects(old.conn) == []
    assert _columns(old.conn, "kpi_facts") == old_columns  # a computation never changes the store's schema
    old.close()

    s = Store(path)
    assert s.schema_version == len(MIGRATIONS) >= 5
    assert fact_store.installed(s.conn)
    assert _columns(s.conn, "kpi_facts") == list(schema.FACTS_TABLES["kpi_facts"])
    assert scalar(s.conn, "SELECT COUNT(*) FROM kpi_facts") == 0
    assert dirty(s.conn)  # the change log and its triggers are v4's, kept
    assert fact_store.stale(s.conn, CAL)[0]  # no fingerprint: the next computation recomputes every fact
    upgraded = kpis(s.conn, "month", kpi=CAL)
    assert scalar(s.conn, "SELECT COUNT(*) FROM kpi_facts") == in_set_count(s.conn)
    assert fact_store.stale(s.conn, CAL) == (False, 0)
    assert upgraded == at_v4
    assert upgraded == kpis(generate(Store(tmp_path / "new.db"), tickets=150).conn, "month", kpi=CAL)
    assert all_kpis(s.conn, kpi=CAL) == all_kpis(copy_store(s.conn).conn, kpi=CAL)


def test_the_store_migrations_create_every_kpi_table_and_a_rebuild_creates_none() -> None:
    """kpi_engine's tables, indexes and triggers come from the store's migration list (kpi_engine.schema);
    a full rebuild of the facts only refills them."""
    s = generate(Store(":memory:"), tickets=80)

    def kpi_objects() -> set[tuple[str, str, str]]:
        return set(s.conn.execute("SELECT type, name, sql FROM main.sqlite_master WHERE name LIKE 'kpi%' "
                                  "AND name <> 'kpi_snapshots'").fetchall())

    migrated = kpi_objects()
    assert {name for _, name, _ in migrated} >= {*fact_store.TABLES, *schema.STATE_TABLES}
    for table, columns in schema.FACTS_TABLES.items():
        assert tuple(_columns(s.conn, table)) == columns
    assert tuple(fact_store.FACT_VALUES) == schema.FACTS_TABLES["kpi_facts"]  # each column has its value
    kpis(s.conn, kpi=CAL)
    s.conn.execute("DELETE FROM kpi_facts_meta")  # forces a full rebuild
    kpis(s.conn, "month", kpi=CAL)
    assert kpi_objects() == migrated
    assert scalar(s.conn, "SELECT COUNT(*) FROM kpi_facts") == in_set_count(s.conn)


def test_a_store_missing_a_facts_table_computes_with_temp_facts() -> None:
    """A facts table gone (a hand-edited store): the computation neither fails nor creates the table (the
    store's migrations own the schema); it uses TEMP facts, with the same numbers."""
    s = generate(Store(":memory:"), tickets=80)
    kpis(s.conn, kpi=CAL)
    s.conn.execute(f"DROP TABLE {fact_store.TABLES[-1]}")
    assert not fact_store.installed(s.conn)
    result = kpis(s.conn, "month", kpi=CAL)
    assert result == kpis(copy_store(s.conn).conn, "month", kpi=CAL)
    assert fact_store.TABLES[-1] not in {r[0] for r in s.conn.execute("SELECT name FROM main.sqlite_master")}
    assert temp_objects(s.conn) == []


def test_facts_follow_ticket_rowids_renumbered_behind_the_triggers_back() -> None:
    """A fact key is the ticket's rowid, which a VACUUM may renumber without firing a trigger. A later
    refresh whose new keys collide with stale ones rebuilds everything, and the numbers stay right."""
    s = generate(Store(":memory:"), tickets=80)
    kpis(s.conn)  # facts stored under the current rowids
    s.conn.execute("DROP TRIGGER kpi_dirty_tickets_update")
    top = scalar(s.conn, "SELECT MAX(rowid) FROM tickets")
    s.conn.execute("UPDATE tickets SET rowid = -rowid")  # reversed order, as a VACUUM is free to do
    s.conn.execute(f"UPDATE tickets SET rowid = {top + 1} + rowid")
    for sql in schema.dirty_triggers():  # the triggers are back; nothing was logged
        s.conn.execute(sql)
    assert dirty(s.conn) == set()
    source, tid = s.conn.execute("SELECT source, id FROM tickets WHERE rowid = 1").fetchone()
    message(s, source, tid, END - 3 * DAY, "agent")  # its new key (1) is another ticket's old one
    assert fact_store.stale(s.conn, KPI) == (False, 1)
    result = all_kpis(s.conn)
    assert result == all_kpis(copy_store(s.conn).conn)


def test_current_facts_are_read_while_another_connection_writes(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """`deskpulse kpi` next to a syncing daemon: with current facts it neither waits for the write lock
    nor falls back to building facts of its own."""
    s = generate(Store(tmp_path / "busy.db"), tickets=60)
    expected = kpis(s.conn, kpi=CAL)
    reader = sqlite3.connect(tmp_path / "busy.db", timeout=0.05, isolation_level=None)
    statements: list[str] = []
    reader.set_trace_callback(statements.append)
    s.conn.execute("BEGIN IMMEDIATE")  # the writer holds the lock (a sync committing a page)
    try:
        monkeypatch.setattr(fact_store, "_build", lambda *a, **k: pytest.fail("facts rebuilt while current"))
        assert kpis(reader, kpi=CAL) == expected
        # not even a probe of the write lock (a store connection would wait up to its 30 s busy timeout)
        writes = [q for q in statements if q.split()[0].upper() in ("INSERT", "UPDATE", "DELETE", "SAVEPOINT", "BEGIN")]
        assert writes == []
    finally:
        s.conn.execute("ROLLBACK")
        reader.close()
