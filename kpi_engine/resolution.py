"""Resolution family: solved tickets, full/first resolution, time in statuses, FCR, one-touch, reopens.

Attributed by the solve time: a ticket counts in the period of its latest solve
(``kpi_facts.s``: the latest solve of a ticket that is solved or closed now). Status
history comes from the per-ticket facts; a ticket whose source gave no status history falls
back to the vendor's own figures (first resolution time, reopens) where the API
provides them, and has no time-in-status values.
"""

from __future__ import annotations

from typing import Any

from kpi_engine import sla as sla_family
from kpi_engine.partials import Dist, IdSet, num
from kpi_engine.responsiveness import durations
from kpi_engine.stats import mean, pct, ratio, rounded
from kpi_engine.workspace import Workspace

WAITS = ("requester", "agent", "on_hold")


def collect(ws: Workspace) -> None:
    """One pass over the tickets solved in the period; per-ticket values are stored facts
    (:mod:`kpi_engine.fact_store`: time in statuses already guarded, reopens, FCR)."""
    b = ws.business
    sla_terms = sla_family.resolution_terms(ws)
    waits = []
    for sfx in ("", "_b"):
        for w in ("rq", "ag", "oh"):
            col = f"k.w_{w}{sfx}" if (sfx == "" or b) else "NULL"
            waits.append(f"SUM({col}), COUNT({col})")
    rows = ws.rows(f"""SELECT {ws.key('k.s')} AS key, COUNT(*), group_concat(MAX(k.s - k.c, 0)),
            group_concat({'MAX(k.bs - k.bc, 0)' if b else 'NULL'}), group_concat(MAX(k.fq - k.c, 0)),
            group_concat({'MAX(k.bfq - k.bc, 0)' if b else 'NULL'}), {', '.join(waits)}, SUM(k.nreop > 0),
            SUM(k.nreop), SUM(k.fcr), SUM(COALESCE(k.nr, 0) < 2), SUM(COALESCE(k.n, 0)), SUM(COALESCE(k.nr, 0)),
            group_concat(k.asg_n){''.join(f", SUM({expr})" for expr in sla_terms.values())}
        FROM _kpi_k k WHERE {ws.during('k.s')} GROUP BY key""")
    for row in rows:
        key_value, solved = row[0], row[1]
        add = ws.parts.add
        add(key_value, "solved", solved)
        for i, name in enumerate(("full", "full_b", "fres", "fres_b")):
            add(key_value, name, Dist.from_concat(row[2 + i]))
        i = 6
        for suffix in ("", "_b"):
            for w in WAITS:
                add(key_value, f"{w}{suffix}_sum", row[i] or 0)
                add(key_value, f"{w}{suffix}_n", row[i + 1] or 0)
                i += 2
        for name in ("reopened", "reopens", "fcr", "one_touch", "inter", "replies"):
            add(key_value, name, row[i] or 0)
            i += 1
        add(key_value, "set_asg", IdSet.from_concat(row[i]))
        for j, name in enumerate(sla_terms, start=i + 1):
            add(key_value, name, row[j] or 0)


def finalize(part: dict[str, Any], business: bool) -> dict[str, Any]:
    solved = num(part, "solved")
    out: dict[str, Any] = {"tickets_solved": int(solved)}
    durations(out, "full_resolution_time", part, "full", ("median", "p90", "mean"), business)
    durations(out, "first_resolution_time", part, "fres", ("median", "mean"), business)
    for w, name in zip(WAITS, ("requester_wait_time", "agent_wait_time", "on_hold_time"), strict=True):
        out[f"{name}_mean_s"] = rounded(mean(num(part, f"{w}_sum"), num(part, f"{w}_n")), 1)
        out[f"{name}_mean_s_business"] = (
            rounded(mean(num(part, f"{w}_b_sum"), num(part, f"{w}_b_n")), 1) if business else None)
    out["fcr_pct"] = rounded(pct(num(part, "fcr"), solved))
    out["one_touch_pct"] = rounded(pct(num(part, "one_touch"), solved))
    out["reopen_rate_pct"] = rounded(pct(num(part, "reopened"), solved))
    out["reopens_total"] = int(num(part, "reopens"))
    out["resolution_rate_pct"] = rounded(pct(solved, num(part, "created")))
    out["interactions_per_ticket"] = rounded(ratio(num(part, "inter"), solved))
    out["agent_replies_per_ticket"] = rounded(ratio(num(part, "replies"), solved))
    out["tickets_per_agent"] = rounded(ratio(solved, len(part.get("set_asg") or ())))
    return out
