"""Volume family: tickets created, monthly volume with MoM/YoY, severity, tickets per customer/org, escalation.

All attributed by ``created_at`` (KPIS.md). Escalation is a per-ticket fact (priority
raised to the top severity, moved to an escalation group, given an escalation tag, or
the ticket's current tags or group: :func:`kpi_engine.facts.build_escalations`).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from kpi_engine.partials import num
from kpi_engine.periods import Bucket, Period, bucket_case, local_midnight, month_buckets
from kpi_engine.stats import change_pct, pct, ratio, rounded
from kpi_engine.workspace import TIME_DIMENSIONS, Workspace

UNIT_SEP = "\x1f"


def month_shift(first: date, months: int) -> date:
    y, m = divmod(first.year * 12 + first.month - 1 + months, 12)
    return date(y, m + 1, 1)


def _month_bucket(month: date, tz: str) -> Bucket:
    return Bucket(month.strftime("%Y-%m"), local_midnight(month, tz), local_midnight(month_shift(month, 1), tz))


def _sets(ws: Workspace, column: str) -> None:
    """Distinct values of ``column`` among tickets created in the period, per key (for distinct counts)."""
    key = ws.key("k.c")
    rows = ws.rows(f"""SELECT key, group_concat(v, char(31)) FROM (
            SELECT DISTINCT {key} AS key, k.{column} AS v FROM _kpi_k k
            WHERE {ws.during('k.c')} AND k.{column} IS NOT NULL) GROUP BY key""")
    for key_value, text in rows:
        ws.parts.add(key_value, f"set_{column}", set(text.split(UNIT_SEP)) if text else set())


def _monthly(ws: Workspace) -> None:
    """Counts per calendar month: in-period counts (per key), and full-month counts every MoM/YoY base needs."""
    tz = ws.period.timezone
    months = [date.fromisoformat(b.label + "-01") for b in month_buckets(ws.period)]
    if not months:
        return
    needed = sorted({m2 for m in months for m2 in (m, month_shift(m, -1), month_shift(m, -12))})
    dim = "NULL" if ws.by in TIME_DIMENSIONS else ws.dim_sql("k")
    # in-period counts (every ticket created in the period is in _kpi_k)
    inside = [_month_bucket(m, tz) for m in months]
    for key_value, mb, count in ws.rows(f"""SELECT {ws.key('k.c')} AS key,
            {bucket_case('k.c', inside)} AS mb, COUNT(*) FROM _kpi_k k
            WHERE {ws.during('k.c')} GROUP BY key, mb"""):
        if mb is not None:
            ws.parts.add(key_value, "month_in", {inside[mb].label: count})
    # full calendar months (bases and the period's own months) from all the facts (every ticket of the set)
    runs: list[list[Bucket]] = []
    for m in needed:
        b = _month_bucket(m, tz)
        if runs and runs[-1][-1].end == b.start:
            runs[-1].append(b)
        else:
            runs.append([b])
    for run in runs:
        lo, hi = run[0].start, min(run[-1].end, ws.now + 1)
        c = '+k.c' if ws.wide else 'k.c'
        if hi <= lo:
            continue
        for key_value, mb, count in ws.rows(f"""SELECT {dim} AS key, {bucket_case('k.c', run)} AS mb,
                COUNT(*) FROM kpi_facts k WHERE k.source IN {ws.src}
                  AND {c} >= {lo} AND {c} < {hi}{ws.in_shard('k.kid')}
                GROUP BY key, mb"""):
            if mb is not None:
                ws.parts.add(key_value, "month_full", {run[mb].label: count})


def collect(ws: Workspace) -> None:
    key = ws.key("k.c")
    for row in ws.rows(f"""SELECT {key} AS key, COUNT(*), SUM(k.sev), SUM(k.req IS NOT NULL),
            SUM(k.org IS NOT NULL), SUM(k.esc)
            FROM _kpi_k k
            WHERE {ws.during('k.c')} GROUP BY key"""):
        key_value, created, sev, with_req, with_org, escalated = row
        for name, value in (("created", created), ("sev_sum", sev), ("with_req", with_req),
                            ("with_org", with_org), ("escalated", escalated)):
            ws.parts.add(key_value, name, value or 0)
    _sets(ws, "req")
    _sets(ws, "org")
    _monthly(ws)


def monthly_volume(part: dict[str, Any], full_part: dict[str, Any], view: Period, history_start: int | None,
                   now: int) -> list[dict[str, Any]]:
    """``monthly_ticket_volume`` for the calendar months of ``view`` (a period or one bucket).

    ``part`` holds the counts inside the view, ``full_part`` the full calendar months the bases need
    (for time buckets those are global, for other dimensions the key's own).
    """
    inside: dict[str, int] = part.get("month_in") or {}
    full: dict[str, int] = full_part.get("month_full") or {}
    out = []
    for b in month_buckets(view):
        m = date.fromisoformat(b.label + "-01")
        month = _month_bucket(m, view.timezone)

        def base(back: int, m: date = m) -> int | None:
            prior = _month_bucket(month_shift(m, -back), view.timezone)
            if history_start is None or prior.start < _month_floor(history_start, view.timezone):
                return None  # outside the synced history
            return full.get(prior.label, 0)

        current = inside.get(b.label, 0)
        out.append({
            "month": b.label, "tickets": current,
            "mom_change_pct": rounded(change_pct(current, base(1))),
            "yoy_change_pct": rounded(change_pct(current, base(12))),
            "is_partial": b.start > month.start or b.end < month.end or month.end > now,
        })
    return out


def _month_floor(epoch: int, tz: str) -> int:
    from kpi_engine.periods import local_date
    return local_midnight(local_date(epoch, tz).replace(day=1), tz)


def finalize(part: dict[str, Any]) -> dict[str, Any]:
    created = num(part, "created")
    reqs = part.get("set_req") or set()
    orgs = part.get("set_org") or set()
    return {
        "tickets_created": int(created),
        "average_ticket_severity": rounded(ratio(num(part, "sev_sum"), created), 3),
        "tickets_per_customer": rounded(ratio(num(part, "with_req"), len(reqs))),
        "tickets_per_organization": rounded(ratio(num(part, "with_org"), len(orgs))),
        "escalation_rate_pct": rounded(pct(num(part, "escalated"), created)),
    }
