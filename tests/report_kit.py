"""A store for the report tests: a generated world with NPS and CES answers, and a config with SLA targets and a
business-hours schedule, so every chart of the report has data to draw."""

from __future__ import annotations

import random
from pathlib import Path

from connectors.sim.world import generate_world
from sync.store import Store
from tests.world_loader import load_world

NOW = 1_790_000_000  # 2026-09-21 14:13 UTC: a fixed clock, so the CLI and the report see the same "now"
SINCE, UNTIL = "2026-06-29", "2026-09-21"  # twelve whole ISO weeks, all before NOW (no moving snapshot)
CONFIG = """
[kpi]
timezone = "Europe/Berlin"

[kpi.business_hours]
mon = "09:00-17:00"
tue = "09:00-17:00"
wed = "09:00-17:00"
thu = "09:00-17:00"
fri = "09:00-17:00"

[sla]
first_reply = { 3 = 60, 2 = 240, 1 = 480 }
resolution = { 3 = 480, 2 = 1440, 1 = 4320 }
business_hours = false
"""


def make_store(tmp_path: Path, *, tickets: int = 1500, seed: int = 11) -> tuple[Path, Path]:
    """(store path, config path) of a loaded world with survey answers."""
    db, config = tmp_path / "report.db", tmp_path / "deskpulse.toml"
    config.write_text(CONFIG, encoding="utf-8")
    world = generate_world(seed=seed, tickets=tickets, now=NOW, days=400)
    rng = random.Random(seed)
    with Store(db) as store:
        load_world(store, world, source="zd")
        people = [p for p in world.people if p.role == "customer"]
        rows = []
        for i in range(400):
            kind = "nps" if i % 2 else "ces"
            score = rng.randint(0, 10) if kind == "nps" else rng.randint(1, 7)
            low, high = (0, 10) if kind == "nps" else (1, 7)
            rows.append({"source": "survey", "id": f"{kind}-{i}", "kind": kind, "score_raw": str(score),
                         "score": float(score), "score_1_5": round(1 + 4 * (score - low) / (high - low), 3),
                         "requester_id": str(rng.choice(people).id), "created_at": NOW - rng.randint(1, 90) * 86400})
        with store.transaction():
            store.upsert("ratings", rows)
    return db, config
