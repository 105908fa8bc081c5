"""Daily history: trend with its dead band, the 7-day rise, idempotent recording, backfill, and priority order."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta

import pytest

from config.settings import DistressSettings
from kpi_engine.distress import backfill, compute_cdi, day_of, record_history, refresh
from sync.store import Store
from tests.distress_kit import DAY, T, history, message, org, ticket

# Only tickets_30d is weighted and the reference is 10 tickets: the CDI is 10 × the ticket count, so
# the trend tests can pick today's CDI exactly.
TEN_PER_TICKET = DistressSettings(
    weights={"tickets_30d": 1.0, "open_tickets": 0, "avg_open_age": 0, "avg_time_to_close": 0,
             "tickets_per_tenure_month": 0, "negative_tone": 0}, reference={"tickets_30d": 10})
TODAY = date.fromisoformat(day_of(T))


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store(":memory:")
    yield s
    s.close()


def _days(first_back: int, values: list[int]) -> dict[str, int]:
    """{day: cdi} for consecutive days starting ``first_back`` days before today."""
    return {(TODAY - timedelta(days=first_back - i)).isoformat(): v for i, v in enumerate(values)}


def _today_cdi_50(store: Store) -> None:
    for _ in range(5):
        ticket(store, org_id="A", created=T - DAY)


@pytest.mark.parametrize(("prior", "recent", "arrow", "delta"), [
    ([50] * 7, [54, 54, 54, 54, 54, 55], "→", 5.0),  # exactly +5: inside the dead band
    ([50] * 7, [54, 54, 54, 54, 55, 55], "↑", 5.14),
    ([60] * 7, [55, 55, 55, 55, 55, 55], "→", -4.29),
    ([62] * 7, [55, 55, 55, 55, 55, 55], "↓", -6.29),
])
def test_trend_dead_band(store: Store, prior: list[int], recent: list[int], arrow: str, delta: float) -> None:
    # Today's CDI 60 (6 tickets) joins the recent window: (54*5 + 55 + 60) / 7 = 55.0 vs 50 -> +5.0.
    for _ in range(6):
        ticket(store, org_id="A", created=T - DAY)
    history(store, "zd:org:A", _days(13, prior) | _days(6, recent))
    acct = compute_cdi(store.conn, settings=TEN_PER_TICKET, as_of=T).accounts[0]
    assert acct.cdi == 60
    assert acct.trend == arrow and acct.trend_delta == pytest.approx(delta, abs=0.01)


def test_trend_needs_enough_history(store: Store) -> None:
    _today_cdi_50(store)
    history(store, "zd:org:A", _days(9, [10, 10, 10]) | _days(6, [90] * 6))  # only 3 days in the prior window
    acct = compute_cdi(store.conn, settings=TEN_PER_TICKET, as_of=T).accounts[0]
    assert acct.trend is None and acct.trend_delta is None


def test_rise_over_seven_days(store: Store) -> None:
    _today_cdi_50(store)
    history(store, "zd:org:A", _days(7, [35]))
    acct = compute_cdi(store.conn, settings=TEN_PER_TICKET, as_of=T).accounts[0]
    assert (acct.rise_7d, acct.rising) == (15, True)  # 50 - 35 = rise_points exactly
    settings = TEN_PER_TICKET.model_copy(update={"rise_points": 16})
    assert compute_cdi(store.conn, settings=settings, as_of=T).accounts[0].rising is False
    assert compute_cdi(store.conn, settings=TEN_PER_TICKET, as_of=T).flagged()[0].account == "zd:org:A"


def test_record_history_is_idempotent_and_replaces_the_day(store: Store) -> None:
    _today_cdi_50(store)
    ticket(store, org_id="B", created=T - DAY)
    res = compute_cdi(store.conn, settings=TEN_PER_TICKET, as_of=T)
    assert record_history(store.conn, res, computed_at=T) == 2
    first = store.query("SELECT * FROM cdi_history ORDER BY account")
    record_history(store.conn, res, computed_at=T)
    assert store.query("SELECT * FROM cdi_history ORDER BY account") == first
    row = first[0]
    assert (row["day"], row["account"], row["source"], row["organization_id"], row["cdi"], row["band"]) == (
        TODAY.isoformat(), "zd:org:A", "zd", "A", 50, "yellow")
    comps = json.loads(row["components"])
    assert comps["values"]["tickets_30d"] == 5 and comps["top_reasons"] == ["tickets (30d) 50% of ref"]
    # B's ticket is deleted later the same day: the re-recorded day no longer lists B.
    store.conn.execute("UPDATE tickets SET status = 'deleted' WHERE organization_id = 'B'")
    record_history(store.conn, compute_cdi(store.conn, settings=TEN_PER_TICKET, as_of=T))
    assert [r["account"] for r in store.query("SELECT account FROM cdi_history")] == ["zd:org:A"]


def test_backfill_gives_a_trend_on_a_fresh_install(store: Store) -> None:
    # One ticket a day for the last 20 days: the 30-day count, and so the CDI, climbs day by day.
    for back in range(20):
        ticket(store, org_id="A", created=T - back * DAY - 3600, status="solved", solved=T - back * DAY)
    assert compute_cdi(store.conn, settings=TEN_PER_TICKET, as_of=T).accounts[0].trend is None
    assert backfill(store.conn, settings=TEN_PER_TICKET, as_of=T, days=14) == 14
    assert backfill(store.conn, settings=TEN_PER_TICKET, as_of=T, days=14) == 0  # only missing days
    days = [r["day"] for r in store.query("SELECT day FROM cdi_history ORDER BY day")]
    assert days == [(TODAY - timedelta(days=k)).isoformat() for k in range(14, 0, -1)]
    # As of j days ago, 20 - j of the tickets existed: CDI 10 * (20 - j), capped at 100.
    cdis = [r["cdi"] for r in store.query("SELECT cdi FROM cdi_history ORDER BY day")]
    assert cdis == [60, 70, 80, 90] + [100] * 10
    acct = compute_cdi(store.conn, settings=TEN_PER_TICKET, as_of=T).accounts[0]
    # recent 7 days all 100; prior 7 (70, 80, 90, 100, 100, 100, 100) mean 91.43 -> +8.57; a week ago it was 100.
    assert (acct.trend, acct.trend_delta, acct.rise_7d) == ("↑", 8.57, 0)


def test_refresh_runs_the_whole_pipeline(store: Store) -> None:
    tid = ticket(store, org_id="A", created=T - 10 * DAY, updated=T - DAY + 60)
    message(store, tid, "This is awful and broken.", T - DAY + 60)
    res = refresh(store.conn, settings=DistressSettings(), as_of=T, history_days=3)
    assert store.scalar("SELECT count(*) FROM message_sentiment") == 1
    assert store.scalar("SELECT count(DISTINCT day) FROM cdi_history") == 4  # 3 backfilled + today
    assert res.accounts[0].components["negative_tone_30d"] == 1.0


def test_priority_orders_but_never_hides_a_small_distressed_customer(store: Store) -> None:
    """25 accounts: big old ones with a moderate CDI, one tiny new one in real trouble."""
    for i in range(24):
        org(store, f"big{i}", value=1_000_000 + i, created_at=T - (2000 + i) * DAY)
        for _ in range(2 + i % 3):
            ticket(store, org_id=f"big{i}", created=T - 5 * DAY, status="solved", solved=T - 4 * DAY)
        ticket(store, org_id=f"big{i}", created=T - 3 * DAY)
    org(store, "tiny", value=100, created_at=T - 60 * DAY)
    for back in range(6):
        tid = ticket(store, org_id="tiny", created=T - (20 + back) * DAY, updated=T - DAY)
        message(store, tid, "This is terrible, we are angry and it is still broken.", T - DAY)
    res = refresh(store.conn, settings=DistressSettings(), as_of=T, history_days=0)
    tiny = next(a for a in res.accounts if a.account == "zd:org:tiny")
    assert tiny.band == "red" and tiny.cdi == max(a.cdi for a in res.accounts)
    assert (tiny.value_factor, tiny.tenure_factor) == (0.5, 0.5)
    assert tiny in res.accounts and tiny in res.flagged()
    position = res.accounts.index(tiny)
    assert position > 0  # ordered lower than its CDI alone would put it ...
    assert tiny.priority == pytest.approx(tiny.cdi * 0.25)
    assert [a.priority for a in res.accounts] == sorted((a.priority for a in res.accounts), reverse=True)
    # ... but value and tenure never change the CDI or the band.
    store.conn.execute("UPDATE organizations SET value = 5")
    same = {a.account: (a.cdi, a.band) for a in compute_cdi(store.conn, settings=DistressSettings(), as_of=T).accounts}
    assert same == {a.account: (a.cdi, a.band) for a in res.accounts}
