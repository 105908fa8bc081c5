"""The CDI by hand: components, min-max fallback, percentile ties, bands, weights, priority, optional components."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from config.errors import ConfigError
from config.settings import DistressSettings, SlaSettings
from kpi_engine import distress_rank as rk
from kpi_engine.distress import compute_cdi
from kpi_engine.sentiment import label, score_pending, score_text
from sync.store import Store
from tests.distress_kit import DAY, T, message, org, person, status_event, ticket

MONTH = rk.MONTH_S


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store(":memory:")
    yield s
    s.close()


@pytest.fixture
def small(store: Store) -> Store:
    """Three active accounts and one inactive one; every number below is derived in the test's comments."""
    org(store, "A", name="Acme", value=50_000, created_at=T - 10 * MONTH)
    person(store, "pa", org_id="A", created_at=T - 400 * DAY)
    t1 = ticket(store, org_id="A", requester="pa", created=T - 2 * DAY, updated=T - DAY + 100)
    t2 = ticket(store, org_id="A", requester="pa", created=T - 10 * DAY, status="pending", updated=T - 9 * DAY + 100)
    # No organization on the ticket: attributed to A through its requester.
    t3 = ticket(store, org_id=None, requester="pa", created=T - 40 * DAY, status="solved", solved=T - 33 * DAY)
    ticket(store, org_id="A", requester="pa", created=T - 200 * DAY, status="closed", solved=T - 190 * DAY)
    # Excluded from everything: spam, merged away, deleted.
    ticket(store, org_id="A", requester="pa", created=T - DAY, is_spam=1)
    ticket(store, org_id="A", requester="pa", created=T - DAY, status="closed", is_merged=1)
    ticket(store, org_id="A", requester="pa", created=T - DAY, status="deleted")
    message(store, t1, "This is awful.", T - DAY)
    message(store, t1, "Terrible, broken again.", T - DAY + 100)
    message(store, t2, "Thanks, works great!", T - 9 * DAY)
    message(store, t2, "Sorry, this is a terrible bug.", T - 9 * DAY + 50, role="agent")  # agent: not tone
    message(store, t2, "awful customer", T - 9 * DAY + 60, public=0)  # private: not tone
    message(store, t2, "I attached the invoice PDF.", T - 9 * DAY + 100)
    message(store, t3, "Awful, horrible.", T - 39 * DAY)  # older than 30 days
    person(store, "u9", org_id=None, created_at=T - 100 * DAY)
    t9 = ticket(store, org_id=None, requester="u9", created=T - 5 * DAY)
    message(store, t9, "Thanks, works great!", T - 5 * DAY)
    org(store, "C", name="Cobalt", value=900)  # no created_at: tenure from its first ticket
    ticket(store, org_id="C", requester="pc", created=T - 120 * DAY)  # open for 120 days: still active
    org(store, "B", name="Bygone", value=10)
    ticket(store, org_id="B", requester="pb", created=T - 300 * DAY, status="closed", solved=T - 200 * DAY)
    score_pending(store.conn, now=T)
    return store


