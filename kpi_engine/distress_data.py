"""The CDI's raw components per account, as of a moment: SQL aggregates grouped by account.

Why a temporary table: every component starts from the same ticket set (not deleted, spam or
merged; created by ``as_of``), each ticket mapped to its account and to whether it was open at
``as_of``. Building that once and aggregating it several ways is cheaper than repeating the
join, and keeps "open" defined in exactly one place.

"Open at as_of" must also work for past days (``backfill``), where the ticket's current status
is not the answer: a ticket untouched since ``as_of`` still has the status it had; otherwise the
latest status change at or before ``as_of`` decides; without status history, the ticket counts
as open unless it was solved by then (``solved_at <= as_of``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kpi_engine.customers import MEMBERS_TABLE, CustomerMap, account_key
from kpi_engine.distress_rank import DAY, MONTH_S
from kpi_engine.transactions import savepoint
from kpi_engine.workspace import ticket_set

UNSOLVED = ("new", "open", "pending", "on_hold")
NEGATIVE_MAX = -0.05  # same convention as kpi_engine.sentiment (kept literal so this module stays SQL-only)
_TEMP = "dp_cdi_tickets"
_FILERS = "dp_cdi_filers"  # every (source, kind, id) with a ticket: whose records name the accounts


@dataclass(slots=True)
class AccountData:
    """One account's raw components and the facts priority needs."""

    account: str
    source: str
    organization_id: str | None
    requester_id: str | None
    components: dict[str, float | None] = field(default_factory=dict)
    name: str | None = None
    value: float | None = None
    tenure_s: int | None = None
    messages_30d: int = 0
    unscored_30d: int = 0
    sources: list[str] = field(default_factory=list)  # every helpdesk the account's tickets came from
    members: list[str] = field(default_factory=list)  # merged customer: its helpdesk accounts (source:org:id)


def _own_key(org: str, user: str) -> str:
    """SQL: the account of a ticket whose organization (or, without one, requester) is ``org`` / ``user``."""
    return f"CASE WHEN {org} IS NOT NULL THEN b.source || ':org:' || {org} ELSE b.source || ':user:' || {user} END"


