"""Resolution family: hand-computed solved counts, resolution times, time in statuses, FCR, reopens."""

from __future__ import annotations

import pytest

from config.settings import KpiSettings
from kpi_engine.per_ticket import resolution_facts
from tests.test_kpi_fixtures import HOUR, WEEKDAYS_9_17, Desk, h


@pytest.fixture
def desk() -> Desk:
    d = Desk()
    # t1 (zd): statuses new[0,1) open[1,2) pending[2,5) open[5,6) on_hold[6,8) open[8,9) solved@9
    d.ticket("1", h(0), status="solved", solved=h(9))
    d.desc("1", h(0))
    d.msg("1", h(2), "agent")
    d.msg("1", h(5), "customer")
    d.msg("1", h(9), "agent")
    for at, old, new in ((0, None, "new"), (1, "new", "open"), (2, "open", "pending"), (5, "pending", "open"),
                         (6, "open", "on_hold"), (8, "on_hold", "open"), (9, "open", "solved")):
        d.status("1", h(at), old, new)
    # t2 (zd): one reply, solved@12, reopened@20 by the customer, solved again@21, closed@30
    d.ticket("2", h(10), status="closed", solved=h(21))
    d.desc("2", h(10))
    d.msg("2", h(11), "agent")
    d.msg("2", h(20), "customer")
    for at, old, new in ((11, "new", "pending"), (12, "pending", "solved"), (20, "solved", "open"),
                         (21, "open", "solved"), (30, "solved", "closed")):
        d.status("2", h(at), old, new)
    # t3, t4 (fd): a source without status history -> vendor figures
    d.ticket("3", h(30), source="fd", status="solved", solved=h(32), assignee="a2", vendor_reopens=0,
             vendor_first_resolution_s=2 * HOUR)
    d.desc("3", h(30), source="fd")
    d.msg("3", h(31), "agent", source="fd")
    d.ticket("4", h(40), source="fd", status="solved", solved=h(41), assignee="a2", vendor_reopens=2)
    d.desc("4", h(40), source="fd")
    # t5: solved@5 then reopened@6 and open now -> not solved
    d.ticket("5", h(0), status="open", solved=h(5))
    d.status("5", h(5), "new", "solved")
    d.status("5", h(6), "solved", "open")
    # t6: created before the period, solved in it, no messages, no events
    d.ticket("6", h(-100), status="solved", solved=h(50))
    return d


def test_resolution_kpis(desk: Desk) -> None:
    k = desk.kpis(h(0), h(100))["kpis"]
    assert k["tickets_created"] == 5  # t1..t5 (t6 was created before)
    assert k["tickets_solved"] == 5  # t1, t2 (closed), t3, t4, t6; t5 is open again
    # full resolution: t1 9h, t2 11h (latest solve), t3 2h, t4 1h, t6 150h -> [1, 2, 9, 11, 150]
    assert k["full_resolution_time_median_s"] == 9 * HOUR
    assert k["full_resolution_time_p90_s"] == pytest.approx(94.4 * HOUR)  # pos 3.6: 11 + 0.6 * 139
    assert k["full_resolution_time_mean_s"] == pytest.approx(34.6 * HOUR)  # 173 / 5
    # first resolution: t1 9h, t2 2h (first solve @12), t3 2h (vendor's); t4 and t6 unknown -> [2, 2, 9]
    assert k["first_resolution_time_median_s"] == 2 * HOUR
    assert k["first_resolution_time_mean_s"] == pytest.approx(13 / 3 * HOUR, abs=0.1)
    # requester wait: t1 new1+open1+open1+hold2+open1 = 6h, t2 new1+open1 = 2h -> mean 4h
    assert k["requester_wait_time_mean_s"] == 4 * HOUR
    assert k["agent_wait_time_mean_s"] == 2 * HOUR  # t1 3h, t2 1h
    assert k["on_hold_time_mean_s"] == 1 * HOUR  # t1 2h, t2 0
    assert k["reopen_rate_pct"] == 40.0  # t2 (history), t4 (vendor_reopens=2) of 5
    assert k["reopens_total"] == 3
    assert k["fcr_pct"] == 20.0  # only t3: one reply, no customer after it, not reopened
    assert k["one_touch_pct"] == 80.0  # t2 (1 reply), t3 (1), t4 (0), t6 (0); not t1 (2)
    assert k["resolution_rate_pct"] == 100.0
    assert k["interactions_per_ticket"] == 2.0  # (4 + 3 + 2 + 1 + 0) / 5
    assert k["agent_replies_per_ticket"] == 0.8  # (2 + 1 + 1 + 0 + 0) / 5
    assert k["tickets_per_agent"] == 2.5  # 5 solved / {a1, a2}


