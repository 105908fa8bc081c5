"""The Customer Distress Index (KPIS.md): one explainable 0–100 score per account, its band, trend and priority.

Pipeline (``refresh``): score new customer messages → backfill missing daily history → compute
the CDI as of now → record today's row. History matters because the trend (last 7 daily CDIs
against the 7 before) and the write-back rule "rose ≥ rise_points in 7 days" are read from
``cdi_history``; ``backfill`` makes both work on a fresh install instead of two weeks later.

Scaling: each component becomes its percentile rank among accounts active in the last 90 days,
so the CDI says "worse than most of your customers" whatever the helpdesk's size. Percentiles of
a handful of accounts are noise, so below ``MIN_ACCOUNTS_FOR_PERCENTILES`` active accounts the
components are instead scaled min–max against reference values (``[distress] reference``), and
the result says so (``method == "minmax"`` and a note).

Priority (value × tenure factors, each 0.5–1.5) orders the list; it never changes the CDI or the
band, so a small distressed customer is still red and still listed, only lower.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from config.settings import CustomerSettings, DistressSettings, SlaSettings
from kpi_engine import distress_rank as rk
from kpi_engine.customers import CustomerMap, resolve
from kpi_engine.distress_data import AccountData, load_accounts
from kpi_engine.sentiment import score_pending
from kpi_engine.transactions import savepoint

__all__ = ["AccountCdi", "CdiResult", "backfill", "compute_cdi", "record_history", "refresh"]

logger = logging.getLogger("deskpulse.kpi.distress")

MIN_ACCOUNTS_FOR_PERCENTILES = 20
TREND_DEAD_BAND = 5.0
TREND_WINDOW_DAYS = 7
#: the days of history a refresh backfills on a new store (the trend compares two weeks)
HISTORY_DAYS = 14
TREND_MIN_DAYS = 4  # each 7-day window needs at least this many daily CDIs, else the trend is None
DAY = rk.DAY


@dataclass(slots=True)
class AccountCdi:
    """One account's CDI, explained: raw components, their scaled values (0–1), and the words for the top three."""

    account: str
    source: str
    organization_id: str | None
    requester_id: str | None
    name: str | None
    cdi: int
    band: str
    priority: float
    components: dict[str, float | int | None]
    scaled: dict[str, float]
    top_reasons: list[str]
    value: float | None = None
    tenure_days: float | None = None
    value_factor: float = 1.0
    tenure_factor: float = 1.0
    trend: str | None = None  # "↑", "↓", "→" or None (history too short)
    trend_delta: float | None = None
    rise_7d: int | None = None  # cdi minus the CDI recorded 7 days earlier
    rising: bool = False  # rise_7d >= settings.rise_points
    sources: list[str] = field(default_factory=list)  # the helpdesks its tickets came from (several: one customer)
    members: list[str] = field(default_factory=list)  # a merged customer's helpdesk accounts (source:kind:id)

    def to_dict(self) -> dict[str, Any]:
        """Every field; containers copied one level deep (their items are numbers and strings), which
        ``dataclasses.asdict``'s recursive deep copy made the slowest part of a 25k-account JSON dump."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.copy() if isinstance(value, dict | list) else value
        return out


@dataclass(slots=True)
class CdiResult:
    as_of: int
    day: str
    source: str | None
    method: str  # "percentile" or "minmax"
    active_accounts: int
    weights: dict[str, float]
    accounts: list[AccountCdi] = field(default_factory=list)  # ordered by priority, highest first
    notes: list[str] = field(default_factory=list)

    @property
    def note(self) -> str | None:
        return " ".join(self.notes) or None

    def band_counts(self) -> dict[str, int]:
        """``{"cdi_red": n, "cdi_yellow": n, "cdi_green": n}`` for the KPI report."""
        counts = {"cdi_red": 0, "cdi_yellow": 0, "cdi_green": 0}
        for acct in self.accounts:
            counts[f"cdi_{acct.band}"] += 1
        return counts

    def flagged(self) -> list[AccountCdi]:
        """Predicted distress (KPIS.md): red, or risen by at least ``rise_points`` in 7 days."""
        return [a for a in self.accounts if a.band == "red" or a.rising]

    def to_dict(self) -> dict[str, Any]:
        """Stable JSON shape for ``deskpulse distress --format json`` and scripts."""
        return {
            "as_of": datetime.fromtimestamp(self.as_of, UTC).isoformat().replace("+00:00", "Z"),
            "day": self.day, "source": self.source, "method": self.method, "note": self.note,
            "active_accounts": self.active_accounts, "weights": self.weights,
            "bands": self.band_counts(), "accounts": [a.to_dict() for a in self.accounts],
        }


def customer_map(conn: sqlite3.Connection, customers: CustomerSettings | CustomerMap | None) -> CustomerMap:
    """The customers to group accounts by: resolved from ``[customers]`` (None: its defaults, matching on)."""
    return customers if isinstance(customers, CustomerMap) else resolve(conn, customers)


def day_of(ts: int, tz: str = "UTC") -> str:
    """The calendar day (ISO) of a timestamp in the reporting timezone: the key of ``cdi_history``."""
    return datetime.fromtimestamp(ts, ZoneInfo(tz)).date().isoformat()


def compute_cdi(
    conn: sqlite3.Connection,
    *,
    settings: DistressSettings,
    as_of: int,
    source: str | None = None,
    tz: str = "UTC",
    sla: SlaSettings | None = None,
    customers: CustomerSettings | CustomerMap | None = None,
) -> CdiResult:
    """The CDI of every account active in the 90 days before ``as_of`` (optionally of one source).

    Reads ``message_sentiment`` for the tone (run ``score_pending`` first; ``refresh`` does) and
    ``cdi_history`` for the trend. Writes nothing persistent (a TEMP table on this connection,
    dropped before returning).
    """
    weights = rk.resolve_weights(settings.weights)
    used = {c: w for c, w in weights.items() if w > 0}
    optional = frozenset(c for c in used if c in rk.OPTIONAL)
    first_reply = dict(sla.first_reply) if sla is not None else {}
    data = load_accounts(conn, as_of=int(as_of), source=source, optional=optional, first_reply_minutes=first_reply,
                         customers=customer_map(conn, customers))
    result = CdiResult(int(as_of), day_of(int(as_of), tz), source, "percentile", len(data), used)
    if "sla_breaches_30d" in used and not first_reply:
        result.notes.append("sla_breaches_30d has a weight but no [sla] first_reply targets are set: "
                            "it is unknown for every account (scaled 0).")
    unscored = sum(d.unscored_30d for d in data.values())
    if unscored:
        result.notes.append(f"{unscored} customer messages of the last 30 days have no sentiment score yet "
                            "(negative tone leaves them out; run score_pending).")
    if len(data) < MIN_ACCOUNTS_FOR_PERCENTILES:
        result.method = "minmax"
        result.notes.append(
            f"Only {len(data)} accounts were active in the last 90 days (fewer than {MIN_ACCOUNTS_FOR_PERCENTILES}): "
            "components are scaled min-max against reference values, not ranked by percentile.")
    scaled = _scale(data, used, result.method, rk.resolve_reference(settings.reference))
    value_pct = rk.percentile_ranks({a: d.value for a, d in data.items()})
    tenure_pct = rk.percentile_ranks({a: (float(d.tenure_s) if d.tenure_s is not None else None)
                                      for a, d in data.items()})
    total_w = sum(used.values())
    for acct, d in data.items():
        s = scaled[acct]
        cdi = rk.round_half_up(100.0 * sum(w * s[c] for c, w in used.items()) / total_w)
        vf, tf = 0.5 + value_pct[acct], 0.5 + tenure_pct[acct]
        components = {c: _tidy(d.components[c]) for c in rk.COMPONENTS if c in d.components}
        result.accounts.append(AccountCdi(
            account=acct, source=d.source, organization_id=d.organization_id, requester_id=d.requester_id,
            name=d.name, cdi=cdi, band=rk.band(cdi, settings.green_max, settings.yellow_max),
            priority=round(cdi * vf * tf, 2), components=components, scaled={c: round(s[c], 4) for c in used},
            top_reasons=rk.top_reasons(s, used, result.method), value=d.value,
            tenure_days=None if d.tenure_s is None else round(d.tenure_s / DAY, 1),
            value_factor=round(vf, 4), tenure_factor=round(tf, 4), sources=list(d.sources),
            members=list(d.members)))
    _add_trends(conn, result, settings)
    result.accounts.sort(key=lambda a: (-a.priority, -a.cdi, a.account))
    return result


def _tidy(value: float | None) -> float | int | None:
    """Counts and seconds as whole numbers, rates to 4 places: what a person and a JSON diff want to read."""
    if value is None:
        return None
    if value.is_integer() or abs(value) >= 1000:
        return int(round(value))
    return round(value, 4)


def _scale(data: Mapping[str, AccountData], used: Mapping[str, float], method: str,
           reference: Mapping[str, float]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {a: {} for a in data}
    for comp in used:
        if method == "percentile":
            ranks = rk.percentile_ranks({a: d.components.get(comp) for a, d in data.items()})
        else:
            ranks = {a: rk.minmax_scale(d.components.get(comp), reference[comp]) for a, d in data.items()}
        for acct, p in ranks.items():
            out[acct][comp] = p
    return out


def _add_trends(conn: sqlite3.Connection, result: CdiResult, settings: DistressSettings) -> None:
    """Trend: mean of the last 7 daily CDIs (today's from this result) vs the 7 before, ±5 dead band.

    Summed per account in SQL (count and sum of each window, the CDI a week ago): a quarter of a million
    history rows stay in SQLite instead of becoming Python objects.
    """
    today = date.fromisoformat(result.day)
    first = (today - timedelta(days=2 * TREND_WINDOW_DAYS - 1)).isoformat()
    week_ago = (today - timedelta(days=TREND_WINDOW_DAYS)).isoformat()
    recent_start = (today - timedelta(days=TREND_WINDOW_DAYS - 1)).isoformat()
    where = "day >= :first AND day < :today" + (" AND source = :source" if result.source is not None else "")
    windows: dict[str, tuple[int, int, int, int, int | None]] = {}
    for acct, n_recent, s_recent, n_prior, s_prior, then in conn.execute(f"""
            SELECT account, SUM(day >= :recent), SUM(CASE WHEN day >= :recent THEN CAST(cdi AS INTEGER) ELSE 0 END),
                   SUM(day < :recent), SUM(CASE WHEN day < :recent THEN CAST(cdi AS INTEGER) ELSE 0 END),
                   MAX(CASE WHEN day = :week_ago THEN CAST(cdi AS INTEGER) END)
            FROM cdi_history WHERE {where} GROUP BY account""",
            {"first": first, "today": result.day, "source": result.source, "recent": recent_start,
             "week_ago": week_ago}):
        windows[acct] = (int(n_recent), int(s_recent), int(n_prior), int(s_prior), then)
    for acct in result.accounts:
        n_recent, s_recent, n_prior, s_prior, then = windows.get(acct.account, (0, 0, 0, 0, None))
        n_recent, s_recent = n_recent + 1, s_recent + acct.cdi  # today's
        if then is not None:
            acct.rise_7d = acct.cdi - int(then)
            acct.rising = acct.rise_7d >= settings.rise_points
        if n_recent >= TREND_MIN_DAYS and n_prior >= TREND_MIN_DAYS:
            delta = s_recent / n_recent - s_prior / n_prior
            acct.trend_delta = round(delta, 2)
            acct.trend = "↑" if delta > TREND_DEAD_BAND else ("↓" if delta < -TREND_DEAD_BAND else "→")


def record_history(conn: sqlite3.Connection, result: CdiResult, day: str | date | None = None, *,
                   computed_at: int | None = None) -> int:
    """Store ``result`` as the day's snapshot in ``cdi_history``: one row per account; idempotent.

    The day's earlier rows for the same scope (all sources, or ``result.source``) are replaced,
    so an account that stopped being active since the last run of the day does not linger.
    """
    key = result.day if day is None else (day.isoformat() if isinstance(day, date) else str(day))
    stamp = int(time.time()) if computed_at is None else int(computed_at)
    rows = [(key, a.account, a.source, a.organization_id, a.requester_id, a.cdi, a.band, a.priority,
             json.dumps({"method": result.method, "values": a.components, "scaled": a.scaled,
                         "top_reasons": a.top_reasons, **_customer_fields(a)}, separators=(",", ":"),
                        sort_keys=True), stamp)
            for a in result.accounts]
    with savepoint(conn, "dp_cdi_history"):
        if result.source is None:
            conn.execute("DELETE FROM cdi_history WHERE day = ?", (key,))
        else:
            conn.execute("DELETE FROM cdi_history WHERE day = ? AND source = ?", (key, result.source))
        conn.executemany(
            "INSERT INTO cdi_history (day, account, source, organization_id, requester_id, cdi, band, priority, "
            "components, computed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(day, account) DO UPDATE SET "
            "source = excluded.source, organization_id = excluded.organization_id, "
            "requester_id = excluded.requester_id, cdi = excluded.cdi, band = excluded.band, "
            "priority = excluded.priority, components = excluded.components, computed_at = excluded.computed_at",
            rows)
    return len(rows)


def _customer_fields(acct: AccountCdi) -> dict[str, Any]:
    """What write-back and the digest need to know of a customer on several helpdesks (nothing otherwise)."""
    if not acct.members:
        return {}
    return {"name": acct.name, "sources": acct.sources, "members": acct.members}


def backfill(
    conn: sqlite3.Connection,
    *,
    settings: DistressSettings,
    as_of: int,
    days: int = 14,
    source: str | None = None,
    tz: str = "UTC",
    sla: SlaSettings | None = None,
    customers: CustomerSettings | CustomerMap | None = None,
    only_missing: bool = True,
) -> int:
    """Compute and record the CDI as of each of the ``days`` days before ``as_of`` (oldest first).

    Each past day is computed at the same time of day as ``as_of``. With ``only_missing`` a day
    that already has rows (for this scope) is left alone, so calling this on every run is cheap.
    Returns how many days were computed.
    """
    done = 0
    customers = customer_map(conn, customers)
    for back in range(days, 0, -1):
        ts = int(as_of) - back * DAY
        key = day_of(ts, tz)
        if only_missing and _has_day(conn, key, source):
            continue
        result = compute_cdi(conn, settings=settings, as_of=ts, source=source, tz=tz, sla=sla, customers=customers)
        record_history(conn, result, key, computed_at=int(as_of))
        done += 1
    if done:
        logger.info("backfilled %d days of CDI history", done)
    return done


def _has_day(conn: sqlite3.Connection, day: str, source: str | None) -> bool:
    if source is None:
        row = conn.execute("SELECT 1 FROM cdi_history WHERE day = ? LIMIT 1", (day,)).fetchone()
    else:
        row = conn.execute("SELECT 1 FROM cdi_history WHERE day = ? AND source = ? LIMIT 1", (day, source)).fetchone()
    return row is not None


def refresh(
    conn: sqlite3.Connection,
    *,
    settings: DistressSettings,
    as_of: int,
    source: str | None = None,
    tz: str = "UTC",
    sla: SlaSettings | None = None,
    customers: CustomerSettings | CustomerMap | None = None,
    history_days: int = HISTORY_DAYS,
    record: bool = True,
) -> CdiResult:
    """The whole pipeline: score pending messages, backfill history, compute, record today's snapshot."""
    score_pending(conn, now=int(as_of))
    customers = customer_map(conn, customers)  # resolved once for every day computed
    if history_days > 0:
        backfill(conn, settings=settings, as_of=as_of, days=history_days, source=source, tz=tz, sla=sla,
                 customers=customers)
    result = compute_cdi(conn, settings=settings, as_of=as_of, source=source, tz=tz, sla=sla, customers=customers)
    if record:
        record_history(conn, result, computed_at=int(as_of))
    return result
