"""The data behind ``deskpulse report``: one period's KPIs, their week-by-week series, breakdowns and the CDI.

Why a module of its own: the report must show exactly the numbers ``deskpulse kpi`` and ``deskpulse distress``
print for the same period and store, so it calls the same :func:`kpi_engine.engine.compute` and takes the
same :class:`~kpi_engine.distress.CdiResult`, and only reshapes them into series a chart can draw. Rendering
lives in :mod:`kpi_engine.report_html`; this module has no HTML and no charting library in it.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from config.settings import CostSettings, CustomerSettings, KpiSettings, SlaSettings
from kpi_engine import distress_latest
from kpi_engine.background import Background
from kpi_engine.customers import CustomerMap
from kpi_engine.distress import DAY, HISTORY_DAYS, CdiResult, compute_cdi, customer_map, day_of, record_history
from kpi_engine.engine import compute, compute_tables
from kpi_engine.registry import BY_NAME, NAMES
from kpi_engine.workspace import NONE_KEY

#: the ticket dimensions the report breaks down, and the label of their key column
BREAKDOWNS = (("agent", "Agent"), ("group", "Group"), ("channel", "Channel"))
#: where a breakdown key's display name is (a channel is its own name)
LABEL_TABLES = {"agent": "people", "group": "groups"}
#: the KPIs shown for each breakdown row (all of them are in ``deskpulse kpi --by X --format json``)
BREAKDOWN_KPIS = ("tickets_created", "tickets_solved", "first_response_time_median_s",
                  "full_resolution_time_median_s", "fcr_pct", "csat_pct", "sla_adherence_pct")
#: what a breakdown table computes: its KPIs, and the backlog, so that its rows are exactly those of
#: ``kpi --by X`` (every family but effort, whose keys are a subset of resolution's, and the CDI counts)
TABLE_KPIS = (*BREAKDOWN_KPIS, "backlog_size")
#: the CDI band counts (read from the CDI history) and every other KPI of the period
CDI_KPIS = tuple(name for name in NAMES if BY_NAME[name].family == "distress")
NOT_CDI = tuple(name for name in NAMES if name not in CDI_KPIS)
#: the KPIs of the SLA chart's rows (only their families run for every customer)
SLA_VIEW_KPIS = ("tickets_created", "sla_adherence_pct")
#: worst accounts shown in the SLA chart; top accounts shown in the CDI table and line chart
SLA_ACCOUNTS = 15
CDI_TABLE_ACCOUNTS = 10
CDI_LINE_ACCOUNTS = 5
CDI_WEEKS = 12
BACKLOG_BUCKETS = (("0_24h", "under 24 h"), ("24_48h", "24–48 h"), ("48h_7d", "2–7 days"), ("gt_7d", "over 7 days"))


@dataclass
class ReportData:
    """Everything a report shows, as plain values (also embedded in the page as JSON for scripts and tests)."""

    title: str
    period: dict[str, Any]
    source: str | None
    generated_at: int
    currency: str
    kpis: dict[str, Any]
    weeks: list[dict[str, Any]]
    breakdowns: dict[str, list[dict[str, Any]]]
    sla_by_account: list[dict[str, Any]]
    distress: dict[str, Any]
    cdi_lines: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "period": self.period, "source": self.source,
                "generated_at": self.generated_at, "currency": self.currency, "kpis": self.kpis,
                "weeks": self.weeks, "breakdowns": self.breakdowns, "sla_by_account": self.sla_by_account,
                "distress": self.distress, "cdi_lines": self.cdi_lines, "notes": self.notes}


def _names(conn: sqlite3.Connection, table: str, source: str | None, ids: list[str]) -> dict[str, str]:
    """id -> display name of the agents (people) or groups ``ids``; the first source wins on a shared id.

    Only the ids a table shows are looked up (a store has hundreds of thousands of people, a report tens of
    agents)."""
    wanted = [i for i in ids if i != NONE_KEY]
    if not wanted:
        return {}
    where, params = ("AND source = ?", [source]) if source else ("", [])
    out: dict[str, str] = {}
    try:
        for start in range(0, len(wanted), 500):  # SQLite's bound-parameter limit is 999 on older builds
            chunk = wanted[start:start + 500]
            rows = conn.execute(f"SELECT id, name FROM {table} WHERE id IN ({','.join('?' * len(chunk))}) {where} "
                                "ORDER BY source", [*chunk, *params]).fetchall()
            for ident, name in rows:
                if name and str(ident) not in out:
                    out[str(ident)] = str(name)
    except sqlite3.OperationalError:  # a store without that table (older schema): ids stay ids
        return {}
    return out


def _week_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for row in result.get("breakdown", []):
        k = row["kpis"]
        age = k.get("backlog_age") or {}
        rows.append({
            "week": row["key"],
            "tickets_created": k.get("tickets_created"), "tickets_solved": k.get("tickets_solved"),
            **{name: k.get(name) for name in (
                "first_response_time_median_s", "first_response_time_p90_s",
                "first_response_time_median_s_business", "first_response_time_p90_s_business",
                "full_resolution_time_median_s", "full_resolution_time_p90_s",
                "full_resolution_time_median_s_business", "full_resolution_time_p90_s_business",
                "csat_pct", "nps", "ces_mean", "backlog_size")},
            "backlog_age": {key: age.get(key) for key, _ in BACKLOG_BUCKETS},
        })
    return rows


def _cdi_lines(conn: sqlite3.Connection, distress: CdiResult, *, kpi: KpiSettings, settings: Any,
               sla: SlaSettings | None, customers: CustomerMap | None = None) -> list[dict[str, Any]]:
    """The CDI at each of the last CDI_WEEKS week-ends for the top accounts, from ``cdi_history``.

    A week-end missing from the history is computed and recorded, as ``deskpulse distress`` backfills days,
    so the line is complete on a fresh install and costs nothing the next time.
    """
    top = [a.account for a in distress.accounts[:CDI_LINE_ACCOUNTS]]
    if not top:
        return []
    days = [day_of(distress.as_of - back * 7 * DAY, kpi.timezone) for back in range(CDI_WEEKS - 1, -1, -1)]
    _fill_week_ends(conn, distress.as_of, range(CDI_WEEKS - 1, 0, -1), kpi=kpi, settings=settings, sla=sla,
                    customers=customers)
    marks = ",".join("?" * len(top))
    rows = conn.execute(f"SELECT day, account, cdi FROM cdi_history WHERE account IN ({marks}) "
                        f"AND day >= ? AND day <= ? ORDER BY day", [*top, days[0], days[-1]]).fetchall()
    by_key = {(r[0], r[1]): r[2] for r in rows}
    by_key.update({(distress.day, a.account): a.cdi for a in distress.accounts[:CDI_LINE_ACCOUNTS]})
    shown = [a.name or a.account for a in distress.accounts[:CDI_LINE_ACCOUNTS]]
    names = {a.account: (a.name or a.account) + (f" ({a.source})" if shown.count(a.name or a.account) > 1 else "")
             for a in distress.accounts[:CDI_LINE_ACCOUNTS]}
    return [{"day": day, "account": names[acct], "cdi": by_key[(day, acct)]}
            for day in days for acct in top if (day, acct) in by_key]


def _fill_week_ends(conn: sqlite3.Connection, as_of: int, backs: Iterable[int], *, kpi: KpiSettings, settings: Any,
                    sla: SlaSettings | None, customers: CustomerMap | None) -> None:
    """Compute and record the CDI of each week-end ``back`` weeks before ``as_of`` missing from the history
    (oldest first). A day's CDI depends on the data only, not on the history, so two processes may share
    the days: one that finds a day already recorded moves on, and one recording it twice records the same."""
    for back in backs:
        ts = as_of - back * 7 * DAY
        day = day_of(ts, kpi.timezone)
        if conn.execute("SELECT 1 FROM cdi_history WHERE day = ? LIMIT 1", (day,)).fetchone() is None:
            past = compute_cdi(conn, settings=settings, as_of=ts, tz=kpi.timezone, sla=sla, customers=customers)
            record_history(conn, past, day, computed_at=as_of)


def _distress_view(distress: CdiResult) -> dict[str, Any]:
    """``deskpulse distress --format json`` with the accounts cut to the report's table (the page stays small)."""
    shown = dataclasses.replace(distress, accounts=distress.accounts[:CDI_TABLE_ACCOUNTS])
    doc = shown.to_dict()
    doc["bands"] = distress.band_counts()  # of every account, not only those shown
    doc["total_accounts"] = len(distress.accounts)
    return doc