def test_resolution_rate_is_not_clamped(desk: Desk) -> None:
    k = desk.kpis(h(35), h(100))["kpis"]
    assert k["tickets_created"] == 1  # t4
    assert k["tickets_solved"] == 2  # t4, t6
    assert k["resolution_rate_pct"] == 200.0


def test_solve_attribution_uses_the_latest_solve(desk: Desk) -> None:
    k = desk.kpis(h(0), h(15))["kpis"]
    # t2's first solve (@12) is in this window but its latest solve (@21) is not
    assert k["tickets_solved"] == 1  # t1 only
    assert k["resolution_rate_pct"] == pytest.approx(100 / 3, abs=0.01)  # created t1, t2, t5


def test_empty_denominators_are_null() -> None:
    k = Desk().kpis(h(0), h(10))["kpis"]
    assert k["tickets_solved"] == 0
    for name in ("full_resolution_time_median_s", "first_resolution_time_mean_s", "requester_wait_time_mean_s",
                 "fcr_pct", "one_touch_pct", "reopen_rate_pct", "resolution_rate_pct", "interactions_per_ticket",
                 "agent_replies_per_ticket", "tickets_per_agent"):
        assert k[name] is None, name
    assert k["reopens_total"] == 0


def test_business_variants() -> None:
    d = Desk()
    # Friday 16:00 -> solved Monday 10:00 (UTC, 09-17 weekdays): calendar 66h, business 2h;
    # pending from Friday 16:30 to Monday 09:30 (business 30m + 30m = 1h)
    fri, mon = 4 * 24, 7 * 24
    d.ticket("1", h(fri + 16), status="solved", solved=h(mon + 10))
    d.status("1", h(fri + 16.5), "new", "pending")
    d.status("1", h(mon + 9.5), "pending", "open")
    d.status("1", h(mon + 10), "open", "solved")
    k = d.kpis(h(0), h(14 * 24), kpi=KpiSettings(business_hours=WEEKDAYS_9_17))["kpis"]
    assert k["full_resolution_time_mean_s"] == 66 * HOUR
    assert k["full_resolution_time_median_s_business"] == 2 * HOUR
    assert k["first_resolution_time_mean_s_business"] == 2 * HOUR
    assert k["agent_wait_time_mean_s"] == 65 * HOUR
    assert k["agent_wait_time_mean_s_business"] == 1 * HOUR
    assert k["requester_wait_time_mean_s_business"] == 1 * HOUR  # 16:00-16:30 + 09:30-10:00


def test_per_ticket_resolution_facts(desk: Desk) -> None:
    facts = resolution_facts(desk.store.conn, now=h(100))
    assert facts[("zd", "1")] == {"full_resolution_s": 9 * HOUR, "first_resolution_s": 9 * HOUR, "reopens": 0,
                                  "requester_wait_s": 6 * HOUR, "agent_wait_s": 3 * HOUR, "on_hold_s": 2 * HOUR}
    assert facts[("zd", "2")]["reopens"] == 1
    assert facts[("fd", "4")]["requester_wait_s"] is None  # no status history
    assert ("zd", "5") not in facts  # open again
