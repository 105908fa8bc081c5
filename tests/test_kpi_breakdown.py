"""Breakdowns and internal consistency on a generated store: every bucket equals its own computation."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pytest

from config.settings import CostSettings, KpiSettings, SlaSettings
from kpi_engine import fact_store, facts
from kpi_engine.engine import compute
from kpi_engine.periods import Period
from sync.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import gen_store  # noqa: E402

TZ = "Europe/Berlin"
KPI = KpiSettings(timezone=TZ, business_hours={d: "09:00-17:00" for d in ("mon", "tue", "wed", "thu", "fri")})
SLA = SlaSettings(first_reply={3: 60, 2: 240, 1: 480}, resolution={3: 480, 2: 1440, 1: 4320})
COSTS = CostSettings(monthly_total=9000)
END = int(Period.from_dates(date(2026, 4, 20), date(2026, 4, 21), TZ).since)
NOT_PER_BUCKET = {"cdi_red", "cdi_yellow", "cdi_green"}


def generated(path: str | Path, *, tickets: int, seed: int, days: int) -> Store:
    """A store of ``tickets`` generated tickets (bench/gen_store.py) ending at END."""
    s = Store(path)
    gen = gen_store.Gen(s, tickets=tickets, seed=seed, end=END, days=days)
    gen.people()
    for i in range(tickets):
        gen.ticket(i)
    gen.flush()
    return s


@pytest.fixture(scope="module")
def store() -> Store:
    s = generated(":memory:", tickets=900, seed=3, days=120)
    s.conn.execute("INSERT INTO ratings (source, id, kind, score, score_1_5, created_at) "
                   "VALUES ('survey', 'n1', 'nps', 9, 4.2, ?), ('survey', 'n2', 'nps', 3, 2.2, ?)",
                   [END - 20 * 86400, END - 50 * 86400])
    return s


def run(store: Store, since: date, until: date, **kw: object) -> dict:
    p = Period.from_dates(since, until, TZ)
    return compute(store.conn, kpi=KPI, sla=SLA, costs=COSTS, since=p.since, until=p.until, now=END, **kw)


@pytest.mark.parametrize("by", ["month", "week"])
def test_time_buckets_equal_their_own_period(store: Store, by: str) -> None:
    # Feb 10 .. Apr 15 crosses the Berlin DST change (Mar 29) and cuts the first and last buckets
    result = run(store, date(2026, 2, 10), date(2026, 4, 15), by=by)
    assert result["kpis"] == run(store, date(2026, 2, 10), date(2026, 4, 15))["kpis"]
    rows = result["breakdown"]
    assert rows[0]["key"] == ("2026-02" if by == "month" else "2026-W07")
    for row in rows:
        if by == "month":
            y, m = map(int, row["key"].split("-"))
            start = max(date(y, m, 1), date(2026, 2, 10))
            end = min(date(y + (m == 12), m % 12 + 1, 1), date(2026, 4, 15))
        else:
            monday = date.fromisocalendar(int(row["key"][:4]), int(row["key"][6:]), 1)
            start = max(monday, date(2026, 2, 10))
            end = min(date.fromordinal(monday.toordinal() + 7), date(2026, 4, 15))
        alone = run(store, start, end)["kpis"]
        for name, value in row["kpis"].items():
            if name not in NOT_PER_BUCKET:
                assert value == alone[name], (row["key"], name)
    assert sum(r["kpis"]["tickets_created"] for r in rows) == result["kpis"]["tickets_created"]


def test_by_source_equals_source_filter(store: Store) -> None:
    result = run(store, date(2026, 2, 1), date(2026, 4, 1), by="source")
    keys = [r["key"] for r in result["breakdown"]]
    assert keys == sorted(keys)
    assert {"acme-zendesk", "acme-freshdesk", "acme-intercom", "survey"} <= set(keys)
    for row in result["breakdown"]:
        if row["key"] == "survey":
            assert row["kpis"]["nps"] is not None and row["kpis"]["tickets_created"] == 0
            continue
        alone = run(store, date(2026, 2, 1), date(2026, 4, 1), source=row["key"])["kpis"]
        for name, value in row["kpis"].items():
            if name not in NOT_PER_BUCKET | {"cost_per_ticket", "cost_per_resolved_ticket", "nps"}:
                assert value == alone[name], (row["key"], name)
        assert row["kpis"]["cost_per_ticket"] is None  # cost is not attributable to a source


@pytest.mark.parametrize("by", ["channel", "priority", "agent", "group", "organization"])
def test_ticket_dimensions_partition_the_totals(store: Store, by: str) -> None:
    result = run(store, date(2026, 2, 1), date(2026, 4, 1), by=by)
    total = result["kpis"]
    rows = result["breakdown"]
    for name in ("tickets_created", "tickets_solved", "backlog_size", "reopens_total",
                 "tickets_awaiting_first_reply"):
        assert sum(r["kpis"][name] for r in rows) == total[name], name
    if by == "priority":  # survey responses have no ticket, hence no priority
        assert {r["key"] for r in rows} == {"1", "2", "3", "(none)"}
        assert rows[-1]["kpis"]["tickets_created"] == 0 and rows[-1]["kpis"]["nps"] is not None
    if by == "organization":
        assert rows[-1]["key"] == "(none)"  # requesters without an organization, listed last


def test_scan_and_seek_plans_agree(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both plans of kpi_engine.facts store the same facts. Facts are built once and kept, so each plan
    gets a full rebuild of its own (a stale fingerprint), checked to have really used that plan."""
    plans: list[bool] = []
    real_fill = facts._fill

    def spy(*args: object) -> None:
        plans.append(bool(args[-1]))  # _fill(ws, table, cols, source_table, alias, scope, scan)
        real_fill(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(facts, "_fill", spy)

    def rebuilt(share: float) -> tuple[dict, dict[str, list[tuple]]]:
        monkeypatch.setattr(facts, "SCAN_SHARE", share)
        plans.clear()
        store.conn.execute("DELETE FROM kpi_facts_meta")
        result = run(store, date(2026, 1, 1), date(2026, 4, 21), by="week")
        assert plans and set(plans) == {share == 0.0}
        rows = {}
        for table in fact_store.TABLES:
            width = len(store.conn.execute(f"SELECT * FROM main.{table} LIMIT 0").description)
            order = ", ".join(str(i + 1) for i in range(width))
            rows[table] = store.conn.execute(f"SELECT * FROM main.{table} ORDER BY {order}").fetchall()
        assert rows["kpi_facts"] and rows["kpi_responses"] and rows["kpi_status_changes"]
        return result, rows

    seek, seek_rows = rebuilt(2.0)  # never scan
    scan, scan_rows = rebuilt(0.0)  # always scan
    assert seek_rows == scan_rows
    assert seek == scan


def test_unknown_dimension_and_empty_period(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown breakdown"):
        run(store, date(2026, 2, 1), date(2026, 3, 1), by="planet")
    with pytest.raises(ValueError, match="empty"):
        run(store, date(2026, 2, 1), date(2026, 2, 1))


def test_sharded_workers_give_the_same_result(tmp_path: Path) -> None:
    """Partials of ticket slices computed in worker processes merge into exactly the in-process result."""
    s = generated(tmp_path / "shards.db", tickets=400, seed=5, days=90)
    s.conn.execute("INSERT INTO ratings (source, id, kind, score, score_1_5, created_at) "
                   "VALUES ('survey', 'n1', 'nps', 10, 5, ?)", [END - 86400])
    p = Period.from_dates(date(2026, 2, 1), date(2026, 4, 21), TZ)
    args = {"kpi": KPI, "sla": SLA, "costs": COSTS, "since": p.since, "until": p.until, "now": END, "by": "month"}
    single = compute(s.conn, workers=1, **args)
    assert compute(s.conn, workers=3, **args) == single
    assert single["kpis"]["nps"] == 100.0  # the ticketless survey row is counted once


@pytest.mark.parametrize("script", ["import sys; sys.stderr.write('worker boom'); sys.exit(3)",
                                    "import sys; sys.stdin.buffer.read()"])
def test_a_failed_shard_worker_is_an_error_not_a_partial_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 script: str) -> None:
    """A worker that dies, or exits 0 without its partials, fails the computation (never a silent half)."""
    from kpi_engine import parallel

    s = generated(tmp_path / "fail.db", tickets=60, seed=2, days=30)
    monkeypatch.setattr(parallel, "_shard_command", lambda: [sys.executable, "-c", script])
    p = Period.from_dates(date(2026, 3, 25), date(2026, 4, 21), TZ)
    with pytest.raises(RuntimeError, match="KPI shard worker failed") as err:
        compute(s.conn, kpi=KPI, sla=SLA, costs=COSTS, since=p.since, until=p.until, now=END, workers=2)
    if "boom" in script:
        assert "worker boom" in str(err.value)
