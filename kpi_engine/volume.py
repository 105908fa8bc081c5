"""Volume family: tickets created, monthly volume with MoM/YoY, severity, tickets per customer/org, escalation.

All attributed by ``created_at`` (KPIS.md). Escalation is a per-ticket fact (priority
raised to the top severity, moved to an escalation group, given an escalation tag, or
the ticket's current tags or group: :func:`kpi_engine.facts.build_escalations`).

Partial history: a connector whose vendor hides old tickets from its API (Freshdesk archives closed,
inactive tickets and lists none of them: API-NOTES 6.3) marks its ``tickets`` cursor with
``history_partial_before`` (the first sync). A month of ``monthly_ticket_volume`` whose count or
MoM/YoY base reaches before that is flagged ``history_partial`` with a ``partial_reason``
(:func:`partial_history`, read from ``sync_state``; nothing here talks to a vendor).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from kpi_engine.family import Family, Finish
from kpi_engine.partials import IdSet, num
from kpi_engine.periods import Bucket, Period, bucket_case, local_midnight, month_buckets
from kpi_engine.stats import change_pct, pct, ratio, rounded
from kpi_engine.workspace import TIME_DIMENSIONS, Workspace


def month_shift(first: date, months: int) -> date:
    y, m = divmod(first.year * 12 + first.month - 1 + months, 12)
    return date(y, m + 1, 1)


@lru_cache(maxsize=4096)  # every breakdown key asks for the same few months
def _month_bucket(month: date, tz: str) -> Bucket:
    return Bucket(month.strftime("%Y-%m"), local_midnight(month, tz), local_midnight(month_shift(month, 1), tz))


def _full_months(ws: Workspace, months: list[Bucket], known: dict[object, dict[str, int]]) -> None:
    """``month_full``: tickets created in each whole calendar month of ``months`` (the MoM/YoY bases).

    A month inside the period (and not after ``now``) is already counted by :func:`collect` (``known``:
    key -> month label -> count); the others are counted from all the facts, in runs of adjacent months.
    """
    time_key = ws.by in TIME_DIMENSIONS
    runs: list[list[Bucket]] = []
    for b in months:
        if b.start >= ws.period.since and b.end <= ws.period.until and b.end <= ws.now + 1:
            for key_value, counts in known.items():
                if b.label in counts:
                    ws.parts.add(None if time_key else key_value, "month_full", {b.label: counts[b.label]})
            continue
        if runs and runs[-1][-1].end == b.start:
            runs[-1].append(b)
        else:
            runs.append([b])
    dim = "NULL" if time_key else ws.dim_sql("k")
    for run in runs:
        lo, hi = run[0].start, min(run[-1].end, ws.now + 1)
        if hi <= lo:
            continue
        for key_value, mb, count in ws.rows(f"""SELECT {dim} AS key, {bucket_case('k.created_at', run)} AS mb,
                COUNT(*) FROM kpi_facts k WHERE +k.source IN {ws.src}
                  AND k.created_at >= {lo} AND k.created_at < {hi}{ws.in_shard('k.ticket_rowid')}
                GROUP BY key, mb"""):
            if mb is not None:
                ws.parts.add(key_value, "month_full", {run[mb].label: count})


def collect(ws: Workspace) -> None:
    """One pass over the tickets created in the period, per key and calendar month of the period.

    Requesters and organizations come back as joined integer ids (``kpi_id_numbers``, one string per
    group): deduplicating them in Python costs less than SQL's DISTINCT.
    """
    tz = ws.period.timezone
    inside = [_month_bucket(date.fromisoformat(b.label + "-01"), tz) for b in month_buckets(ws.period)]
    per_month: dict[object, dict[str, int]] = {}
    totals: dict[object, list[int]] = {}
    sets: dict[object, tuple[IdSet, IdSet]] = {}
    # the distinct requesters and organizations (as joined integer ids) only for the KPIs that count them
    req_ids = "group_concat(k.requester_number)" if ws.wants("tickets_per_customer") else "NULL"
    org_ids = "group_concat(k.organization_number)" if ws.wants("tickets_per_organization") else "NULL"
    for row in ws.rows(f"""SELECT {ws.key('k.created_at')} AS key, {bucket_case('k.created_at', inside)} AS mb,
            COUNT(*), SUM(k.severity), SUM(k.requester_id IS NOT NULL), SUM(k.organization_id IS NOT NULL),
            SUM(k.escalated), {req_ids}, {org_ids}
            FROM _kpi_period_facts k WHERE {ws.during('k.created_at')} GROUP BY key, mb"""):
        key_value, mb, *counts, reqs, orgs = row
        sums = totals.setdefault(key_value, [0] * len(counts))
        for i, value in enumerate(counts):
            sums[i] += value or 0
        req_set, org_set = sets.setdefault(key_value, (IdSet(), IdSet()))
        req_set.merge(IdSet.from_concat(reqs))
        org_set.merge(IdSet.from_concat(orgs))
        if mb is not None:
            per_month.setdefault(key_value, {})[inside[mb].label] = counts[0]
    for key_value, sums in totals.items():
        for name, value in zip(("created", "sev_sum", "with_req", "with_org", "escalated"), sums, strict=True):
            ws.parts.add(key_value, name, value)
        ws.parts.add(key_value, "set_req", sets[key_value][0])
        ws.parts.add(key_value, "set_org", sets[key_value][1])
    for key_value, months in per_month.items():
        ws.parts.add(key_value, "month_in", months)
    if inside and ws.wants("monthly_ticket_volume"):  # its MoM/YoY bases: up to 13 months before the period
        needed = sorted({m2 for b in inside for m in [date.fromisoformat(b.label + "-01")]
                         for m2 in (m, month_shift(m, -1), month_shift(m, -12))})
        _full_months(ws, [_month_bucket(m, tz) for m in needed], per_month)


def partial_history(conn: sqlite3.Connection, sources: list[str] | None = None) -> dict[str, int]:
    """Source -> epoch before which its synced history may be incomplete (see the module docstring)."""
    out: dict[str, int] = {}
    for source, raw in conn.execute("SELECT source, cursor FROM sync_state WHERE stream = 'tickets'"):
        if sources is not None and source not in sources:
            continue
        try:
            cursor = json.loads(raw) if raw else None
            stamp = cursor.get("history_partial_before") if isinstance(cursor, dict) else None
            since = int(datetime.fromisoformat(stamp).timestamp()) if isinstance(stamp, str) else None
        except (ValueError, TypeError):
            since = None
        if since is not None:
            out[source] = since
    return out


def monthly_volume(part: dict[str, Any], full_part: dict[str, Any], view: Period, history_start: int | None,
                   now: int, partial_before: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """``monthly_ticket_volume`` for the calendar months of ``view`` (a period or one bucket).

    ``part`` holds the counts inside the view, ``full_part`` the full calendar months the bases need
    (for time buckets those are global, for other dimensions the key's own). ``partial_before``
    (:func:`partial_history`) flags months whose figures reach into history the vendor may have hidden.
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
        entry: dict[str, Any] = {
            "month": b.label, "tickets": current,
            "mom_change_pct": rounded(change_pct(current, base(1))),
            "yoy_change_pct": rounded(change_pct(current, base(12))),
            "is_partial": b.start > month.start or b.end < month.end or month.end > now,
        }
        reach = min([month.start] + [_month_bucket(month_shift(m, -back), view.timezone).start
                                     for back in (1, 12) if base(back) is not None])
        hidden = sorted(src for src, since in (partial_before or {}).items() if reach < since)
        if hidden:
            first = min((partial_before or {})[src] for src in hidden)
            entry["history_partial"] = True
            entry["partial_reason"] = (
                f"reaches before the first sync of {', '.join(hidden)} "
                f"({datetime.fromtimestamp(first, UTC).strftime('%Y-%m-%d')}): Freshdesk archives closed "
                "tickets and its API lists no archived ticket, so earlier counts may be incomplete")
        out.append(entry)
    return out


@lru_cache(maxsize=256)
def _month_floor(epoch: int, tz: str) -> int:
    from kpi_engine.periods import local_date
    return local_midnight(local_date(epoch, tz).replace(day=1), tz)


def finalize(part: dict[str, Any], finish: Finish) -> dict[str, Any]:
    created = num(part, "created")
    reqs = part.get("set_req") or IdSet()
    orgs = part.get("set_org") or IdSet()
    return {
        "tickets_created": int(created),
        "average_ticket_severity": rounded(ratio(num(part, "sev_sum"), created), 3),
        "tickets_per_customer": rounded(ratio(num(part, "with_req"), len(reqs))),
        "tickets_per_organization": rounded(ratio(num(part, "with_org"), len(orgs))),
        "escalation_rate_pct": rounded(pct(num(part, "escalated"), created)),
        "monthly_ticket_volume": monthly_volume(part, finish.month_part, finish.view or finish.period,
                                                finish.history_start, finish.now, finish.partial_before)
        if finish.wants("monthly_ticket_volume") else None,
    }


FAMILY = Family("volume", collect, finalize)
