"""Resolution family: solved tickets, full/first resolution, time in statuses, FCR, one-touch, reopens.

Attributed by the solve time: a ticket counts in the period of its latest solve
(``kpi_facts.s``: the latest solve of a ticket that is solved or closed now). Status
history comes from the per-ticket facts; a ticket whose source gave no status history falls
back to the vendor's own figures (first resolution time, reopens) where the API
provides them, and has no time-in-status values.
"""

from __future__ import annotations

from typing import Any

from kpi_engine.partials import Dist, num
from kpi_engine.responsiveness import durations
from kpi_engine.stats import mean, pct, ratio, rounded
from kpi_engine.workspace import Workspace

REOPENS = "(CASE WHEN k.fs IS NOT NULL THEN k.reop ELSE COALESCE(k.v_reop, 0) END)"
WAITS = ("requester", "agent", "on_hold")


def _guarded(value: str, life: str) -> str:
    """A time in statuses, or NULL without history or when the history is inconsistent."""
    return f"(CASE WHEN hist AND {value} BETWEEN 0 AND {life} THEN {value} END)"


def collect(ws: Workspace) -> None:
    key = ws.key("k.s")
    b = ws.business
    fres_b = "MAX(k.bfq - k.bc, 0)" if b else "NULL"
    # inner: raw per-ticket values, computed once (LIMIT -1 keeps SQLite from inlining them per use)
    inner = f"""SELECT {key} AS key, k.s - k.c AS life, MAX(k.s - k.c, 0) AS full,
            {'k.bs - k.bc' if b else 'NULL'} AS life_b, {'MAX(k.bs - k.bc, 0)' if b else 'NULL'} AS full_b,
            MAX(k.fq - k.c, 0) AS fres, {fres_b} AS fres_b, k.fs IS NOT NULL AS hist,
            k.aw_t AS aw, k.oh_t AS oh, k.sv_t + k.s AS sv, k.aw_b AS aw_b, k.oh_b AS oh_b, k.sv_b + k.bs AS sv_b,
            {REOPENS} AS reopens, ({REOPENS} = 0 AND k.nr = 1 AND (k.lc IS NULL OR k.lc < k.fr)) AS fcr,
            (COALESCE(k.nr, 0) < 2) AS one_touch, COALESCE(k.n, 0) AS inter,
            COALESCE(k.nr, 0) AS replies
        FROM _kpi_k k
        WHERE {ws.during('k.s')} LIMIT -1"""
    waits = []
    for sfx in ("", "_b"):
        life = f"life{sfx}"
        values = {"requester": f"({life} - aw{sfx} - sv{sfx})", "agent": f"aw{sfx}", "on_hold": f"oh{sfx}"}
        for w in WAITS:
            guarded = _guarded(values[w], life) if (sfx == "" or b) else "NULL"
            waits.append(f"SUM({guarded}), COUNT({guarded})")
    rows = ws.rows(f"""SELECT key, COUNT(*), group_concat(full), group_concat(full_b), group_concat(fres),
            group_concat(fres_b), {', '.join(waits)}, SUM(reopens > 0), SUM(reopens), SUM(fcr),
            SUM(one_touch), SUM(inter), SUM(replies)
        FROM ({inner}) GROUP BY key""")
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
    for key_value, text in ws.rows(f"""SELECT key, group_concat(v, char(31)) FROM (
            SELECT DISTINCT {key} AS key, k.asg AS v FROM _kpi_k k
            WHERE {ws.during('k.s')} AND k.asg IS NOT NULL) GROUP BY key"""):
        ws.parts.add(key_value, "set_asg", set(text.split("\x1f")) if text else set())


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