def test_hand_computed_cdi_minmax(small: Store) -> None:
    # Preconditions on the tone of the texts used above.
    assert [label(score_text(t)) for t in ("This is awful.", "Terrible, broken again.", "Thanks, works great!",
                                           "I attached the invoice PDF.")] == ["negative", "negative", "positive",
                                                                             "neutral"]
    res = compute_cdi(small.conn, settings=DistressSettings(), as_of=T)
    assert res.method == "minmax" and "fewer than 20" in (res.note or "")
    by = {a.account: a for a in res.accounts}
    assert set(by) == {"zd:org:A", "zd:user:u9", "zd:org:C"}  # B is inactive; spam/merged/deleted ignored
    a = by["zd:org:A"]
    # A: 2 tickets in 30 d (t1, t2); 2 open (t1 open, t2 pending), ages 2 d and 10 d -> mean 6 d;
    # t3 solved 33 d ago after 7 d -> mean time to close 7 d; lifetime 4 tickets over 10 months -> 0.4;
    # customer messages in 30 d: 2 negative of 4 -> 0.5.
    assert a.components == {"tickets_30d": 2, "open_tickets": 2, "avg_open_age_s": 6 * DAY,
                            "avg_time_to_close_s": 7 * DAY, "tickets_per_tenure_month": 0.4,
                            "negative_tone_30d": 0.5}
    # Min-max vs default references (10, 5, 14 d, 7 d, 3, 0.5):
    #   0.20*2/10 + 0.15*2/5 + 0.15*6/14 + 0.10*7/7 + 0.10*0.4/3 + 0.30*0.5/0.5
    # = 0.04 + 0.06 + 0.0642857 + 0.10 + 0.0133333 + 0.30 = 0.5776190 -> 57.76 -> 58
    assert a.cdi == 58 and a.band == "yellow"
    assert a.top_reasons == ["negative tone 100% of ref", "avg time to close 100% of ref",
                             "avg open age 43% of ref"]
    u = by["zd:user:u9"]
    # u9: 1 ticket, open 5 d, no close, tenure 100 d = 3.2854 months -> 0.30438 tickets/month, tone 0/1.
    #   0.20*0.1 + 0.15*0.2 + 0.15*5/14 + 0 + 0.10*0.30438/3 + 0.30*0 = 0.1137172 -> 11
    assert u.cdi == 11 and u.band == "green"
    assert u.components["negative_tone_30d"] == 0.0 and u.components["avg_time_to_close_s"] is None
    c = by["zd:org:C"]
    # C: 1 open ticket aged 120 d (capped at 1.0), tenure 120 d = 3.9425 months -> 0.25365/month, no messages.
    #   0.15*1/5 + 0.15*1.0 + 0.10*0.25365/3 = 0.03 + 0.15 + 0.0084549 = 0.1884549 -> 19
    assert c.cdi == 19 and c.components["negative_tone_30d"] is None
    # Priority: value percentiles A 1.0 (50,000 > 900), C 0.0, u9 0.0 (no value: missing);
    # tenure percentiles u9 0.0 (100 d), C 0.5 (120 d), A 1.0 (10 months); factor = 0.5 + percentile.
    assert (a.value_factor, a.tenure_factor) == (1.5, 1.5)
    assert (c.value_factor, c.tenure_factor) == (0.5, 1.0)
    assert (u.value_factor, u.tenure_factor) == (0.5, 0.5)
    assert a.priority == 58 * 1.5 * 1.5 and c.priority == 19 * 0.5 and u.priority == 11 * 0.25
    assert [x.account for x in res.accounts] == ["zd:org:A", "zd:org:C", "zd:user:u9"]


def test_custom_reference_and_weights(small: Store) -> None:
    settings = DistressSettings(weights={"negative_tone": 1, "tickets_30d": 0, "open_tickets": 0, "avg_open_age": 0,
                                         "avg_time_to_close": 0, "tickets_per_tenure_month": 0},
                                reference={"negative_tone": 1.0})
    by = {a.account: a for a in compute_cdi(small.conn, settings=settings, as_of=T).accounts}
    assert by["zd:org:A"].cdi == 50  # 0.5 / 1.0 reference
    assert by["zd:org:A"].scaled == {"negative_tone_30d": 0.5}


@pytest.mark.parametrize(("green_max", "yellow_max", "band"), [(58, 70, "green"), (57, 70, "yellow"),
                                                               (57, 58, "yellow"), (40, 57, "red")])
def test_band_boundaries(small: Store, green_max: int, yellow_max: int, band: str) -> None:
    settings = DistressSettings(green_max=green_max, yellow_max=yellow_max)
    by = {a.account: a for a in compute_cdi(small.conn, settings=settings, as_of=T).accounts}
    assert by["zd:org:A"].cdi == 58 and by["zd:org:A"].band == band


def test_band_function_edges() -> None:
    assert [rk.band(x, 40, 70) for x in (0, 40, 41, 70, 71, 100)] == ["green", "green", "yellow", "yellow", "red",
                                                                      "red"]
    assert rk.band(50, 50, 50) == "green" and rk.band(51, 50, 50) == "red"


