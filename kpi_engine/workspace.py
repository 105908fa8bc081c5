"""The shared state of one KPI computation: connection, settings, period, breakdown, TEMP tables.

Why TEMP tables: every family needs the same per-ticket facts (first reply,
reply counts, status history). Computing them once into connection-private
TEMP tables (they never touch the store file, so the store stays read-only
for us) and aggregating those with ``GROUP BY`` is what keeps a two-year
``--by month`` run over a million tickets within seconds.

Breakdown keys: a family asks :meth:`Workspace.key` for the SQL key of a row,
passing the timestamp that attributes the row (created, solved, replied, rated
...). For ``month``/``week`` that timestamp picks the bucket; for ticket
dimensions (``agent``, ``group`` ...) the ticket's column does. Overall values
are derived from the per-key partial results (sums add up; percentiles select
across the per-key sorted lists), so nothing is computed twice.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from config.settings import CostSettings, KpiSettings, SlaSettings
from kpi_engine.business_hours import Schedule
from kpi_engine.partials import Parts
from kpi_engine.periods import Bucket, Period, bucket_case, month_buckets, week_buckets

logger = logging.getLogger("deskpulse.kpi")

UNSOLVED = ("new", "open", "pending", "on_hold")
SOLVED = ("solved", "closed")
TIME_DIMENSIONS = ("month", "week")
#: breakdown dimension -> the kpi_facts column that keys it (severity is already COALESCE(severity, 1))
TICKET_DIMENSIONS = {
    "source": "source", "channel": "channel", "priority": "severity", "agent": "assignee_id", "group": "group_id",
    "organization": "organization_id",
}
DIMENSIONS = TIME_DIMENSIONS + tuple(TICKET_DIMENSIONS)
#: dimensions that several breakdowns of one pass can combine (``engine.compute_tables``): the organization
#: is left out (its keys are merged per customer), and so are the time buckets (a ticket is in several)
TABLE_DIMENSIONS = tuple(d for d in TICKET_DIMENSIONS if d != "organization")
#: joins the dimensions of a combined breakdown (``by="agent+group+channel"``); its key is a JSON array
COMBINED = "+"
NONE_KEY = "(none)"
#: a period creating more than this share of all tickets is read by scanning the facts, not through indexes
WIDE_SHARE = 0.3


def sql_list(values: Iterable[Any]) -> str:
    """A literal SQL list for IN (...): strings quoted and escaped, numbers as is."""
    out = []
    for v in values:
        if isinstance(v, int | float):
            out.append(str(v))
        else:
            out.append("'" + str(v).replace("'", "''") + "'")
    return "(" + ", ".join(out) + ")" if out else "(NULL)"


def ticket_set(alias: str = "t") -> str:
    """KPIS.md: deleted, spam and merged-away tickets are excluded from every KPI."""
    return (f"{alias}.status IS NOT 'deleted' AND COALESCE({alias}.is_spam, 0) = 0 "
            f"AND COALESCE({alias}.is_merged, 0) = 0")


def list_sources(conn: sqlite3.Connection) -> list[str]:
    """Distinct ticket sources via a loose index scan (microseconds, not a full scan)."""
    rows = conn.execute(
        "WITH RECURSIVE s(x) AS (SELECT (SELECT MIN(source) FROM tickets) UNION ALL "
        "SELECT (SELECT MIN(source) FROM tickets WHERE source > s.x) FROM s WHERE s.x IS NOT NULL) "
        "SELECT x FROM s WHERE x IS NOT NULL").fetchall()
    return [r[0] for r in rows]


@lru_cache(maxsize=8)
def _day_rows(timezone: str, hours: tuple[tuple[str, str], ...], holidays: tuple[date, ...], t0: int,
              t1: int) -> tuple[int, list[tuple[int, ...]]]:
    """The schedule's day rows, computed once per process for the same schedule and range (a fact build
    covers every day since 1970: about 0.2 s of Python each time otherwise)."""
    schedule = Schedule.from_settings(KpiSettings(timezone=timezone, business_hours=dict(hours),
                                                  holidays=list(holidays)))
    assert schedule is not None
    return schedule.day_rows(t0, t1)


@dataclass(frozen=True)
class Shard:
    """A slice of the tickets by fact key (the ticket's rowid): [lo, hi), either end open (None).
    ``first`` also takes the rows that belong to no known ticket (survey responses)."""

    lo: int | None = None
    hi: int | None = None
    first: bool = True


class Workspace:
    """One computation: what is asked (period, sources, breakdown) and the TEMP tables that answer it."""

    def __init__(self, conn: sqlite3.Connection, *, kpi: KpiSettings, sla: SlaSettings, costs: CostSettings,
                 period: Period, sources: Sequence[str], by: str | None, now: int,
                 shard: Shard | None = None, source: str | None = None,
                 families: frozenset[str] | None = None, kpis: frozenset[str] | None = None) -> None:
        self.conn = conn
        self.kpi = kpi
        self.sla = sla
        self.costs = costs
        self.period = period
        self.sources = list(sources)
        #: the one source asked for (None: every source, survey imports included)
        self.source = source
        self.by = by
        self.now = now
        self.schedule = Schedule.from_settings(kpi)
        self.buckets: list[Bucket] = []
        if by == "month":
            self.buckets = list(month_buckets(period))
        elif by == "week":
            self.buckets = week_buckets(period)
        self.as_of = period.until
        self.parts = Parts()
        self.bh_width = 0
        self.temp_tables: list[str] = []
        self.temp_views: list[str] = []
        self.wide = False
        self.shard = shard or Shard()
        #: SQL selecting the tickets rowids to build facts for (None: the tickets the period needs)
        self.selection: str | None = None
        #: a combined breakdown's dimensions (``by="agent+group"``; empty otherwise)
        self.dims = tuple(by.split(COMBINED)) if by and COMBINED in by else ()
        #: the families collecting and the KPIs asked for (None: all of them, ``compute(kpis=None)``)
        self.families = families
        self.kpis = kpis

    def running(self, family: str) -> bool:
        """Whether ``family`` collects in this computation (a family riding on another's pass asks)."""
        return self.families is None or family in self.families

    def wants(self, kpi: str) -> bool:
        """Whether ``kpi`` was asked for: a family may skip a pass that only that KPI needs."""
        return self.kpis is None or kpi in self.kpis

    # -- SQL helpers ----------------------------------------------------------------------------------
    @property
    def src(self) -> str:
        return sql_list(self.sources)

    @property
    def params(self) -> dict[str, Any]:
        return {"since": self.period.since, "until": self.period.until, "as_of": self.as_of, "now": self.now}

    def needed(self, alias: str) -> str:
        """Whether the ticket of a facts or responses row (``alias``) is one the period needs (see
        :meth:`open_facts`). Unary + everywhere: the (source, ticket_id) index must never drive a scan."""
        since, until = self.period.since, self.period.until
        return (f"+{alias}.source IN {self.src} AND +{alias}.created_at < {until} AND (+{alias}.created_at >= {since} "
                f"OR {alias}.synced_solved_at >= {since} OR {alias}.synced_solved_at IS NULL "
                f"OR {alias}.status IN {sql_list(UNSOLVED)})")

    def during(self, column: str) -> str:
        """``column`` in [since, until): through the column's index for a short period, by a plain scan
        (unary +) when the period covers most tickets, where an index would only add a lookup per row."""
        col = f"+{column}" if self.wide else column
        return f"{col} >= :since AND {col} < :until"

    def in_shard(self, rowid_col: str) -> str:
        """`` AND ...`` restricting rows to this shard's tickets by fact key (empty when not sharded)."""
        out = ""
        if self.shard.lo is not None:
            out += f" AND {rowid_col} >= {int(self.shard.lo)}"
        if self.shard.hi is not None:
            out += f" AND {rowid_col} < {int(self.shard.hi)}"
        return out

    def key(self, time_expr: str, dim_expr: str = "k.dimension") -> str:
        """SQL for the breakdown key of a row attributed at ``time_expr``; NULL without breakdown.

        Ticket dimensions are never NULL here (a missing value is ``(none)``), so NULL always
        means "no breakdown".
        """
        if self.by in TIME_DIMENSIONS:
            return bucket_case(time_expr, self.buckets)
        if self.by in TICKET_DIMENSIONS or self.dims:
            return dim_expr
        return "NULL"

    def dimension_of(self, exprs: dict[str, str]) -> str:
        """The breakdown key from per-dimension SQL ``exprs`` (a family reading other tables than the facts):
        the expression of ``by``, a JSON array of each dimension's for a combined breakdown, else NULL."""
        if self.dims:
            return f"json_array({', '.join(exprs[d] for d in self.dims)})"
        return exprs.get(self.by or "", "NULL")

    def dim_sql(self, alias: str = "k") -> str:
        """The ticket-dimension value of a kpi_facts row (``(none)`` when missing), or NULL.

        An organization is keyed ``source:org:id`` (two helpdesks may use the same id for different
        customers); :func:`kpi_engine.engine.compute` then merges the keys of one customer.
        """
        if self.by == "organization":
            return f"COALESCE({alias}.source || ':org:' || NULLIF({alias}.organization_id, ''), '{NONE_KEY}')"
        if self.dims:
            return self.dimension_of({d: f"COALESCE({alias}.{c}, '{NONE_KEY}')" for d, c in TICKET_DIMENSIONS.items()})
        if self.by in TICKET_DIMENSIONS:
            return f"COALESCE({alias}.{TICKET_DIMENSIONS[self.by]}, '{NONE_KEY}')"
        return "NULL"

    def label(self, key: Any) -> str:
        if self.by in TIME_DIMENSIONS:
            return self.buckets[int(key)].label
        return NONE_KEY if key is None else str(key)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.execute(sql).fetchall()

    @property
    def business(self) -> bool:
        return self.schedule is not None

    def bjoin(self, alias: str, epoch_expr: str) -> str:
        """LEFT JOIN of the business-day row for ``epoch_expr`` (empty without a schedule)."""
        if not self.business:
            return ""
        return f" LEFT JOIN _kpi_bh {alias} ON {alias}.u = ({epoch_expr}) / 86400"

    def bexpr(self, alias: str, epoch_expr: str) -> str:
        """B(epoch): cumulative business seconds, using the row joined by :meth:`bjoin`; NULL without schedule."""
        if not self.business:
            return "NULL"
        parts = [f"{alias}.cum"] + [f"MAX(0, MIN({epoch_expr}, {alias}.b{i}) - {alias}.a{i})"
                                   for i in range(1, self.bh_width + 1)]
        return "(" + " + ".join(parts) + ")"

    def execute(self, sql: str, params: dict[str, Any] | Sequence[Any] | None = None) -> sqlite3.Cursor:
        if params is None:
            params = self.params
        return self.conn.execute(sql, params)

    # -- TEMP tables ----------------------------------------------------------------------------------
    def open_facts(self) -> None:
        """TEMP VIEW ``_kpi_period_facts``: the stored facts (:mod:`kpi_engine.fact_store`) of the tickets the
        period needs, of the asked sources and this shard, with the breakdown key of ticket dimensions as
        ``dimension``.

        Needed = created before ``until`` and either created in the period, solved in or after it, or
        unsolved. Deleted, spam and merged tickets have no facts. The view is flattened into each query,
        so the families read one narrow table.
        """
        since, until = self.period.since, self.period.until
        total = self.conn.execute("SELECT COUNT(*) FROM kpi_facts").fetchone()[0]
        inside = self.conn.execute("SELECT COUNT(*) FROM kpi_facts WHERE created_at >= ? AND created_at < ?",
                                   [since, until]).fetchone()[0]
        self.wide = bool(total) and inside > WIDE_SHARE * total
        self.conn.execute("DROP VIEW IF EXISTS temp._kpi_period_facts")
        # +k.source: the (source, ticket_id) index must never drive these scans; the time columns' indexes may
        self.conn.execute(f"""CREATE TEMP VIEW _kpi_period_facts AS SELECT k.*, {self.dim_sql('k')} AS dimension
            FROM kpi_facts k WHERE {self.needed('k')}{self.in_shard('k.ticket_rowid')}""")
        self.temp_views.append("_kpi_period_facts")

    def create_temp(self, name: str, ddl: str) -> None:
        self.conn.execute(f"DROP TABLE IF EXISTS temp.{name}")
        self.conn.execute(ddl)
        self.temp_tables.append(name)

    def build_business_days(self) -> None:
        """Load the schedule's per-UTC-day rows covering every timestamp the KPIs may look at."""
        if not self.business or not self.sources:
            return
        lo = self.conn.execute(
            f"SELECT MIN(created_at) FROM tickets WHERE source IN {self.src}").fetchone()[0]
        lo = min(lo if lo is not None else self.period.since, self.period.since)
        hi = max(self.period.until, self.now) + 7 * 86400
        hi += -hi % (30 * 86400)  # rounded up: repeated builds in one process share the cached rows
        width, rows = _day_rows(self.kpi.timezone, tuple(sorted(self.kpi.business_hours.items())),
                                tuple(self.kpi.holidays), lo - 86400, hi)
        self.bh_width = width
        cols = ", ".join(f"a{i} INTEGER, b{i} INTEGER" for i in range(1, width + 1))
        self.create_temp("_kpi_bh", f"CREATE TEMP TABLE _kpi_bh (u INTEGER PRIMARY KEY, cum INTEGER, {cols})")
        self.conn.executemany(f"INSERT INTO _kpi_bh VALUES ({', '.join('?' * (2 + 2 * width))})", rows)

    def close(self) -> None:
        for kind, names in (("VIEW", self.temp_views), ("TABLE", self.temp_tables)):
            for name in reversed(names):
                try:
                    self.conn.execute(f"DROP {kind} IF EXISTS temp.{name}")
                except sqlite3.Error:  # pragma: no cover - a broken connection is the caller's problem
                    logger.warning("could not drop temp %s %s", kind.lower(), name)
            names.clear()