def _build_tickets(conn: sqlite3.Connection, as_of: int, source: str | None, customers: CustomerMap | None,
                   reach: int, optional: frozenset[str] = frozenset()) -> None:
    """The tickets that can make an account active or move a component, each with its account and whether
    it was open at ``as_of``: created or solved after ``reach`` (the oldest window start a component uses),
    unsolved now, or updated after it (a ticket touched since may have been open at ``as_of``, and a customer
    message always bumps ``updated_at``). Every other ticket was created and solved before the windows,
    is solved now and untouched since: closed at ``as_of`` and only counted in its account's lifetime
    (:func:`_lifetime`). On the bench store that is one ticket in eight, so this table, its account keys
    and its index cost an eighth of building them for every ticket. The optional 30-day counts also take
    the tickets with a rating or a status change in their window (an imported survey answer does not
    touch its ticket).
    """
    unsolved = ", ".join(f"'{s}'" for s in UNSOLVED)
    where_source = "AND t.source = :source" if source is not None else ""
    touched = ""
    for name, rows in (("low_csat_30d", "ratings AS x WHERE x.created_at > :d30 AND x.created_at <= :as_of"),
                       ("reopens_30d", "ticket_events AS x WHERE x.field = 'status' AND x.created_at > :d30 "
                                       "AND x.created_at <= :as_of")):
        if name in optional:
            touched += (f" OR t.rowid IN (SELECT y.rowid FROM {rows.split(' WHERE ')[0]} JOIN tickets AS y "
                        f"ON y.source = x.source AND y.id = x.ticket_id WHERE {rows.split(' WHERE ')[1]})")
    conn.execute(f"DROP TABLE IF EXISTS temp.{_TEMP}")
    own_key = _own_key("b.org_id", "b.user_id")
    account, join = own_key, ""
    if customers is not None and customers.by_member:
        customers.install(conn)
        account = f"COALESCE(cm.account, {own_key})"
        join = (f"LEFT JOIN temp.{MEMBERS_TABLE} AS cm ON cm.source = b.source "
                "AND cm.kind = CASE WHEN b.org_id IS NOT NULL THEN 'org' ELSE 'user' END "
                "AND cm.id = COALESCE(b.org_id, b.user_id)")
    conn.execute(f"""
        CREATE TEMP TABLE {_TEMP} AS
        SELECT b.*, {account} AS account
        FROM (
          SELECT t.source, t.id, t.created_at, t.solved_at, t.updated_at, COALESCE(t.severity, 1) AS severity,
                 COALESCE(NULLIF(t.organization_id, ''), NULLIF(p.organization_id, '')) AS org_id,
                 CASE WHEN COALESCE(NULLIF(t.organization_id, ''), NULLIF(p.organization_id, '')) IS NULL
                      THEN t.requester_id END AS user_id,
                 CASE
                   WHEN t.updated_at IS NULL OR t.updated_at <= :as_of THEN t.status IN ({unsolved})
                   ELSE COALESCE(
                     (SELECT e.new_value NOT IN ('solved', 'closed', 'deleted') FROM ticket_events AS e
                      WHERE e.source = t.source AND e.ticket_id = t.id AND e.field = 'status'
                        AND e.created_at <= :as_of
                      ORDER BY e.created_at DESC, e.id DESC LIMIT 1),
                     NOT (t.solved_at IS NOT NULL AND t.solved_at <= :as_of))
                 END AS is_open
          FROM tickets AS t NOT INDEXED LEFT JOIN people AS p ON p.source = t.source AND p.id = t.requester_id
          WHERE {ticket_set('t')} AND t.created_at <= :as_of {where_source}
            AND (t.created_at > :reach OR t.solved_at > :reach OR t.status IN ({unsolved})
                 OR t.updated_at > :reach OR t.updated_at IS NULL OR t.solved_at IS NULL{touched})
        ) AS b {join}
        WHERE b.org_id IS NOT NULL OR NULLIF(b.user_id, '') IS NOT NULL
    """, {"as_of": as_of, "source": source, "reach": reach, "d30": as_of - 30 * DAY})
    if join:
        CustomerMap.drop(conn)
    conn.execute(f"CREATE INDEX temp.{_TEMP}_key ON {_TEMP}(source, id)")


@dataclass(slots=True)
class _Lifetime:
    """One account's tickets created by ``as_of`` (all of them, not only the windows' ones)."""

    tickets: int = 0
    first: int | None = None
    sources: set[str] = field(default_factory=set)


def _lifetime(conn: sqlite3.Connection, as_of: int, source: str | None, customers: CustomerMap | None,
              ) -> tuple[dict[str, _Lifetime], list[tuple[str, str, str]]]:
    """Per account: tickets created by ``as_of``, the first one's time and the helpdesks they came from;
    plus every (source, kind, id) that filed them (whose records give names, values and tenure).

    One pass over the tickets in account order (``idx_tickets_account``, a covering index: no sort of a
    million rows), then the requester's organization for the tickets that name none, and the customer map
    in Python over tens of thousands of groups, not a million tickets.
    """
    where_source = "AND t.source = :source" if source is not None else ""
    rows = conn.execute(f"""
        SELECT g.source, COALESCE(g.org, NULLIF(p.organization_id, '')) AS org_id,
               CASE WHEN COALESCE(g.org, NULLIF(p.organization_id, '')) IS NULL THEN g.user END AS user_id,
               SUM(g.n), MIN(g.first)
        FROM (SELECT source, NULLIF(organization_id, '') AS org,
                     CASE WHEN NULLIF(organization_id, '') IS NULL THEN requester_id END AS user,
                     SUM(n) AS n, MIN(first) AS first
              FROM (SELECT t.source, t.organization_id, t.requester_id, COUNT(*) AS n, MIN(t.created_at) AS first
                    FROM tickets AS t WHERE {ticket_set('t')} AND t.created_at <= :as_of {where_source}
                    GROUP BY t.source, t.organization_id, t.requester_id)
              GROUP BY 1, 2, 3) AS g
        LEFT JOIN people AS p ON g.org IS NULL AND p.source = g.source AND p.id = g.user
        GROUP BY 1, 2, 3
    """, {"as_of": as_of, "source": source}).fetchall()
    out: dict[str, _Lifetime] = {}
    filers: list[tuple[str, str, str]] = []
    for src, org_id, user_id, count, first in rows:
        if org_id is not None:
            kind, ident = "org", str(org_id)
        elif user_id not in (None, ""):
            kind, ident = "user", str(user_id)
        else:
            continue
        filers.append((src, kind, ident))
        acct = customers.account(src, kind, ident) if customers is not None else account_key(src, kind, ident)
        life = out.setdefault(acct, _Lifetime())
        life.tickets += int(count)
        life.first = int(first) if life.first is None else min(life.first, int(first))
        life.sources.add(src)
    return out, filers