def test_percentile_ties_take_the_average_rank() -> None:
    ranks = rk.percentile_ranks({"a": 1.0, "b": 1.0, "c": 2.0, "d": 5.0, "e": None})
    # n = 4 present; a and b share ranks 1 and 2 -> 1.5 -> (1.5-1)/3 = 1/6; c rank 3 -> 2/3; d -> 1; e missing -> 0
    assert ranks == {"a": pytest.approx(1 / 6), "b": pytest.approx(1 / 6), "c": pytest.approx(2 / 3), "d": 1.0,
                     "e": 0.0}
    assert rk.percentile_ranks({"x": 3.0, "y": 3.0}) == {"x": 0.5, "y": 0.5}
    assert rk.percentile_ranks({"x": 3.0, "y": None}) == {"x": 0.5, "y": 0.0}
    assert rk.percentile_ranks({}) == {}


def test_percentile_method_with_ties_and_half_up_rounding(store: Store) -> None:
    # 21 accounts with tickets_30d = 1, 1, 2, 3, ..., 20; only that component weighted.
    counts = [1, 1, *range(2, 21)]
    for i, n in enumerate(counts):
        org(store, f"o{i}", created_at=T - 400 * DAY)
        for _ in range(n):
            ticket(store, org_id=f"o{i}", created=T - 3 * DAY, status="solved", solved=T - 2 * DAY)
    only = {c: 0.0 for c in rk.DEFAULT_WEIGHTS}
    res = compute_cdi(store.conn, settings=DistressSettings(weights={**only, "tickets_30d": 1}), as_of=T)
    assert res.method == "percentile" and res.active_accounts == 21 and not res.notes
    cdi = {a.account: a.cdi for a in res.accounts}
    # The two 1s share ranks 1-2 -> p = 0.5/20 = 0.025 -> 2.5 -> 3 (half up; round() would say 2).
    assert cdi["zd:org:o0"] == cdi["zd:org:o1"] == 3
    assert cdi["zd:org:o2"] == 10  # value 2, rank 3 -> 2/20
    assert cdi["zd:org:o20"] == 100
    top = next(a for a in res.accounts if a.account == "zd:org:o20")
    assert top.top_reasons == ["tickets (30d) 100th pct"]
    # A component nobody has (no open tickets anywhere) ranks everyone 0.
    res = compute_cdi(store.conn, settings=DistressSettings(weights={**only, "avg_open_age": 1}), as_of=T)
    assert {a.cdi for a in res.accounts} == {0}
    assert all(a.top_reasons == [] for a in res.accounts)


def test_min_max_boundary_at_twenty_accounts(store: Store) -> None:
    for i in range(19):
        ticket(store, org_id=f"o{i}", created=T - DAY)
    assert compute_cdi(store.conn, settings=DistressSettings(), as_of=T).method == "minmax"
    ticket(store, org_id="o19", created=T - DAY)
    assert compute_cdi(store.conn, settings=DistressSettings(), as_of=T).method == "percentile"


