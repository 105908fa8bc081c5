"""Backlog at as_of (current and past), its age buckets, and tickets awaiting a first reply."""

from __future__ import annotations

import pytest

from tests.test_kpi_fixtures import Desk, h


@pytest.fixture
def desk() -> Desk:
    d = Desk()
    d.ticket("1", h(0))  # open, replied at h1
    d.msg("1", h(1), "agent")
    d.ticket("2", h(30), status="pending")  # no reply
    d.ticket("3", h(10), status="solved", solved=h(20))  # never reopened
    d.ticket("4", h(0), status="solved", solved=h(40))  # solved h5, reopened h12, solved again h40
    d.status("4", h(5), "new", "solved")
    d.status("4", h(12), "solved", "open")
    d.status("4", h(40), "open", "solved")
    d.ticket("5", h(-200), status="on_hold")  # old, no messages, no events
    d.ticket("6", h(20), status="open", solved=h(25))  # solved h25, reopened h26: open now
    d.status("6", h(25), "new", "solved")
    d.status("6", h(26), "solved", "open")
    d.ticket("7", h(60))  # created after as_of
    d.ticket("8", h(0), status="deleted")
    return d


def test_backlog_now(desk: Desk) -> None:
    k = desk.kpis(h(0), h(48), now=h(48))["kpis"]
    # unsolved at h48: t1 (age 48h), t2 (18h), t5 (248h), t6 (28h)
    assert k["backlog_size"] == 4
    assert k["backlog_age"] == {"0_24h": 1, "24_48h": 1, "48h_7d": 1, "gt_7d": 1,
                                "pct_gt_24h": 75.0, "pct_gt_48h": 50.0, "pct_gt_7d": 25.0}
    # no reply and no solve yet: t2, t5 (t6 was solved once, t1 replied)
    assert k["tickets_awaiting_first_reply"] == 2


def test_backlog_in_the_past_replays_status_history(desk: Desk) -> None:
    k = desk.kpis(h(0), h(15), now=h(48))["kpis"]
    # at h15: t1 (15h), t3 (5h: solved later at h20), t4 (15h: reopened at h12, solved again h40), t5 (215h)
    assert k["backlog_size"] == 4
    assert k["backlog_age"]["0_24h"] == 3
    assert k["backlog_age"]["gt_7d"] == 1
    # awaiting at h15: t3 (no reply, first solve h20) and t5
    assert k["tickets_awaiting_first_reply"] == 2
    earlier = desk.kpis(h(-1), h(10), now=h(48))["kpis"]
    # at h10: t1 and t5; t4 was solved between h5 and h12; t3 is created at h10 exactly (not before as_of)
    assert earlier["backlog_size"] == 2


def test_empty_backlog_percentages_are_null() -> None:
    k = Desk().kpis(h(0), h(10))["kpis"]
    assert k["backlog_size"] == 0
    assert k["backlog_age"] == {"0_24h": 0, "24_48h": 0, "48h_7d": 0, "gt_7d": 0,
                                "pct_gt_24h": None, "pct_gt_48h": None, "pct_gt_7d": None}
