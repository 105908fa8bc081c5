"""A stop (the daemon's SIGTERM) ends a write-back write's long Retry-After wait; the write is due again next run."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from config.settings import Settings
from connectors.errors import Stopped
from connectors.sim.base import Fault, SimServer
from connectors.sim.world import generate_world
from sync.connector_pool import ConnectorPool
from sync.simulators import build_simulator
from sync.store import Store
from sync.writeback import Plan, PlannedWrite, apply


def test_stop_ends_a_write_waiting_out_retry_after_and_leaves_it_due(tmp_path: Path) -> None:
    sim, source = build_simulator("zendesk", generate_world(seed=5, tickets=30), speedup=1000)
    sim.inject(Fault("429", count=1_000_000, path="/api/v2/tickets/", retry_after=86400))  # capped at 300 s
    write = PlannedWrite(key="zd:1:add_tag:deskpulse_distress", source="zd", ticket_id="1", action="add_tag",
                         value="deskpulse_distress", reason="test")
    stop = threading.Event()
    outcome: list[Any] = []
    with SimServer(sim) as server:
        settings = Settings.model_validate({"sources": [{**source, "name": "zd", "base_url": server.url}]})
        pool = ConnectorPool(settings, stop=stop)
        with Store(tmp_path / "d.db") as store:

            def run() -> None:
                try:
                    outcome.append(apply(store, settings, Plan(writes=[write]), pool))
                except Stopped as exc:
                    outcome.append(exc)

            thread = threading.Thread(target=run, daemon=True)
            thread.start()
            limit = time.monotonic() + 30
            while sim.statuses[429] < 1 and time.monotonic() < limit:  # until the write met its 429
                time.sleep(0.02)
            time.sleep(0.2)  # into the Retry-After wait
            stop.set()
            thread.join(30)  # a bound on "it returned", not a speed claim: the wait alone is 300 s
            pool.close()
            assert not thread.is_alive(), "the write sat out its Retry-After despite the stop"
            row = store.conn.execute("SELECT status, attempts, last_error FROM outbox WHERE key = ?",
                                     [write.key]).fetchone()
    assert isinstance(outcome[0], Stopped), outcome
    assert row[0] == "failed" and row[1] == 0 and "stopped" in row[2]
    assert sim.statuses[429] >= 1