def distress_part(conn: sqlite3.Connection, *, settings: Any, kpi: KpiSettings, sla: SlaSettings | None,
                  customers: CustomerSettings | None, now: int) -> tuple[CdiResult, list[dict[str, Any]]]:
    """Today's CDI, refreshed and recorded as ``deskpulse distress`` does (and kept as the latest), and its
    12-week line: what :func:`build_report` runs in a worker process (:mod:`kpi_engine.background`)."""
    cmap = customer_map(conn, customers)  # resolved once for both
    distress = distress_latest.refresh(conn, settings=settings, as_of=now, tz=kpi.timezone, sla=sla,
                                       customers=customers, resolved=cmap)
    return distress, _cdi_lines(conn, distress, kpi=kpi, settings=settings, sla=sla, customers=cmap)


def _sla_rows(by_org: dict[str, Any]) -> list[dict[str, Any]]:
    """The SLA_ACCOUNTS customers with the lowest SLA adherence (most tickets first on a tie)."""
    rows = [{"key": row["key"], "account": row.get("name") or row["key"], "sources": row.get("sources", []),
             "sla_adherence_pct": row["kpis"]["sla_adherence_pct"], "tickets_created": row["kpis"]["tickets_created"]}
            for row in by_org.get("breakdown", []) if row["kpis"].get("sla_adherence_pct") is not None]
    rows.sort(key=lambda r: (r["sla_adherence_pct"], -(r["tickets_created"] or 0), r["account"]))
    rows = rows[:SLA_ACCOUNTS]
    shown = [r["account"] for r in rows]
    for row in rows:  # the same name in two helpdesks, not matched as one customer: say which is which
        if shown.count(row["account"]) > 1 and row["sources"]:
            row["account"] += f" ({', '.join(row['sources'])})"
    return rows


