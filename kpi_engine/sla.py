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

from kpi_engine.partials import num
from kpi_engine.stats import pct, rounded
from kpi_engine.workspace import Workspace

logger = logging.getLogger("deskpulse.kpi.sla")


def _target_case(targets: dict[int, int]) -> str:
    whens = " ".join(f"WHEN {int(sev)} THEN {int(minutes) * 60}" for sev, minutes in sorted(targets.items()))
    return f"(CASE k.sev {whens} END)"


def collect(ws: Workspace) -> None:
    sla = ws.sla
    business = sla.business_hours and ws.business
    if sla.business_hours and not ws.business and (sla.first_reply or sla.resolution):
        logger.info("[sla] business_hours is set but no [kpi] business_hours schedule: SLA in calendar time")
    add = ws.parts.add
    if sla.first_reply:
        elapsed = "k.bfr - k.bc" if business else "k.fr - k.c"
        for key_value, n, ok in ws.rows(f"""SELECT key, COUNT(*), SUM(ok) FROM (
                SELECT {ws.key('k.fr')} AS key, ({elapsed}) <= {_target_case(sla.first_reply)} AS ok
                FROM _kpi_k k WHERE {ws.during('k.fr')} AND {_target_case(sla.first_reply)} IS NOT NULL)
                GROUP BY key"""):
            add(key_value, "sla_fr_n", n)
            add(key_value, "sla_fr_ok", ok or 0)
    if sla.resolution:
        elapsed = "k.bs - k.bc" if business else "k.s - k.c"
        for key_value, n, ok in ws.rows(f"""SELECT key, COUNT(*), SUM(ok) FROM (
                SELECT {ws.key('k.s')} AS key, ({elapsed}) <= {_target_case(sla.resolution)} AS ok
                FROM _kpi_k k WHERE {ws.during('k.s')}
                  AND {_target_case(sla.resolution)} IS NOT NULL) GROUP BY key"""):
            add(key_value, "sla_res_n", n)
            add(key_value, "sla_res_ok", ok or 0)
    if not sla.first_reply and not sla.resolution:
        for key_value, n, ok in ws.rows(f"""SELECT {ws.key('k.s')} AS key, COUNT(*), SUM(k.vsla = 'hit')
                FROM _kpi_k k WHERE {ws.during('k.s')} AND k.vsla IN ('hit', 'missed')
                GROUP BY key"""):
            add(key_value, "sla_vendor_n", n)
            add(key_value, "sla_vendor_ok", ok or 0)


def finalize(part: dict[str, Any]) -> dict[str, Any]:
    fr_n, res_n, v_n = num(part, "sla_fr_n"), num(part, "sla_res_n"), num(part, "sla_vendor_n")
    ok = num(part, "sla_fr_ok") + num(part, "sla_res_ok") + num(part, "sla_vendor_ok")
    return {
        "sla_adherence_pct": rounded(pct(ok, fr_n + res_n + v_n)),
        "sla_adherence_first_reply_pct": rounded(pct(num(part, "sla_fr_ok"), fr_n)),
        "sla_adherence_resolution_pct": rounded(pct(num(part, "sla_res_ok"), res_n)),
    }
