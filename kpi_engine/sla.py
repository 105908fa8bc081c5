"""SLA family: share of SLA targets achieved among targets completed in the period.

Targets come from ``[sla]`` (minutes per severity, for the first reply and for the
resolution), measured in business time when ``[sla] business_hours`` is true and a
schedule is configured (else in calendar time). A target completes with its event:
the first reply (first-reply target) or the latest solve (resolution target), and is
attributed to the period of that event. With no targets configured, the vendor's own
SLA outcome is used where the API gives one (Intercom ``sla_applied.sla_status``
hit/missed), attributed to the solve time.
"""

from __future__ import annotations

import logging
from typing import Any

from kpi_engine.family import Family, Finish
from kpi_engine.partials import num
from kpi_engine.stats import pct, rounded
from kpi_engine.workspace import Workspace

logger = logging.getLogger("deskpulse.kpi.sla")


def _target_case(targets: dict[int, int]) -> str:
    whens = " ".join(f"WHEN {int(sev)} THEN {int(minutes) * 60}" for sev, minutes in sorted(targets.items()))
    return f"(CASE k.severity {whens} END)"


def _business(ws: Workspace) -> bool:
    return ws.sla.business_hours and ws.business


def first_reply_terms(ws: Workspace) -> dict[str, str]:
    """Per-ticket SQL terms (alias k) summed into partials by the first-reply pass of
    :mod:`kpi_engine.responsiveness`: a first-reply target completes with the first reply, so its
    counts ride on that pass instead of a scan of their own."""
    if not ws.sla.first_reply:
        return {}
    target = _target_case(ws.sla.first_reply)
    elapsed = ("k.first_reply_at_business - k.created_at_business" if _business(ws)
               else "k.first_reply_at - k.created_at")
    return {"sla_fr_n": f"({target} IS NOT NULL)", "sla_fr_ok": f"(({elapsed}) <= {target})"}


def resolution_terms(ws: Workspace) -> dict[str, str]:
    """Per-ticket SQL terms (alias k) summed by the solved-ticket pass of :mod:`kpi_engine.resolution`:
    resolution targets, or the vendor's own SLA outcome when no targets are configured."""
    sla = ws.sla
    if sla.resolution:
        target = _target_case(sla.resolution)
        elapsed = "k.solved_at_business - k.created_at_business" if _business(ws) else "k.solved_at - k.created_at"
        return {"sla_res_n": f"({target} IS NOT NULL)", "sla_res_ok": f"(({elapsed}) <= {target})"}
    if not sla.first_reply:
        return {"sla_vendor_n": "(k.vendor_sla_status IN ('hit', 'missed'))",
                "sla_vendor_ok": "(k.vendor_sla_status = 'hit')"}
    return {}


def collect(ws: Workspace) -> None:
    """The counts are summed by the first-reply and solved-ticket passes (see above); when a computation
    asked for none of those families' KPIs (``compute(kpis=...)``), by a pass of the same terms of its own."""
    sla = ws.sla
    if sla.business_hours and not ws.business and (sla.first_reply or sla.resolution):
        logger.info("[sla] business_hours is set but no [kpi] business_hours schedule: SLA in calendar time")
    for family, column, terms in (("responsiveness", "k.first_reply_at", first_reply_terms(ws)),
                                  ("resolution", "k.solved_at", resolution_terms(ws))):
        if ws.running(family) or not terms:
            continue
        sums = "".join(f", SUM({expr})" for expr in terms.values())
        for key_value, *counts in ws.rows(f"""SELECT {ws.key(column)} AS key{sums} FROM _kpi_period_facts k
                WHERE {ws.during(column)} GROUP BY key"""):
            for name, value in zip(terms, counts, strict=True):
                ws.parts.add(key_value, name, value or 0)


def finalize(part: dict[str, Any], finish: Finish) -> dict[str, Any]:
    fr_n, res_n, v_n = num(part, "sla_fr_n"), num(part, "sla_res_n"), num(part, "sla_vendor_n")
    ok = num(part, "sla_fr_ok") + num(part, "sla_res_ok") + num(part, "sla_vendor_ok")
    return {
        "sla_adherence_pct": rounded(pct(ok, fr_n + res_n + v_n)),
        "sla_adherence_first_reply_pct": rounded(pct(num(part, "sla_fr_ok"), fr_n)),
        "sla_adherence_resolution_pct": rounded(pct(num(part, "sla_res_ok"), res_n)),
    }


FAMILY = Family("sla", collect, finalize)
