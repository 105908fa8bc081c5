"""Write-back end to end, per helpdesk, through its real connector and simulator on loopback.

sync → distress → plan → apply → sync → plan: the second plan is empty (self-writes never loop),
the simulator saw exactly the planned writes, and every tag a ticket had before is still there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from config.settings import Settings
from connectors.sim.base import SimServer
from connectors.sim.world import generate_world
from kpi_engine.distress import refresh
from sync.connector_pool import ConnectorPool
from sync.engine import SyncEngine
from sync.simulators import build_simulator
from sync.store import Store
from sync.writeback import apply, plan

FIELDS = {"zendesk": "360002", "freshdesk": "cf_deskpulse_cdi", "intercom": "deskpulse_cdi"}


@pytest.fixture(scope="module")
def world():
    return generate_world(seed=5, tickets=500)


@pytest.mark.parametrize("kind", ["zendesk", "freshdesk", "intercom"])
def test_apply_then_sync_yields_no_new_writes_and_keeps_tags(tmp_path: Path, world, kind: str) -> None:
    sim, source = build_simulator(kind, world, speedup=1000)
    with SimServer(sim) as server:
        settings = Settings(sources=[{**source, "name": "src", "base_url": server.url,
                                      "distress_field": FIELDS[kind]}],
                            writeback={"max_writes_per_run": 10_000})
        with Store(tmp_path / "s.db") as store:
            assert all(r.ok for r in SyncEngine(store, settings).sync_all())
            now = int(world.now)
            refresh(store.conn, settings=settings.distress, as_of=now, history_days=8)
            before = {r["id"]: json.loads(r["tags"] or "[]") for r in store.query("SELECT id, tags FROM tickets")}
            first = plan(store, settings, now=now)
            tagged = {w.ticket_id for w in first.writes if w.action == "add_tag"}
            assert tagged, "the simulated world has distressed accounts with open tickets"
            pool = ConnectorPool(settings)
            try:
                report = apply(store, settings, first, pool, now=lambda: now)
            finally:
                pool.close()
            assert report.applied == len(first.writes) and report.failed == 0
            assert all(r.ok for r in SyncEngine(store, settings).sync_all())
            second = plan(store, settings, now=now)
            assert second.writes == [], [w.key for w in second.writes][:5]
            after = {r["id"]: json.loads(r["tags"] or "[]") for r in store.query("SELECT id, tags FROM tickets")}
            for tid in tagged:
                assert "deskpulse_distress" in after[tid]
                assert set(before[tid]) <= set(after[tid]), f"ticket {tid} lost tags"
            fields = store.query("SELECT custom_fields FROM tickets WHERE id = ?", [sorted(tagged)[0]])
            assert json.loads(fields[0]["custom_fields"])[FIELDS[kind]].split(" |")[0].isdigit()
