"""Reporting periods in the reporting timezone: dates <-> epochs, month and ISO-week buckets.

KPIS.md: ``--since`` is inclusive, ``--until`` exclusive, both dates in the
reporting timezone; a period is therefore [local midnight of since, local
midnight of until). Buckets (``--by month``/``week``) are the calendar months /
ISO weeks cut at local midnights, clipped to the period, so their union is the
period exactly and every timestamped event lands in exactly one bucket.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


def parse_date(text: str) -> date:
    """``YYYY-MM-DD`` -> date; ValueError with a readable message otherwise."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"'{text}' is not a date (use YYYY-MM-DD)") from None


def local_midnight(day: date, timezone: str) -> int:
    """Epoch of the first instant of ``day`` in ``timezone`` (a midnight skipped by DST maps to 01:00)."""
    return int(datetime.combine(day, time(0), tzinfo=ZoneInfo(timezone)).timestamp())


def local_date(epoch: int, timezone: str) -> date:
    return datetime.fromtimestamp(epoch, ZoneInfo(timezone)).date()


def iso_week_start(week: str) -> date:
    """``2026-W47`` -> the Monday starting that ISO week; ValueError when malformed."""
    match = _WEEK.match(week.strip())
    if not match:
        raise ValueError(f"'{week}' is not an ISO week (use YYYY-Www, e.g. 2026-W07)")
    year, num = int(match.group(1)), int(match.group(2))
    try:
        return date.fromisocalendar(year, num, 1)
    except ValueError:
        raise ValueError(f"'{week}' is not an ISO week of {year}") from None


def iso_week_label(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True)
class Period:
    """[since, until) as epochs plus the timezone they are read in."""

    since: int
    until: int
    timezone: str

    @classmethod
    def from_dates(cls, since: date, until: date, timezone: str) -> Period:
        return cls(local_midnight(since, timezone), local_midnight(until, timezone), timezone)

    @property
    def since_date(self) -> date:
        return local_date(self.since, self.timezone)

    @property
    def until_date(self) -> date:
        return local_date(self.until, self.timezone)

    def as_json(self) -> dict[str, str]:
        return {"since": self.since_date.isoformat(), "until": self.until_date.isoformat(),
                "timezone": self.timezone}

    def days(self) -> float:
        return (self.until - self.since) / 86400.0


@dataclass(frozen=True)
class Bucket:
    """One breakdown bucket: its label and [start, end) epochs (clipped to the period)."""

    label: str
    start: int
    end: int


@lru_cache(maxsize=256)  # every key of a breakdown asks again for the same period's months
def month_buckets(period: Period) -> list[Bucket]:
    """Calendar months touching the period, clipped to it (a shared list: do not modify)."""
    out: list[Bucket] = []
    day = period.since_date.replace(day=1)
    while True:
        nxt = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
        start = max(local_midnight(day, period.timezone), period.since)
        end = min(local_midnight(nxt, period.timezone), period.until)
        if start >= period.until:
            break
        if end > start:
            out.append(Bucket(day.strftime("%Y-%m"), start, end))
        day = nxt
    return out


def week_buckets(period: Period) -> list[Bucket]:
    """ISO weeks (Monday-Sunday, local) touching the period, clipped to it."""
    out: list[Bucket] = []
    first = period.since_date
    day = first - timedelta(days=first.weekday())
    while True:
        nxt = day + timedelta(days=7)
        start = max(local_midnight(day, period.timezone), period.since)
        end = min(local_midnight(nxt, period.timezone), period.until)
        if start >= period.until:
            break
        if end > start:
            out.append(Bucket(iso_week_label(day), start, end))
        day = nxt
    return out


def bucket_case(expr: str, buckets: list[Bucket]) -> str:
    """SQL mapping ``expr`` (an epoch) to the index of its bucket, or NULL outside all buckets.

    A balanced tree of CASE expressions: O(log n) comparisons per row, no join and
    no per-row Python call, which matters when a two-year ``--by week`` run maps
    millions of timestamps.
    """
    if not buckets:
        return "NULL"
    bounds = [b.start for b in buckets] + [buckets[-1].end]
    contiguous = all(buckets[i].end == buckets[i + 1].start for i in range(len(buckets) - 1))
    if not contiguous:  # pragma: no cover - month/week buckets always are
        raise ValueError("buckets must be contiguous")

    def tree(lo: int, hi: int) -> str:  # buckets lo..hi-1
        if hi - lo == 1:
            return str(lo)
        mid = (lo + hi) // 2
        return f"CASE WHEN {expr} < {bounds[mid]} THEN {tree(lo, mid)} ELSE {tree(mid, hi)} END"

    return f"CASE WHEN {expr} >= {bounds[0]} AND {expr} < {bounds[-1]} THEN {tree(0, len(buckets))} END"
