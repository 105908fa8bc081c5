"""CSAT, NPS and CES: hand-computed, attributed by rating time."""

from __future__ import annotations

from tests.test_kpi_fixtures import Desk, h


def test_csat_nps_ces() -> None:
    d = Desk()
    d.ticket("1", h(0))
    d.ticket("2", h(0), status="deleted")
    # CSAT: Zendesk good=5, bad=1; Intercom 4 (satisfied) and 3 (not); a rating of a deleted ticket is ignored
    for score in (5, 5, 1, 4, 3):
        d.rating("csat", h(1), tid="1", score_1_5=score)
    d.rating("csat", h(1), tid="2", score_1_5=5)
    d.rating("csat", h(100), tid="1", score_1_5=1)  # after the period
    # NPS: promoters 9, 10, 10; passive 7, 8; detractors 0, 6 -> (3 - 2) / 7 = 14.29
    for score in (9, 10, 10, 7, 8, 0, 6):
        d.rating("nps", h(2), score=score, source="survey")
    # CES: 7, 5, 4, 1 -> mean 4.25, easy (5-7) 2/4; a 9 is not on the 1-7 scale and is kept apart
    for score in (7, 5, 4, 1, 9):
        d.rating("ces", h(3), score=score, source="survey")
    k = d.kpis(h(0), h(48))["kpis"]
    assert k["csat_pct"] == 60.0  # 3 satisfied (5, 5, 4) of 5
    assert k["nps"] == 14.29
    assert k["ces_mean"] == 4.25
    assert k["ces_easy_pct"] == 50.0
    # --source narrows ratings too: the survey responses live in source "survey"
    zd = d.kpis(h(0), h(48), source="zd")["kpis"]
    assert zd["csat_pct"] == 60.0
    assert zd["nps"] is None


def test_no_ratings_is_null() -> None:
    k = Desk().kpis(h(0), h(48))["kpis"]
    assert (k["csat_pct"], k["nps"], k["ces_mean"], k["ces_easy_pct"]) == (None, None, None, None)
