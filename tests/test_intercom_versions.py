"""What the Intercom version changes end to end (issue 11; API-NOTES 6.1): the same workspace synced with the
default 2.16 and with a pinned 2.11.

- AHT: 2.16's ``adjusted_handling_time`` is the effort (the world's time spent); 2.11 has no handling time,
  so there is no effort data and ``aht_mean_s`` is null, never a wall-clock figure.
- CSAT dates: 2.16's ``conversation_rating.updated_at`` is when the customer answered; 2.11 has only
  ``created_at``, when the rating was requested (the solve), and deskpulse can only use that.
"""

from __future__ import annotations

from typing import Any

import pytest
import responses

from config.settings import CostSettings, KpiSettings, SlaSettings
from kpi_engine.engine import compute
from sync.store import Store
from tests.intercom_kit import T0, FakeTime, make_connector, make_sim, make_source, mount, small_world, sync

EFFORT_S = 1234


@pytest.fixture
def rm() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def synced(rm: Any, version: str) -> Store:
    world = small_world()
    world.ticket(101).time_spent_s = EFFORT_S
    fake = FakeTime()
    mount(rm, make_sim(world, fake=fake))
    store = Store(":memory:")
    sync(make_connector(fake, make_source(intercom_version=version)), store, {})
    return store


def aht(store: Store) -> Any:
    return compute(store.conn, kpi=KpiSettings(), sla=SlaSettings(), costs=CostSettings(), since=T0 - 86400,
                   until=T0 + 5 * 86400, now=T0 + 5 * 86400)["kpis"]["aht_mean_s"]


def test_2_16_gives_the_active_handling_time_and_the_answer_time(rm: Any) -> None:
    store = synced(rm, "2.16")
    entries = store.query("SELECT ticket_id, seconds FROM time_entries")
    assert [(e["ticket_id"], e["seconds"]) for e in entries] == [("101", EFFORT_S)]
    assert aht(store) == EFFORT_S
    world = small_world().ticket(101)
    [rating] = store.query("SELECT created_at FROM ratings")
    assert rating["created_at"] == world.rating.created_at  # answered, not asked


def test_pinned_2_11_has_no_aht_and_dates_ratings_at_the_request(rm: Any) -> None:
    store = synced(rm, "2.11")
    assert store.query("SELECT * FROM time_entries") == []
    assert aht(store) is None
    world = small_world().ticket(101)
    [rating] = store.query("SELECT created_at FROM ratings")
    assert rating["created_at"] == world.solved_at < world.rating.created_at  # the request (at the solve)