def _sla_case(first_reply_minutes: Mapping[int, int]) -> str:
    items = sorted(first_reply_minutes.items())
    whens = " ".join(f"WHEN {int(sev)} THEN {int(minutes) * 60}" for sev, minutes in items)
    return f"CASE severity {whens} END"


def load_accounts(
    conn: sqlite3.Connection,
    *,
    as_of: int,
    source: str | None = None,
    optional: frozenset[str] = frozenset(),
    first_reply_minutes: Mapping[int, int] | None = None,
    customers: CustomerMap | None = None,
) -> dict[str, AccountData]:
    """Raw components of every account active in the 90 days before ``as_of``.

    Active: a ticket created or solved in those 90 days, or a ticket open at ``as_of``.
    ``optional`` names the weight-0-by-default components to compute as well (``reopens_30d``,
    ``sla_breaches_30d``, ``low_csat_30d``); the SLA one needs ``first_reply_minutes`` per severity.

    ``customers`` (:func:`kpi_engine.customers.resolve`) makes one account of a customer's helpdesk accounts:
    its tickets, open tickets, ages, messages and counts are pooled across them (sums and averages over
    the pooled tickets, not averages of per-helpdesk averages), so percentiles rank customers.
    """
    params = {"as_of": as_of, "d30": as_of - 30 * DAY, "d90": as_of - 90 * DAY}
    reach = params["d90"]
    if "sla_breaches_30d" in optional and first_reply_minutes:  # tickets whose first-reply target falls due
        reach = min(reach, params["d30"] - max(first_reply_minutes.values()) * 60)
    lifetimes, filers = _lifetime(conn, as_of, source, customers)
    _build_tickets(conn, as_of, source, customers, reach, optional)
    try:
        accounts: dict[str, AccountData] = {}
        first_ticket: dict[str, int] = {}
        rows = conn.execute(f"""
            SELECT account, source, MIN(org_id), MIN(user_id),
                   SUM(created_at > :d30), SUM(is_open),
                   AVG(CASE WHEN is_open THEN :as_of - created_at END),
                   AVG(CASE WHEN NOT is_open AND solved_at > :d90 AND solved_at <= :as_of
                            THEN solved_at - created_at END)
            FROM {_TEMP} GROUP BY account
            HAVING MAX(created_at > :d90 OR is_open OR (solved_at > :d90 AND solved_at <= :as_of))
        """, params).fetchall()
        merged = {} if customers is None else customers.customers
        for acct, src, org_id, user_id, t30, open_n, open_age, ttc in rows:
            life = lifetimes[acct]
            data = AccountData(acct, src, org_id, user_id, sources=[src])
            customer = merged.get(acct)
            if customer is not None:  # the primary member speaks for it; every member is listed
                src, kind, ident = customer.primary
                data.source = src
                data.organization_id, data.requester_id = (ident, None) if kind == "org" else (None, ident)
                data.sources = sorted(life.sources)
                data.members = [f"{s}:{k}:{i}" for s, k, i in customer.members]
                data.name = customer.name
            data.components = {
                "tickets_30d": float(t30), "open_tickets": float(open_n),
                "avg_open_age_s": None if open_age is None else float(open_age),
                "avg_time_to_close_s": None if ttc is None else float(ttc),
                "_lifetime": float(life.tickets),
            }
            first_ticket[acct] = int(life.first or 0)
            accounts[acct] = data
        _add_tone(conn, accounts, params)
        _add_identity(conn, accounts, first_ticket, as_of, customers, filers)
        if "reopens_30d" in optional:
            _add_count(conn, accounts, "reopens_30d", f"""
                SELECT t.account, COUNT(*) FROM {_TEMP} AS t JOIN ticket_events AS e
                  ON e.source = t.source AND e.ticket_id = t.id
                WHERE e.field = 'status' AND e.old_value IN ('solved', 'closed')
                  AND e.new_value IN ({", ".join(f"'{s}'" for s in UNSOLVED)})
                  AND e.created_at > :d30 AND e.created_at <= :as_of
                GROUP BY t.account""", params)
        if "low_csat_30d" in optional:
            _add_count(conn, accounts, "low_csat_30d", f"""
                SELECT t.account, COUNT(*) FROM ratings AS r JOIN {_TEMP} AS t
                  ON t.source = r.source AND t.id = r.ticket_id
                WHERE r.kind = 'csat' AND r.score_1_5 <= 2 AND r.created_at > :d30 AND r.created_at <= :as_of
                GROUP BY t.account""", params)
        if "sla_breaches_30d" in optional and not first_reply_minutes:
            for data in accounts.values():
                data.components["sla_breaches_30d"] = None  # no targets: unknown, not zero
        elif "sla_breaches_30d" in optional and first_reply_minutes:
            _add_count(conn, accounts, "sla_breaches_30d", f"""
                SELECT account, COUNT(*) FROM (
                  SELECT t.account, t.created_at + {_sla_case(first_reply_minutes)} AS due,
                         (SELECT MIN(m.created_at) FROM messages AS m
                          WHERE m.source = t.source AND m.ticket_id = t.id AND m.author_role = 'agent'
                            AND m.public = 1 AND m.created_at > t.created_at) AS replied
                  FROM {_TEMP} AS t WHERE t.created_at > :d30 - {max(first_reply_minutes.values()) * 60})
                WHERE due > :d30 AND due <= :as_of AND (replied IS NULL OR replied > due)
                GROUP BY account""", params)
        return accounts
    finally:
        conn.execute(f"DROP TABLE IF EXISTS temp.{_TEMP}")