def kpi_part(conn: sqlite3.Connection, **args: Any) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The weekly KPIs (all but the CDI band counts, read once the CDI is recorded) and the agent, group and
    channel tables: what :func:`build_report` runs in a worker process when the CDI is already in hand."""
    weekly = compute(conn, by="week", kpis=NOT_CDI, **args)
    return weekly, compute_tables(conn, dims=[dim for dim, _ in BREAKDOWNS], kpis=TABLE_KPIS, **args)


def build_report(conn: sqlite3.Connection, *, kpi: KpiSettings, sla: SlaSettings, costs: CostSettings,
                 distress_settings: Any, since: int, until: int, now: int, distress: CdiResult | None = None,
                 source: str | None = None, title: str = "Support report",
                 customers: CustomerSettings | None = None) -> ReportData:
    """Compute every number the report shows over ``[since, until)``.

    The CDI is ``distress`` if the caller has it, else the latest one while it is current (computed today, after
    the last sync, with these settings: :mod:`kpi_engine.distress_latest`; the daemon's report follows its
    distress job), else refreshed as ``deskpulse distress`` does. Two processes share the work
    (:mod:`kpi_engine.background`): a CDI to compute runs in the worker (:func:`distress_part`) while this
    process computes the KPIs; with the CDI in hand, the worker computes the weeks and tables (:func:`kpi_part`)
    and this process the customers' SLA and the CDI line. The period's CDI band counts are then read from the
    history, as ``deskpulse kpi`` reads them. ``customers`` (``[customers]``; None: its defaults): one row per
    customer, as ``kpi --by organization`` and ``distress`` show them.
    """
    args: dict[str, Any] = {"kpi": kpi, "sla": sla, "costs": costs, "since": since, "until": until, "source": source,
                            "now": now}
    if distress is None:
        distress = distress_latest.kept(conn, settings=distress_settings, as_of=now, tz=kpi.timezone, sla=sla,
                                        customers=customers)
    if distress is None:
        with Background(conn, "kpi_engine.report:distress_part", settings=distress_settings, kpi=kpi, sla=sla,
                        customers=customers, now=now) as job:
            weekly, tables = kpi_part(conn, **args)
            cmap = customer_map(conn, customers)
            by_org = compute(conn, by="organization", customers=cmap, kpis=SLA_VIEW_KPIS, **args)
            # a store without CDI history (a first report): the worker backfills the last 14 days, then the line's
            # week-ends; this process, done with the KPIs, takes the week-ends older than those days meanwhile
            _fill_week_ends(conn, now, range(CDI_WEEKS - 1, HISTORY_DAYS // 7, -1), kpi=kpi,
                            settings=distress_settings, sla=sla, customers=cmap)
            distress, lines = job.result()
    else:
        with Background(conn, "kpi_engine.report:kpi_part", **args) as job:
            cmap = customer_map(conn, customers)
            lines = _cdi_lines(conn, distress, kpi=kpi, settings=distress_settings, sla=sla, customers=cmap)
            by_org = compute(conn, by="organization", customers=cmap, kpis=SLA_VIEW_KPIS, **args)
            weekly, tables = job.result()
    breakdowns: dict[str, list[dict[str, Any]]] = {}
    for dim, _ in BREAKDOWNS:
        rows = tables[dim].get("breakdown", [])
        names = _names(conn, LABEL_TABLES[dim], source, [r["key"] for r in rows]) if dim in LABEL_TABLES else {}
        breakdowns[dim] = [{"key": row["key"], "label": names.get(row["key"], row["key"]),
                            **{name: row["kpis"].get(name) for name in BREAKDOWN_KPIS}} for row in rows]
        breakdowns[dim].sort(key=lambda r: -(r["tickets_created"] or 0))
    cdi = compute(conn, kpis=CDI_KPIS, **args)
    merged = {**weekly["kpis"], **cdi["kpis"]}
    kpis = {name: merged[name] for name in NAMES}  # catalog order, as `kpi` prints them
    notes = []
    if not weekly.get("breakdown"):
        notes.append("No tickets in this period.")
    period = dict(weekly["period"])
    period["last_day"] = (date.fromisoformat(period["until"]) - timedelta(days=1)).isoformat()
    return ReportData(
        title=title, period=period, source=source, generated_at=now, currency=costs.currency,
        kpis=kpis, weeks=_week_rows(weekly), breakdowns=breakdowns, sla_by_account=_sla_rows(by_org),
        distress=_distress_view(distress), cdi_lines=lines, notes=notes)
