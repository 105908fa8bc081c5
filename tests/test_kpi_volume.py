"""Volume family and cost: hand-computed on small stores."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from config.settings import CostSettings, EscalationSettings, KpiSettings
from tests.test_kpi_fixtures import Desk


def at(y: int, m: int, d: int, hour: int = 12) -> int:
    return int(datetime(y, m, d, hour, tzinfo=UTC).timestamp())


@pytest.fixture
def desk() -> Desk:
    d = Desk()
    n = 0

    def many(count: int, y: int, m: int) -> None:
        nonlocal n
        for i in range(count):
            n += 1
            d.ticket(f"v{n}", at(y, m, 1 + i))

    many(4, 2025, 2)  # the synced history starts in Feb 2025
    many(5, 2025, 3)
    many(10, 2026, 1)
    many(6, 2026, 3)  # March 1..6
    # February 2026: 8 tickets with chosen severities, requesters, organizations
    spec = [(1, "u1", "o1"), (1, "u1", "o1"), (1, "u2", "o1"), (1, "u2", "o2"),
            (2, "u3", None), (2, "u4", None), (3, "u5", None), (3, None, None)]
    for i, (sev, req, org) in enumerate(spec):
        d.ticket(f"f{i}", at(2026, 2, 2 + i), severity=sev, requester=req, org=org)
    d.ticket("f0", at(2026, 2, 2), severity=1, requester="u1", org="o1", priority="normal")
    d.event("f0", at(2026, 2, 3), "priority", "normal", "urgent")  # raised to the top severity: escalated
    d.ticket("f1", at(2026, 2, 3), severity=1, requester="u1", org="o1", tags=["vip", "escalated"])  # tag
    d.store.upsert("groups", [{"source": "zd", "id": "g-esc", "name": "Tier 2"}])
    d.event("f2", at(2026, 2, 5), "group_id", "g1", "g-esc")  # moved to the escalation group (by name)
    d.event("f3", at(2026, 2, 5), "priority", None, "urgent")  # created urgent: not a raise
    d.event("f4", at(2026, 2, 7), "priority", "low", "high")  # raised, but not to the top
    d.ticket("f5", at(2026, 2, 7), severity=2, requester="u4", status="solved", solved=at(2026, 2, 20))
    d.ticket("f6", at(2026, 2, 8), severity=3, requester="u5", status="closed", solved=at(2026, 2, 21))
    # never counted
    d.ticket("x1", at(2026, 2, 10), status="deleted")
    d.ticket("x2", at(2026, 2, 10), spam=1)
    d.ticket("x3", at(2026, 2, 10), merged=1)
    return d


def feb(d: Desk, **kw: object) -> dict:
    kpi = KpiSettings(escalation=EscalationSettings(top_severity=3, groups=["Tier 2"], tags=["escalated"]))
    return d.kpis(at(2026, 2, 1, 0), at(2026, 3, 1, 0), kpi=kpi, **kw)["kpis"]


def test_volume_kpis(desk: Desk) -> None:
    k = feb(desk, costs=CostSettings(monthly_total=2800))
    assert k["tickets_created"] == 8  # deleted, spam and merged tickets are excluded
    assert k["average_ticket_severity"] == 1.75  # (1+1+1+1+2+2+3+3) / 8
    assert k["tickets_per_customer"] == 1.4  # 7 tickets with a requester / {u1..u5}
    assert k["tickets_per_organization"] == 2.0  # 4 tickets with an org / {o1, o2}
    assert k["escalation_rate_pct"] == 37.5  # f0 (priority->urgent), f1 (tag), f2 (group) of 8
    # February is entirely inside the period: cost 2800 / 8 created, / 2 solved
    assert k["cost_per_ticket"] == 350.0
    assert k["cost_per_resolved_ticket"] == 1400.0


def test_monthly_volume_mom_yoy_and_partial(desk: Desk) -> None:
    result = desk.kpis(at(2026, 2, 1, 0), at(2026, 3, 16, 0), now=at(2026, 3, 16, 0))
    feb_row, mar_row = result["kpis"]["monthly_ticket_volume"]
    # Feb 2026: 8 vs Jan 10 -> -20 %, vs Feb 2025 4 -> +100 %
    assert feb_row == {"month": "2026-02", "tickets": 8, "mom_change_pct": -20.0, "yoy_change_pct": 100.0,
                       "is_partial": False}
    # Mar 2026 (cut by --until and by today): 6 vs Feb 8 -> -25 %, vs Mar 2025 5 -> +20 %
    assert mar_row == {"month": "2026-03", "tickets": 6, "mom_change_pct": -25.0, "yoy_change_pct": 20.0,
                       "is_partial": True}


def test_monthly_volume_null_bases(desk: Desk) -> None:
    (jan,) = desk.kpis(at(2026, 1, 1, 0), at(2026, 2, 1, 0))["kpis"]["monthly_ticket_volume"]
    # Dec 2025 had no tickets (base 0) and Jan 2025 is before the synced history (Feb 2025)
    assert jan == {"month": "2026-01", "tickets": 10, "mom_change_pct": None, "yoy_change_pct": None,
                   "is_partial": False}


def test_cost_is_pro_rated_by_days(desk: Desk) -> None:
    k = desk.kpis(at(2026, 2, 15, 0), at(2026, 3, 15, 0), costs=CostSettings(monthly_total=2800))["kpis"]
    # Feb 15-28: 14/28 of 2800 = 1400; Mar 1-14: 14/31 of 2800 = 1264.516...; tickets: Mar 1-6 = 6
    assert k["tickets_created"] == 6
    assert k["cost_per_ticket"] == pytest.approx((1400 + 2800 * 14 / 31) / 6, abs=0.01)


def test_no_cost_configured_is_null(desk: Desk) -> None:
    k = feb(desk)
    assert k["cost_per_ticket"] is None
    assert k["cost_per_resolved_ticket"] is None


def test_empty_period(desk: Desk) -> None:
    k = desk.kpis(at(2024, 1, 1, 0), at(2024, 2, 1, 0))["kpis"]
    assert k["tickets_created"] == 0
    for name in ("average_ticket_severity", "tickets_per_customer", "tickets_per_organization",
                 "escalation_rate_pct"):
        assert k[name] is None
