"""``compute(kpis=...)``: a few KPIs from only the families that measure them, equal to the full run's values.

Why: the report shows two KPIs per customer and seven per agent, group and channel; running all eight
families for fifteen thousand customers was most of its time on the bench store.
"""

from __future__ import annotations

from datetime import date

import pytest

from kpi_engine import registry
from kpi_engine.engine import compute, compute_tables
from kpi_engine.periods import Period
from sync.store import Store
from tests.test_kpi_breakdown import COSTS, END, KPI, SLA, TZ, generated

PICKS = (
    ("tickets_created", "sla_adherence_pct"),                                   # the report's SLA chart
    ("tickets_solved", "first_response_time_median_s", "fcr_pct", "csat_pct"),  # part of its breakdown tables
    ("backlog_size", "nps", "cdi_red"),
    ("sla_adherence_first_reply_pct", "sla_adherence_resolution_pct", "fcr_pct"),  # one SLA pass of its own
)


@pytest.fixture(scope="module")
def store() -> Store:
    return generated(":memory:", tickets=700, seed=5, days=120)


def run(store: Store, **kw: object) -> dict:
    p = Period.from_dates(date(2026, 2, 1), date(2026, 4, 15), TZ)
    return compute(store.conn, kpi=KPI, sla=SLA, costs=COSTS, since=p.since, until=p.until, now=END, **kw)


@pytest.mark.parametrize("by", [None, "week", "agent", "channel", "organization"])
@pytest.mark.parametrize("names", PICKS)
def test_selected_kpis_equal_the_full_catalog(store: Store, by: str | None, names: tuple[str, ...]) -> None:
    full = run(store, by=by)
    some = run(store, by=by, kpis=names)
    assert list(some["kpis"]) == [n for n in registry.NAMES if n in names]  # catalog order, nothing else
    assert some["kpis"] == {n: full["kpis"][n] for n in names}
    if by is not None:
        mine = {r["key"]: r["kpis"] for r in some["breakdown"]}
        theirs = {r["key"]: r["kpis"] for r in full["breakdown"]}
        assert [k for k in theirs if k in mine] == list(mine)  # the same order, no key of its own
        for key, kpis in theirs.items():
            if key in mine:
                assert mine[key] == {n: kpis[n] for n in names}, key
            else:  # a key only the other families measured: nothing of the selection happened there
                assert all(_empty(kpis[n]) for n in names), (key, {n: kpis[n] for n in names})
        assert mine or not any(not _empty(k[n]) for k in theirs.values() for n in names)


def _empty(value: object) -> bool:
    if isinstance(value, dict):
        return all(_empty(v) for k, v in value.items() if not k.startswith("pct"))
    return value in (None, 0, [])


def test_families_not_asked_for_do_not_run(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import kpi_engine.shard as shard

    ran: list[str] = []
    spied = tuple(type(f)(f.name, (lambda ws, f=f: (ran.append(f.name), f.collect(ws))[1]), f.finalize,
                          f.needs_tickets) for f in registry.FAMILIES)
    monkeypatch.setattr(shard, "FAMILIES", spied)
    run(store, by="organization", kpis=("tickets_created", "sla_adherence_pct"))
    assert sorted(ran) == ["sla", "volume"]  # SLA counts itself when the passes it rides on do not run


def test_an_unknown_kpi_is_named(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown KPI nope"):
        run(store, kpis=("tickets_created", "nope"))


@pytest.mark.parametrize("dims", [("agent", "group", "channel"), ("priority", "source")])
@pytest.mark.parametrize("names", [None, PICKS[1]])
def test_tables_from_one_pass_equal_their_own_computations(store: Store, dims: tuple[str, ...],
                                                           names: tuple[str, ...] | None) -> None:
    tables = compute_tables(store.conn, dims=dims, kpi=KPI, sla=SLA, costs=COSTS, now=END, kpis=names,
                            **_period())
    assert list(tables) == list(dims)
    for dim in dims:
        assert tables[dim] == run(store, by=dim, kpis=names), dim  # rows, keys, order, values, overall figures


def test_tables_from_one_pass_take_survey_answers_and_ratings_by_their_own_dimension(store: Store) -> None:
    # an agent-rated CSAT on a ticket of another assignee counts for the rating's agent (quality's own key)
    ticket = store.query("SELECT source, id, assignee_id FROM tickets WHERE assignee_id IS NOT NULL LIMIT 1")[0]
    store.upsert("ratings", [{"source": ticket["source"], "id": "sel-r1", "ticket_id": ticket["id"], "kind": "csat",
                              "score_1_5": 1.0, "assignee_id": "agent-who-rated", "created_at": END - 20 * 86400}])
    try:
        tables = compute_tables(store.conn, dims=("agent", "channel"), kpi=KPI, sla=SLA, costs=COSTS, now=END,
                                **_period())
        assert tables["agent"] == run(store, by="agent")
        assert "agent-who-rated" in {r["key"] for r in tables["agent"]["breakdown"]}
    finally:
        store.conn.execute("DELETE FROM ratings WHERE id = 'sel-r1'")


@pytest.mark.parametrize("dims", [("agent",), ("agent", "organization"), ("agent", "week"), ("agent", "agent")])
def test_tables_need_two_distinct_ticket_dimensions(store: Store, dims: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="two or more"):
        compute_tables(store.conn, dims=dims, kpi=KPI, sla=SLA, costs=COSTS, now=END, **_period())


def _period() -> dict[str, int]:
    p = Period.from_dates(date(2026, 2, 1), date(2026, 4, 15), TZ)
    return {"since": p.since, "until": p.until}
