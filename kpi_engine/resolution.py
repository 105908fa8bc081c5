"""Resolution family: solved tickets, full/first resolution, time in statuses, FCR, one-touch, reopens.

Attributed by the solve time: a ticket counts in the period of its latest solve
(``kpi_facts.solved_at``: the latest solve of a ticket that is solved or closed now). Status
history comes from the per-ticket facts; a ticket whose source gave no status history falls
back to the vendor's own figures (first resolution time, reopens) where the API
provides them, and has no time-in-status values.
"""

from __future__ import annotations

from typing import Any

from kpi_engine import sla as sla_family
from kpi_engine.family import Family, Finish
from kpi_engine.partials import Dist, IdSet, num
from kpi_engine.responsiveness import durations
from kpi_engine.stats import mean, pct, ratio, rounded
from kpi_engine.workspace import Workspace

WAITS = ("requester", "agent", "on_hold")
WAIT_COLUMNS = ("requester_wait_seconds", "agent_wait_seconds", "on_hold_seconds")  # kpi_facts, in WAITS order


def collect(ws: Workspace) -> None:
    """One pass over the tickets solved in the period; per-ticket values are stored facts
    (:mod:`kpi_engine.fact_store`: time in statuses already guarded, reopens, FCR)."""
    b = ws.business
    sla_terms = sla_family.resolution_terms(ws)
    waits = []
    for sfx in ("", "_business"):
        for column in WAIT_COLUMNS:
            col = f"k.{column}{sfx}" if (sfx == "" or b) else "NULL"
            waits.append(f"SUM({col}), COUNT({col})")
    full_b = "MAX(k.solved_at_business - k.created_at_business, 0)" if b else "NULL"
    first_b = "MAX(k.first_solved_at_business - k.created_at_business, 0)" if b else "NULL"
    rows = ws.rows(f"""SELECT {ws.key('k.solved_at')} AS key, COUNT(*),
            group_concat(MAX(k.solved_at - k.created_at, 0)), group_concat({full_b}),
            group_concat(MAX(k.first_solved_at - k.created_at, 0)), group_concat({first_b}),
            {', '.join(waits)}, SUM(k.reopens > 0), SUM(k.reopens), SUM(k.first_contact_resolved),
            SUM(COALESCE(k.agent_replies, 0) < 2), SUM(COALESCE(k.public_messages, 0)),
            SUM(COALESCE(k.agent_replies, 0)),
            group_concat(k.assignee_number){''.join(f", SUM({expr})" for expr in sla_terms.values())}
        FROM _kpi_period_facts k WHERE {ws.during('k.solved_at')} GROUP BY key""")
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


def finalize(part: dict[str, Any], finish: Finish) -> dict[str, Any]:
    business = finish.business
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


FAMILY = Family("resolution", collect, finalize)