def _add_count(conn: sqlite3.Connection, accounts: dict[str, AccountData], name: str, sql: str,
               params: dict[str, Any]) -> None:
    """A per-account count; active accounts without a row have 0 (a count is never missing)."""
    for data in accounts.values():
        data.components[name] = 0.0
    for acct, count in conn.execute(sql, params):
        if acct in accounts:
            accounts[acct].components[name] = float(count)


def _add_tone(conn: sqlite3.Connection, accounts: dict[str, AccountData], params: dict[str, Any]) -> None:
    """Share of scored customer messages in the last 30 days with compound <= -0.05 (None: no scored message).

    ``updated_at > d30`` prunes tickets that cannot hold a message from the window (a message
    always bumps its ticket's ``updated_at``); ``CROSS JOIN`` makes SQLite walk those tickets and
    seek their messages by index instead of scanning every message ever stored.
    """
    for data in accounts.values():
        data.components["negative_tone_30d"] = None
    rows = conn.execute(f"""
        SELECT t.account, COUNT(*), COUNT(s.compound), SUM(s.compound <= {NEGATIVE_MAX})
        FROM {_TEMP} AS t
        CROSS JOIN messages AS m ON m.source = t.source AND m.ticket_id = t.id
        LEFT JOIN message_sentiment AS s ON s.source = m.source AND s.message_id = m.id
        WHERE (t.updated_at IS NULL OR t.updated_at > :d30)
          AND m.author_role = 'customer' AND m.public = 1 AND m.created_at > :d30 AND m.created_at <= :as_of
        GROUP BY t.account
    """, params)
    for acct, total, scored, negative in rows:
        found = accounts.get(acct)
        if found is None:
            continue
        found.messages_30d = int(total)
        found.unscored_30d = int(total) - int(scored)
        if scored:
            found.components["negative_tone_30d"] = float(negative or 0) / float(scored)


