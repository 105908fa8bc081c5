"""What the weekly digest is made of, and how to build it from the KPI engine's output.

Why dataclasses rather than the raw KPI dicts: the composer must not guess at
shapes (is ``backlog_age`` a number or an object? is last week missing or
zero?). Everything the digest shows is named here once; ``digest_input_from_kpis``
is the one place that knows the ``{"period": ..., "kpis": {NAME: value}}`` shape
of ``kpi_engine`` results (KPIS.md).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

TREND_WEEKS = 8
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


@dataclass(frozen=True, slots=True)
class DigestAccount:
    """One account worth a line: it turned red this week or its CDI rose."""

    name: str
    source: str
    cdi: float | None
    band: str                          # "red" | "yellow" | "green"
    change_7d: float | None            # CDI points vs 7 days ago (positive = more distressed)
    reasons: list[str] = field(default_factory=list)   # top components in words, most important first
    turned_red: bool = False


@dataclass(frozen=True, slots=True)
class DigestTicket:
    """One of the oldest unsolved tickets."""

    source: str
    id: str
    subject: str
    age_s: float
    priority: str | None = None
    url: str | None = None


@dataclass(slots=True)
class DigestInput:
    """Everything one weekly digest shows. KPI keys are KPIS.md JSON names; nested objects are flattened
    with a dot (``backlog_age.pct_gt_7d``). ``trend`` holds 8 weekly values, oldest → newest (this week last)."""

    week: str                                        # ISO week, "2026-W47"
    since: date                                      # inclusive, reporting timezone
    until: date                                      # exclusive
    timezone: str
    sources: list[str]
    headline: dict[str, float | None]
    previous: dict[str, float | None]
    trend: dict[str, list[float | None]] = field(default_factory=dict)
    accounts: list[DigestAccount] = field(default_factory=list)
    oldest_open: list[DigestTicket] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    report_url: str | None = None  # the week's HTML report, when the daemon publishes one ([report] url)


def iso_week_bounds(week: str) -> tuple[date, date]:
    """``"2026-W47"`` → (Monday, next Monday): the digest's ``since`` (inclusive) and ``until`` (exclusive)."""
    match = _WEEK.match(week.strip())
    if not match:
        raise ValueError(f"'{week}' is not an ISO week (use YYYY-Www, e.g. 2026-W47)")
    try:
        monday = date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
    except ValueError:
        raise ValueError(f"'{week}' does not exist (that year has no week {match.group(2)})") from None
    return monday, monday + timedelta(days=7)


def flatten_kpis(result: Mapping[str, Any] | None) -> dict[str, float | None]:
    """A KPI result (``{"kpis": {...}}`` or the inner dict) → numeric values keyed by name.

    One level of nesting is flattened with a dot (``backlog_age`` → ``backlog_age.pct_gt_7d``,
    ``backlog_age.0_24h``, ...). Lists (``monthly_ticket_volume``) and text are not headline numbers
    and are skipped; NaN becomes None so an empty denominator never prints as "nan".
    """
    if not result:
        return {}
    kpis = result.get("kpis", result)
    flat: dict[str, float | None] = {}
    for name, value in kpis.items():
        if isinstance(value, Mapping):
            for sub, subvalue in value.items():
                number = _number(subvalue)
                if number is not _SKIP:
                    flat[f"{name}.{sub}"] = number
        else:
            number = _number(value)
            if number is not _SKIP:
                flat[name] = number
    return flat


_SKIP: Any = object()


def _number(value: Any) -> float | None | Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _SKIP
    return None if math.isnan(value) else float(value)


def _optional_number(value: Any) -> float | None:
    number = _number(value)
    return None if number is _SKIP else number


def _as_date(value: Any) -> date | None:
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, datetime):
        return value.date()
    text = str(value)
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def _account(item: DigestAccount | Mapping[str, Any]) -> DigestAccount:
    if isinstance(item, DigestAccount):
        return item
    return DigestAccount(
        name=str(item.get("name") or item.get("account") or item.get("id") or "?"),
        source=str(item.get("source") or ""),
        cdi=_optional_number(item.get("cdi")),
        band=str(item.get("band") or "green"),
        change_7d=_optional_number(item.get("change_7d")),
        reasons=[str(r) for r in item.get("reasons") or []],
        turned_red=bool(item.get("turned_red")),
    )


def _ticket(item: DigestTicket | Mapping[str, Any]) -> DigestTicket:
    if isinstance(item, DigestTicket):
        return item
    return DigestTicket(
        source=str(item.get("source") or ""),
        id=str(item.get("id")),
        subject=str(item.get("subject") or ""),
        age_s=float(item.get("age_s") or 0),
        priority=None if item.get("priority") is None else str(item.get("priority")),
        url=item.get("url"),
    )


def digest_input_from_kpis(
    week: str,
    this_week_kpis: Mapping[str, Any],
    last_week_kpis: Mapping[str, Any] | None,
    trend_kpis: Sequence[Mapping[str, Any] | None],
    accounts: Iterable[DigestAccount | Mapping[str, Any]] = (),
    oldest_open: Iterable[DigestTicket | Mapping[str, Any]] = (),
    *,
    sources: Sequence[str] = (),
    timezone: str | None = None,
    since: date | None = None,
    until: date | None = None,
    notes: Sequence[str] = (),
    report_url: str | None = None,
) -> DigestInput:
    """Build a :class:`DigestInput` from ``kpi_engine`` results (``{"period": ..., "kpis": {...}}``).

    ``trend_kpis`` is one result per week, oldest → newest, ending with this week (a ``None`` entry is a
    week without data); only the last 8 are kept and a shorter history is padded with gaps on the left,
    so the sparkline's right edge is always "this week". ``since``/``until``/``timezone`` default to the
    result's ``period``, else to the ISO week's Monday-to-Monday in UTC.
    """
    period = this_week_kpis.get("period") or {}
    week_since, week_until = iso_week_bounds(week)
    headline = flatten_kpis(this_week_kpis)
    weeks = [flatten_kpis(k) for k in trend_kpis][-TREND_WEEKS:]
    weeks = [{}] * (TREND_WEEKS - len(weeks)) + weeks
    names = set(headline).union(*weeks)
    return DigestInput(
        week=week,
        since=since or _as_date(period.get("since")) or week_since,
        until=until or _as_date(period.get("until")) or week_until,
        timezone=timezone or str(period.get("timezone") or "UTC"),
        sources=list(sources),
        headline=headline,
        previous=flatten_kpis(last_week_kpis),
        trend={name: [w.get(name) for w in weeks] for name in sorted(names)},
        accounts=[_account(a) for a in accounts],
        oldest_open=[_ticket(t) for t in oldest_open],
        notes=list(notes),
        report_url=report_url,
    )
