"""The CDI reads one ticket in eight: the edges of that window (kpi_engine.distress_data._build_tickets).

Only tickets that can move a component are mapped to accounts one by one (created or solved in the last
90 days, unsolved now, or touched since the windows began); every other ticket counts only in its account's
lifetime (tickets per tenure month, tenure, the helpdesks a customer uses, the records that name it). Each
test is an old ticket the window leaves out that must still count, or a ticket it must not miss.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from config.settings import CustomerSettings, DistressSettings
from kpi_engine import distress_rank as rk
from kpi_engine.customers import resolve
from kpi_engine.distress import compute_cdi
from sync.store import Store
from tests.distress_kit import DAY, T, org, person, status_event, ticket

MONTH = rk.MONTH_S
OPTIONAL = DistressSettings(weights={"reopens": 0.1, "low_csat": 0.1})


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store(":memory:")
    yield s
    s.close()


def _by_account(store: Store, settings: DistressSettings | None = None, as_of: int = T, **kw: object) -> dict:
    res = compute_cdi(store.conn, settings=settings or DistressSettings(), as_of=as_of, **kw)
    return {a.account: a for a in res.accounts}


def test_old_closed_tickets_count_in_the_lifetime_and_tenure(store: Store) -> None:
    org(store, "A", created_at=None)  # no record date: tenure starts at the first ticket
    ticket(store, org_id="A", created=T - 2 * DAY)
    for back in (700, 500, 300):  # closed long ago, untouched since: outside every window
        ticket(store, org_id="A", created=T - back * DAY, status="closed", solved=T - (back - 1) * DAY)
    a = _by_account(store)["zd:org:A"]
    assert a.tenure_days == 700
    assert a.components["tickets_per_tenure_month"] == round(4 / (700 * DAY / MONTH), 4)


def test_a_ticket_without_organization_joins_its_requesters_organization_in_the_lifetime(store: Store) -> None:
    org(store, "A", created_at=T - 10 * MONTH)
    person(store, "pa", org_id="A")
    ticket(store, org_id="A", requester="pa", created=T - DAY)
    ticket(store, org_id=None, requester="pa", created=T - 400 * DAY, status="closed", solved=T - 399 * DAY)
    ticket(store, org_id="", requester="pa", created=T - 300 * DAY, status="closed", solved=T - 299 * DAY)
    accounts = _by_account(store)
    assert set(accounts) == {"zd:org:A"}  # not a second account for the requester
    a = accounts["zd:org:A"]
    assert a.tenure_days == 400  # the requester's first ticket predates the organization's record
    assert a.components["tickets_per_tenure_month"] == round(3 / (400 * DAY / MONTH), 4)


def test_an_imported_low_rating_on_an_old_untouched_ticket_counts(store: Store) -> None:
    ticket(store, org_id="A", created=T - 5 * DAY)  # makes A active
    old = ticket(store, org_id="A", created=T - 200 * DAY, status="closed", solved=T - 199 * DAY)
    # a survey answer imported later names the ticket but never touches it (updated_at stays 199 days back)
    store.upsert("ratings", [{"source": "zd", "id": "s1", "ticket_id": old, "kind": "csat", "score_1_5": 1.0,
                              "created_at": T - 3 * DAY}])
    assert _by_account(store, OPTIONAL)["zd:org:A"].components["low_csat_30d"] == 1


def test_a_reopen_recorded_on_an_old_untouched_ticket_counts(store: Store) -> None:
    ticket(store, org_id="A", created=T - 5 * DAY)
    old = ticket(store, org_id="A", created=T - 200 * DAY, status="closed", solved=T - 199 * DAY)
    status_event(store, old, T - 4 * DAY, "solved", "open")
    status_event(store, old, T - 4 * DAY + 60, "open", "closed")
    assert _by_account(store, OPTIONAL)["zd:org:A"].components["reopens_30d"] == 1


def test_a_ticket_touched_after_a_past_day_is_replayed_for_that_day(store: Store) -> None:
    # created 200 days ago, solved 150 days ago, reopened 40 days ago and closed again yesterday; like some
    # helpdesks, the ticket still carries its first solve time, so only updated_at says it moved since
    tid = ticket(store, org_id="A", created=T - 200 * DAY, status="closed", solved=T - 150 * DAY, updated=T - DAY)
    status_event(store, tid, T - 150 * DAY, "open", "solved")
    status_event(store, tid, T - 40 * DAY, "solved", "open")
    status_event(store, tid, T - DAY, "open", "closed")
    past = _by_account(store, as_of=T - 20 * DAY)  # open on that day (only the history says so)
    assert past["zd:org:A"].components["open_tickets"] == 1
    assert past["zd:org:A"].components["avg_open_age_s"] == 180 * DAY


def test_a_customer_keeps_the_helpdesk_it_only_used_long_ago(store: Store) -> None:
    org(store, "A", name="Acme", value=1000, created_at=T - 100 * DAY)
    org(store, "X", name="Acme Corp", value=5000, created_at=T - 900 * DAY, source="fd")
    ticket(store, org_id="A", created=T - DAY)
    ticket(store, org_id="X", created=T - 800 * DAY, status="closed", solved=T - 799 * DAY, source="fd")
    customers = resolve(store.conn, CustomerSettings(map={"Acme": ["zd:A", "fd:X"]}))
    (acct,) = _by_account(store, customers=customers).values()
    assert acct.account == "customer:Acme"
    assert acct.sources == ["fd", "zd"]
    assert acct.value == 5000  # the larger record, although its helpdesk saw no ticket in years
    assert acct.tenure_days == 900
    assert acct.components["tickets_per_tenure_month"] == round(2 / (900 * DAY / MONTH), 4)
