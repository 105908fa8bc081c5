"""Responsiveness family: first response time, average response time, tickets awaiting a first reply.

First response time (KPIS.md): first agent reply - ticket created, attributed to the
period of the reply. The description never counts as a reply, so a ticket an agent
opened with a public first comment waits for the *next* agent reply. Average response
time: every reply that answers a run of customer messages, measured from the run's
first message (see :func:`kpi_engine.facts.response_intervals`).
"""

from __future__ import annotations

from array import array
from typing import Any

from kpi_engine.facts import response_intervals
from kpi_engine.partials import Dist, dist
from kpi_engine.stats import rounded
from kpi_engine.workspace import Workspace


def collect(ws: Workspace) -> None:
    key = ws.key("m.fr")
    bus = f"MAX({ws.bexpr('bf', 'm.fr')} - k.bc, 0)" if ws.business else "NULL"
    rows = ws.rows(f"""SELECT key, group_concat(v), group_concat(vb) FROM (
            SELECT {key} AS key, MAX(m.fr - k.c, 0) AS v, {bus} AS vb
            FROM _kpi_t k JOIN _kpi_m m ON m.kid = k.kid{ws.bjoin('bf', 'm.fr')}
            WHERE m.fr >= :since AND m.fr < :until) GROUP BY key""")
    for key_value, cal, bus_values in rows:
        ws.parts.add(key_value, "frt", Dist.from_concat(cal))
        ws.parts.add(key_value, "frt_b", Dist.from_concat(bus_values))
    cal_by: dict[Any, array[int]] = {}  # C arrays: 8 bytes a response while millions accumulate
    bus_by: dict[Any, array[int]] = {}
    for key_value, cal, bus in response_intervals(ws):
        cal_by.setdefault(key_value, array("q")).extend(cal)
        if bus is not None:
            bus_by.setdefault(key_value, array("q")).extend(bus)
    for key_value, values in cal_by.items():
        ws.parts.add(key_value, "art", Dist(values))
    for key_value, values in bus_by.items():
        ws.parts.add(key_value, "art_b", Dist(values))


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


def finalize(part: dict[str, Any], business: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    durations(out, "first_response_time", part, "frt", ("median", "p90", "mean"), business)
    durations(out, "average_response_time", part, "art", ("median", "mean"), business)
    return out