@pytest.mark.parametrize("weights", [{"bogus": 1.0}, {"tickets_30d": -1.0}, {c: 0.0 for c in rk.DEFAULT_WEIGHTS}])
def test_bad_weights_are_config_errors(store: Store, weights: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        compute_cdi(store.conn, settings=DistressSettings(weights=weights), as_of=T)


def test_bad_reference_is_a_config_error(store: Store) -> None:
    with pytest.raises(ConfigError):
        compute_cdi(store.conn, settings=DistressSettings(reference={"open_tickets": 0}), as_of=T)


def test_open_at_a_past_moment_follows_status_history(store: Store) -> None:
    # Solved 10 days ago, reopened 3 days ago: open now and 15 days ago, solved 5 days ago.
    tid = ticket(store, org_id="A", created=T - 20 * DAY, status="open", solved=T - 10 * DAY, updated=T - 3 * DAY)
    status_event(store, tid, T - 20 * DAY + 60, "new", "open")
    status_event(store, tid, T - 10 * DAY, "open", "solved")
    status_event(store, tid, T - 3 * DAY, "solved", "open")
    # No status history: solved 2 days ago, so open 5 days ago.
    ticket(store, org_id="B", created=T - 8 * DAY, status="solved", solved=T - 2 * DAY, updated=T - DAY)

    def open_count(as_of: int) -> dict[str, int | float | None]:
        res = compute_cdi(store.conn, settings=DistressSettings(), as_of=as_of)
        return {a.account: a.components["open_tickets"] for a in res.accounts}

    assert open_count(T) == {"zd:org:A": 1, "zd:org:B": 0}
    assert open_count(T - 5 * DAY) == {"zd:org:A": 0, "zd:org:B": 1}
    assert open_count(T - 15 * DAY) == {"zd:org:A": 1}  # B did not exist yet


def test_optional_components_when_weighted(store: Store) -> None:
    tid = ticket(store, org_id="A", created=T - 10 * DAY, status="open", solved=T - 8 * DAY, updated=T - 5 * DAY)
    status_event(store, tid, T - 8 * DAY, "open", "solved")
    status_event(store, tid, T - 5 * DAY, "solved", "open")
    store.upsert("ratings", [{"source": "zd", "id": "r1", "ticket_id": tid, "kind": "csat", "score_1_5": 1.0,
                              "created_at": T - 7 * DAY},
                             {"source": "zd", "id": "r2", "ticket_id": tid, "kind": "csat", "score_1_5": 5.0,
                              "created_at": T - 7 * DAY}])
    late = ticket(store, org_id="A", created=T - 4 * DAY, severity=3)  # target 60 min, answered after 2 h
    message(store, late, "help", T - 4 * DAY)
    message(store, late, "on it", T - 4 * DAY + 7200, role="agent")
    ontime = ticket(store, org_id="A", created=T - 4 * DAY, severity=3)
    message(store, ontime, "on it", T - 4 * DAY + 600, role="agent")
    ticket(store, org_id="A", created=T - 3 * DAY, severity=1)  # target 8 h, never answered: breached
    ticket(store, org_id="A", created=T - 3600, severity=1)  # not due yet
    settings = DistressSettings(weights={"reopens": 0.1, "low_csat": 0.1, "sla_breaches": 0.1})
    res = compute_cdi(store.conn, settings=settings, as_of=T, sla=SlaSettings(first_reply={3: 60, 1: 480}))
    comps = res.accounts[0].components
    # SLA breaches: `late` (2 h > 60 min), the unanswered severity-1 ticket, and the reopened one (never answered).
    assert (comps["reopens_30d"], comps["low_csat_30d"], comps["sla_breaches_30d"]) == (1, 1, 3)
    res = compute_cdi(store.conn, settings=settings, as_of=T)  # no SLA targets configured
    assert res.accounts[0].components["sla_breaches_30d"] is None  # missing: ranks 0
    assert any("first_reply" in n for n in res.notes)
    assert "reopens_30d" not in compute_cdi(store.conn, settings=DistressSettings(), as_of=T).accounts[0].components


def test_source_filter_and_unscored_note(store: Store) -> None:
    t1 = ticket(store, org_id="A", created=T - DAY, source="zd")
    ticket(store, org_id="A", created=T - DAY, source="fd")
    message(store, t1, "awful", T - DAY + 5, source="zd")
    res = compute_cdi(store.conn, settings=DistressSettings(), as_of=T, source="fd")
    assert [a.account for a in res.accounts] == ["fd:org:A"] and res.source == "fd"
    res = compute_cdi(store.conn, settings=DistressSettings(), as_of=T)
    assert {a.account for a in res.accounts} == {"zd:org:A", "fd:org:A"}
    assert any("no sentiment score" in n for n in res.notes)  # score_pending was not run
    score_pending(store.conn)
    res = compute_cdi(store.conn, settings=DistressSettings(), as_of=T)
    assert not any("no sentiment score" in n for n in res.notes)
    assert {a.account: a.components["negative_tone_30d"] for a in res.accounts} == {"zd:org:A": 1.0,
                                                                                    "fd:org:A": None}


def test_ordinals_and_wording() -> None:
    assert [rk.ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 88, 95, 100, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "88th", "95th", "100th", "101st", "111th"]
    reasons = rk.top_reasons({"open_tickets": 0.95, "negative_tone_30d": 0.88, "avg_open_age_s": 0.80,
                              "tickets_30d": 0.10}, rk.DEFAULT_WEIGHTS, "percentile")
    assert reasons == ["negative tone 88th pct", "open tickets 95th pct", "avg open age 80th pct"]
