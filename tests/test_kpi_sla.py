"""SLA adherence: targets per severity, calendar and business time, vendor outcome fallback."""

from __future__ import annotations

from config.settings import KpiSettings, SlaSettings
from tests.test_kpi_fixtures import WEEKDAYS_9_17, Desk, h


def build() -> Desk:
    d = Desk()
    # sev 3: first-reply target 60 min, resolution 240 min; sev 1: 480 / 1440 min
    d.ticket("1", h(0), severity=3, status="solved", solved=h(3))  # reply 30m: ok; resolved 3h: ok
    d.desc("1", h(0))
    d.msg("1", h(0.5), "agent")
    d.ticket("2", h(10), severity=3, status="solved", solved=h(16))  # reply 2h: breach; resolved 6h: breach
    d.desc("2", h(10))
    d.msg("2", h(12), "agent")
    d.ticket("3", h(20), severity=1)  # reply 7h: ok (480 min); not solved -> no resolution target yet
    d.desc("3", h(20))
    d.msg("3", h(27), "agent")
    d.ticket("4", h(30), severity=2)  # severity 2 has no target configured
    d.desc("4", h(30))
    d.msg("4", h(40), "agent")
    return d


SLA = SlaSettings(first_reply={3: 60, 1: 480}, resolution={3: 240, 1: 1440}, business_hours=False)


def test_sla_calendar() -> None:
    k = build().kpis(h(0), h(48), sla=SLA)["kpis"]
    # first reply: t1 ok, t2 breach, t3 ok -> 2/3; resolution: t1 ok, t2 breach -> 1/2; all: 3/5
    assert k["sla_adherence_first_reply_pct"] == 66.67
    assert k["sla_adherence_resolution_pct"] == 50.0
    assert k["sla_adherence_pct"] == 60.0


def test_sla_attributed_to_the_completing_event() -> None:
    k = build().kpis(h(0), h(11), sla=SLA)["kpis"]
    # only t1's reply (h0.5) and solve (h3) complete in [h0, h11)
    assert (k["sla_adherence_first_reply_pct"], k["sla_adherence_resolution_pct"]) == (100.0, 100.0)


def test_sla_business_hours() -> None:
    d = Desk()
    # sev 3, target 60 business minutes: created Friday 16:30, replied Monday 09:15 -> 30m + 15m: achieved
    d.ticket("1", h(4 * 24 + 16.5), severity=3)
    d.desc("1", h(4 * 24 + 16.5))
    d.msg("1", h(7 * 24 + 9.25), "agent")
    sla = SlaSettings(first_reply={3: 60}, business_hours=True)
    assert d.kpis(h(0), h(14 * 24), sla=sla, kpi=KpiSettings(business_hours=WEEKDAYS_9_17))["kpis"][
        "sla_adherence_pct"] == 100.0
    # without a schedule the same target is measured in calendar time: 64h45m -> breached
    assert d.kpis(h(0), h(14 * 24), sla=sla)["kpis"]["sla_adherence_pct"] == 0.0


def test_vendor_outcome_when_no_targets() -> None:
    d = Desk()
    d.ticket("1", h(0), status="closed", solved=h(2), raw={"sla_applied": {"sla_status": "hit"}})
    d.ticket("2", h(0), status="closed", solved=h(3), raw={"sla_applied": {"sla_status": "missed"}})
    d.ticket("3", h(0), status="closed", solved=h(3), raw={"sla_applied": {"sla_status": "active"}})
    d.ticket("4", h(0), status="closed", solved=h(3))
    k = d.kpis(h(0), h(10))["kpis"]
    assert k["sla_adherence_pct"] == 50.0
    assert k["sla_adherence_first_reply_pct"] is None


def test_no_targets_no_outcomes_is_null() -> None:
    assert build().kpis(h(0), h(48))["kpis"]["sla_adherence_pct"] is None
