"""Zendesk account features: the Time Tracking field feeds handle time; CSAT switched off is not a failure."""

from __future__ import annotations

import json
from pathlib import Path

from config.settings import Settings
from connectors.sim.base import SimServer
from connectors.sim.world import generate_world
from kpi_engine.engine import compute
from sync.engine import SyncEngine
from sync.simulators import build_simulator
from sync.store import Store


def sync(tmp_path: Path, world, **extra) -> Store:
    sim, source = build_simulator("zendesk", world, speedup=1000)
    with SimServer(sim) as server:
        settings = Settings(sources=[{**source, "name": "zd", "base_url": server.url, **extra}])
        store = Store(tmp_path / f"s{len(extra)}.db")
        assert all(r.ok for r in SyncEngine(store, settings).sync_all())
    return store


def test_configured_time_field_feeds_aht(tmp_path: Path) -> None:
    world = generate_world(seed=4, tickets=300)
    with sync(tmp_path, world, time_tracking_field="360900") as store:
        entries = dict(store.conn.execute("SELECT ticket_id, seconds FROM time_entries").fetchall())
        fields = {r[0]: json.loads(r[1]).get("360900") for r in store.conn.execute(
            "SELECT id, custom_fields FROM tickets")}
        expected = {tid: int(float(v)) for tid, v in fields.items() if v not in (None, "") and float(v) > 0}
        assert entries == expected and len(expected) > 50
        result = compute(store.conn, kpi=Settings().kpi, sla=Settings().sla, costs=Settings().costs,
                         since=world.now - 365 * 86400, until=world.now + 1, now=world.now)
        assert result["kpis"]["aht_mean_s"] is not None
    with sync(tmp_path, world) as store:  # not configured: no effort data is invented
        assert store.scalar("SELECT count(*) FROM time_entries") == 0


def test_ratings_forbidden_means_csat_is_off_not_a_failed_source(tmp_path: Path) -> None:
    """An account without customer satisfaction answers 403 on /satisfaction_ratings: skip it, sync the rest."""
    from connectors.sim.base import SimResponse

    world = generate_world(seed=4, tickets=120)
    sim, source = build_simulator("zendesk", world, speedup=1000)
    sim.route("GET", r"/api/v2/satisfaction_ratings(\.json)?",
              lambda req: SimResponse.json({"error": "Forbidden", "description": "CSAT is not enabled"}, 403))
    sim.routes.insert(0, sim.routes.pop())  # ahead of the simulator's own ratings route
    with SimServer(sim) as server:
        settings = Settings(sources=[{**source, "name": "zd", "base_url": server.url}])
        with Store(tmp_path / "s.db") as store:
            reports = SyncEngine(store, settings).sync_all()
            assert reports[0].ok and store.scalar("SELECT count(*) FROM tickets") == 120
            assert store.scalar("SELECT status FROM sync_state WHERE stream = 'satisfaction_ratings'") == "ok"
            # and the KPIs say so: csat_pct is null with a reason, not a silent null (nor 0%)
            result = compute(store.conn, kpi=Settings().kpi, sla=Settings().sla, costs=Settings().costs,
                             since=world.now - 365 * 86400, until=world.now + 1, now=world.now)
            assert result["kpis"]["csat_pct"] is None
            assert "CSAT not available through this API" in result["reasons"]["csat_pct"]
            assert "HTTP 403" in result["reasons"]["csat_pct"]