def _pick(how: Any, a: Any, b: Any) -> Any:
    """``how(a, b)`` of the values that are present (None when neither is)."""
    return b if a is None else a if b is None else how(a, b)


def _add_identity(conn: sqlite3.Connection, accounts: dict[str, AccountData], first_ticket: dict[str, int],
                  as_of: int, customers: CustomerMap | None, filers: list[tuple[str, str, str]]) -> None:
    """Name, value and tenure; then tickets per tenure month.

    A customer on several helpdesks: its value is the largest its records give (each helpdesk records
    the same customer's ARR; adding them would count it once per helpdesk), its tenure starts at the
    earliest record, and its name is the customer's (:mod:`kpi_engine.customers`).

    Tenure starts at the organization's ``created_at`` (a person's, for an account without an
    organization), or at the first ticket when that is earlier or the record has no date: an
    account cannot have filed a ticket before it existed (Intercom companies, for one, are often
    created in the helpdesk long after the customer's first conversation).
    """
    with savepoint(conn, "dp_cdi_filers"):  # one transaction of the temp database (see customers.install)
        conn.execute(f"DROP TABLE IF EXISTS temp.{_FILERS}")
        conn.execute(f"CREATE TEMP TABLE {_FILERS} (source TEXT, kind TEXT, id TEXT)")
        conn.executemany(f"INSERT INTO temp.{_FILERS} VALUES (?, ?, ?)", filers)
    try:
        orgs = conn.execute(f"""
            SELECT o.source, 'org', o.id, o.name, o.value, o.created_at FROM temp.{_FILERS} AS a
            JOIN organizations AS o ON o.source = a.source AND o.id = a.id WHERE a.kind = 'org'""").fetchall()
        people = conn.execute(f"""
            SELECT p.source, 'user', p.id, COALESCE(NULLIF(p.name, ''), p.email), NULL, p.created_at
            FROM temp.{_FILERS} AS a JOIN people AS p ON p.source = a.source AND p.id = a.id
            WHERE a.kind = 'user'""").fetchall()
    finally:
        conn.execute(f"DROP TABLE IF EXISTS temp.{_FILERS}")
    known: dict[str, tuple[Any, Any, Any]] = {}
    for src, kind, ident, name, value, created in sorted([*orgs, *people], key=lambda r: (r[0], r[1], str(r[2]))):
        acct = customers.account(src, kind, str(ident)) if customers is not None else f"{src}:{kind}:{ident}"
        if acct not in known:
            known[acct] = (name, value, created)
            continue
        had_name, had_value, had_created = known[acct]
        known[acct] = (had_name or name, _pick(max, had_value, value), _pick(min, had_created, created))
    for acct, data in accounts.items():
        name, value, created = known.get(acct, (None, None, None))
        data.name = data.name or name or (data.organization_id or data.requester_id)
        data.value = None if value is None else float(value)
        start = first_ticket[acct] if created is None else min(int(created), first_ticket[acct])
        data.tenure_s = max(0, as_of - start)
        lifetime = data.components.pop("_lifetime") or 0.0
        data.components["tickets_per_tenure_month"] = lifetime / max(data.tenure_s / MONTH_S, 1.0)
