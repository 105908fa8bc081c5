"""Weekly snapshots: stored per (week, scope), reused unless refreshed, loadable for trends."""

from __future__ import annotations

import pytest

from config.settings import CostSettings, KpiSettings, SlaSettings
from kpi_engine.snapshots import current_and_last_week, load_snapshots, snapshot_week, week_period
from tests.test_kpi_fixtures import DAY, Desk, h

SETTINGS = {"kpi": KpiSettings(), "sla": SlaSettings(), "costs": CostSettings()}


def test_snapshot_stores_reuses_and_refreshes() -> None:
    d = Desk()
    d.ticket("1", h(1))  # Monday 2026-03-02 = ISO week 2026-W10
    conn = d.store.conn
    first = snapshot_week(conn, week="2026-W10", now=h(10 * 24), **SETTINGS)
    assert first["period"] == {"since": "2026-03-02", "until": "2026-03-09", "timezone": "UTC"}
    assert first["kpis"]["tickets_created"] == 1
    d.ticket("2", h(2))
    # a complete week is stored: the digest reads it back without recomputing
    assert snapshot_week(conn, week="2026-W10", now=h(11 * 24), **SETTINGS)["kpis"]["tickets_created"] == 1
    # refresh recomputes and replaces it
    assert snapshot_week(conn, week="2026-W10", now=h(11 * 24), refresh=True, **SETTINGS)["kpis"][
        "tickets_created"] == 2
    assert load_snapshots(conn, ["2026-W10", "2026-W09"]) == {"2026-W10": snapshot_week(
        conn, week="2026-W10", **SETTINGS)["kpis"]}
    assert conn.execute("SELECT since, until FROM kpi_snapshots WHERE period = '2026-W10'").fetchone() == (
        week_period("2026-W10", "UTC").since, week_period("2026-W10", "UTC").until)


def test_incomplete_week_is_stored_only_on_refresh() -> None:
    d = Desk()
    d.ticket("1", h(1))
    snapshot_week(d.store.conn, week="2026-W10", now=h(3 * 24), **SETTINGS)
    assert load_snapshots(d.store.conn, ["2026-W10"]) == {}
    snapshot_week(d.store.conn, week="2026-W10", now=h(3 * 24), refresh=True, source="zd", **SETTINGS)
    assert load_snapshots(d.store.conn, ["2026-W10"], scope="zd")["2026-W10"]["tickets_created"] == 1


def test_weeks() -> None:
    assert current_and_last_week(h(3 * 24), "UTC") == ["2026-W09", "2026-W10"]
    assert week_period("2026-W01", "Europe/Berlin").as_json()["since"] == "2025-12-29"
    assert week_period("2026-W10", "UTC").until - week_period("2026-W10", "UTC").since == 7 * DAY
    with pytest.raises(ValueError, match="ISO week"):
        week_period("2026-47", "UTC")
