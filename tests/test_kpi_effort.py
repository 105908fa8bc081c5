"""Agent handle time (only from time entries) and CDI band counts (from cdi_history)."""

from __future__ import annotations

from tests.test_kpi_fixtures import Desk, h


def test_aht_from_time_entries_only() -> None:
    d = Desk()
    d.ticket("1", h(0), status="solved", solved=h(5))
    d.ticket("2", h(0), status="solved", solved=h(6))
    d.ticket("3", h(0), status="solved", solved=h(7))  # no tracked time: not in the denominator
    d.ticket("4", h(0), status="open")  # not solved: its entry is ignored
    d.time_entry("1", 600, h(1))
    d.time_entry("1", 300, h(2))
    d.time_entry("2", 1200, h(3))
    d.time_entry("4", 9999, h(3))
    k = d.kpis(h(0), h(24))["kpis"]
    assert k["aht_mean_s"] == 1050.0  # (600 + 300 + 1200) / 2 tickets with tracked time


def test_aht_null_without_effort_data() -> None:
    d = Desk()
    d.ticket("1", h(0), status="solved", solved=h(5))
    assert d.kpis(h(0), h(24))["kpis"]["aht_mean_s"] is None


def test_cdi_bands_from_the_latest_day() -> None:
    d = Desk()
    assert d.kpis(h(0), h(24))["kpis"]["cdi_red"] is None  # empty cdi_history
    rows = [("2026-03-01", "a", "red"), ("2026-03-01", "b", "red"),
            ("2026-03-02", "a", "red"), ("2026-03-02", "b", "yellow"), ("2026-03-02", "c", "green"),
            ("2026-03-02", "d", "green")]
    d.store.conn.executemany("INSERT INTO cdi_history (day, account, source, band, cdi) VALUES (?, ?, 'zd', ?, 50)",
                             rows)
    k = d.kpis(h(0), h(24))["kpis"]
    assert (k["cdi_red"], k["cdi_yellow"], k["cdi_green"]) == (1, 1, 2)
