"""Responsiveness family: first response time and average response time (awaiting a first reply: backlog).

First response time (KPIS.md): first agent reply - ticket created, attributed to the
period of the reply. The description never counts as a reply, so a ticket an agent
opened with a public first comment waits for the *next* agent reply. Average response
time: every reply that answers a run of customer messages, measured from the run's
first message (see :func:`kpi_engine.facts.runs`; stored per response in ``kpi_responses``).
"""

from __future__ import annotations

from typing import Any

from kpi_engine import sla as sla_family
from kpi_engine.family import Family, Finish
from kpi_engine.partials import Dist, dist
from kpi_engine.stats import rounded
from kpi_engine.workspace import TIME_DIMENSIONS, Workspace


def collect(ws: Workspace) -> None:
    bus = "MAX(k.first_reply_at_business - k.created_at_business, 0)" if ws.business else "NULL"
    sla_terms = sla_family.first_reply_terms(ws)
    rows = ws.rows(f"""SELECT key, group_concat(v), group_concat(vb){''.join(f", SUM({n})" for n in sla_terms)} FROM (
            SELECT {ws.key('k.first_reply_at')} AS key, MAX(k.first_reply_at - k.created_at, 0) AS v, {bus} AS vb
                {''.join(f", {expr} AS {n}" for n, expr in sla_terms.items())}
            FROM _kpi_period_facts k WHERE {ws.during('k.first_reply_at')}) GROUP BY key""")
    for key_value, cal, bus_values, *sla_counts in rows:
        ws.parts.add(key_value, "frt", Dist.from_concat(cal))
        ws.parts.add(key_value, "frt_b", Dist.from_concat(bus_values))
        for name, value in zip(sla_terms, sla_counts, strict=True):
            ws.parts.add(key_value, name, value or 0)
    # every response completed in the period (kpi_responses: one row per reply that answered customers);
    # a ticket dimension needs the ticket's facts, a time bucket only the response's own row
    if ws.by in TIME_DIMENSIONS or ws.by is None:
        source, needed = "kpi_responses r", ws.needed("r")
    else:
        source, needed = "kpi_responses r JOIN _kpi_period_facts k ON k.ticket_rowid = r.ticket_rowid", "1"
    rows = ws.rows(f"""SELECT {ws.key('r.responded_at')} AS key, group_concat(r.wait_seconds),
            group_concat(r.wait_seconds_business) FROM {source}
            WHERE {needed} AND {ws.during('r.responded_at')}{ws.in_shard('r.ticket_rowid')} GROUP BY key""")
    for key_value, cal, bus_values in rows:
        ws.parts.add(key_value, "art", Dist.from_concat(cal))
        if ws.business:
            ws.parts.add(key_value, "art_b", Dist.from_concat(bus_values))


def _durations(out: dict[str, Any], name: str, d: Dist, stats: tuple[str, ...], suffix: str = "") -> None:
    for stat in stats:
        if stat == "mean":
            value = d.mean()
        else:
            value = d.percentile(50 if stat == "median" else 90)
        out[f"{name}_{stat}_s{suffix}"] = rounded(value, 1)


def durations(out: dict[str, Any], name: str, part: dict[str, Any], key: str, stats: tuple[str, ...],
              business: bool) -> None:
    """``name_{stat}_s`` from ``part[key]`` and ``name_{stat}_s_business`` from ``part[key + '_b']``."""
    _durations(out, name, dist(part, key), stats)
    if business:
        _durations(out, name, dist(part, key + "_b"), stats, "_business")
    else:
        for stat in stats:
            out[f"{name}_{stat}_s_business"] = None


def finalize(part: dict[str, Any], finish: Finish) -> dict[str, Any]:
    out: dict[str, Any] = {}
    durations(out, "first_response_time", part, "frt", ("median", "p90", "mean"), finish.business)
    durations(out, "average_response_time", part, "art", ("median", "mean"), finish.business)
    return out


FAMILY = Family("responsiveness", collect, finalize)
