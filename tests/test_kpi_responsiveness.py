"""First response time, average response time, awaiting first reply: hand-computed on small stores."""

from __future__ import annotations

import pytest

from config.settings import KpiSettings
from kpi_engine.per_ticket import first_reply_times, response_times
from tests.test_kpi_fixtures import HOUR, WEEKDAYS_9_17, Desk, h


@pytest.fixture
def desk() -> Desk:
    d = Desk()
    # t1: customer h0; agent h2; customer h3, h4; agent h6, h7; customer h8 (unanswered)
    d.ticket("1", h(0))
    d.desc("1", h(0))
    d.msg("1", h(2), "agent")
    d.msg("1", h(3), "customer")
    d.msg("1", h(4), "customer")
    d.msg("1", h(6), "agent")
    d.msg("1", h(7), "agent")
    d.msg("1", h(8), "customer")
    # t2: opened by an agent with a public description at h10; customer h11; agent h15
    d.ticket("2", h(10))
    d.desc("2", h(10), role="agent")
    d.msg("2", h(11), "customer")
    d.msg("2", h(15), "agent")
    # t3: bot, private note, system message never count; a *public* agent note does (h22)
    d.ticket("3", h(20))
    d.desc("3", h(20))
    d.msg("3", h(20.1), "bot")
    d.msg("3", h(21), "agent", public=0, kind="note")
    d.msg("3", h(21.5), "system")
    d.msg("3", h(22), "agent", kind="note")
    # t4: a message whose author role is not resolved yet (NULL) is not a reply -> still awaiting
    d.ticket("4", h(30))
    d.desc("4", h(30))
    d.msg("4", h(31), None)
    # excluded tickets: deleted, spam, merged (would add 1h responses)
    for tid, extra in (("5", {"status": "deleted"}), ("6", {"spam": 1}), ("7", {"merged": 1})):
        d.ticket(tid, h(0), **extra)
        d.desc(tid, h(0))
        d.msg(tid, h(1), "agent")
    return d


def test_first_response_time(desk: Desk) -> None:
    k = desk.kpis(h(0), h(48))["kpis"]
    # FRT: t1 2h, t2 h15-h10 = 5h (the agent's description is not a reply), t3 2h (public note) -> [2, 2, 5] h
    assert k["first_response_time_median_s"] == 2 * HOUR
    # p90: position (3-1)*0.9 = 1.8 -> 2h + 0.8*(5h-2h) = 4.4h
    assert k["first_response_time_p90_s"] == pytest.approx(4.4 * HOUR)
    assert k["first_response_time_mean_s"] == 3 * HOUR  # (2+5+2)/3
    # t4 has no reply (NULL role is unknown, not agent); it is open -> awaiting
    assert k["tickets_awaiting_first_reply"] == 1
    # no schedule configured -> business variants are null
    assert k["first_response_time_median_s_business"] is None
    assert k["average_response_time_mean_s_business"] is None


def test_average_response_time(desk: Desk) -> None:
    k = desk.kpis(h(0), h(48))["kpis"]
    # responses: t1 run[h0]->h2 = 2h, run[h3,h4]->h6 = 3h (from the run's first message), h7 answers nothing,
    # h8 unanswered; t2 run[h11]->h15 = 4h; t3 run[h20]->h22 = 2h  => [2, 2, 3, 4] h
    assert k["average_response_time_median_s"] == 2.5 * HOUR  # between 2h and 3h
    assert k["average_response_time_mean_s"] == pytest.approx(11 / 4 * HOUR)


def test_attribution_by_reply_time(desk: Desk) -> None:
    k = desk.kpis(h(0), h(4))["kpis"]
    # only t1's first reply (h2) and its response (h0->h2) complete in [h0, h4)
    assert k["first_response_time_mean_s"] == 2 * HOUR
    assert k["average_response_time_mean_s"] == 2 * HOUR
    later = desk.kpis(h(5), h(48))["kpis"]
    # FRT of t2 (5h) and t3 (2h); responses t1 h6 (3h), t2 (4h), t3 (2h)
    assert later["first_response_time_mean_s"] == 3.5 * HOUR
    assert later["average_response_time_mean_s"] == 3 * HOUR


def test_customer_message_at_reply_second_waits_for_next_reply() -> None:
    d = Desk()
    d.ticket("1", h(0))
    d.desc("1", h(0))
    d.msg("1", h(2), "agent")
    d.msg("1", h(2), "customer")  # same second as the reply: counts as after it
    d.msg("1", h(3), "agent")
    assert response_times(d.store.conn, now=h(10))[("zd", "1")] == [(2 * HOUR, None), (1 * HOUR, None)]


def test_empty_period_gives_null_not_zero() -> None:
    k = Desk().kpis(h(0), h(24))["kpis"]
    for name in ("first_response_time_median_s", "first_response_time_p90_s", "first_response_time_mean_s",
                 "average_response_time_median_s", "average_response_time_mean_s"):
        assert k[name] is None
    assert k["tickets_awaiting_first_reply"] == 0


def test_business_first_response_over_a_weekend() -> None:
    d = Desk()
    # created Friday 16:00 UTC (h 4*24+16), replied Monday 10:00 (h 7*24+10): 66h calendar,
    # business 09-17: Friday 16-17 (1h) + Monday 09-10 (1h) = 2h
    d.ticket("1", h(4 * 24 + 16))
    d.desc("1", h(4 * 24 + 16))
    d.msg("1", h(7 * 24 + 10), "agent")
    kpi = KpiSettings(business_hours=WEEKDAYS_9_17)
    k = d.kpis(h(0), h(14 * 24), kpi=kpi)["kpis"]
    assert k["first_response_time_mean_s"] == 66 * HOUR
    assert k["first_response_time_mean_s_business"] == 2 * HOUR
    assert k["average_response_time_median_s_business"] == 2 * HOUR
    assert first_reply_times(d.store.conn, kpi=kpi, now=h(14 * 24)) == {("zd", "1"): (66 * HOUR, 2 * HOUR)}


def test_per_ticket_functions_match_the_catalog(desk: Desk) -> None:
    frt = first_reply_times(desk.store.conn, now=h(48))
    assert frt == {("zd", "1"): (2 * HOUR, None), ("zd", "2"): (5 * HOUR, None), ("zd", "3"): (2 * HOUR, None)}
    art = response_times(desk.store.conn, now=h(48))
    assert art[("zd", "1")] == [(2 * HOUR, None), (3 * HOUR, None)]
    assert ("zd", "5") not in art  # deleted tickets are never measured
