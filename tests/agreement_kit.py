"""One generated world synced through all three simulators into ONE store, and reference values from KPIS.md.

Why one shared store: the cross-vendor test needs the three sources side by side, and the agreement tests
per vendor need the same rows; syncing each simulator once per session (lazily, only the vendors a test
module asks for) keeps the two test modules at one sync per vendor in total.

Why reference values written here rather than taken from ``kpi_engine``: the point of these tests is to check
the engine's numbers against something it did not compute. The functions below restate KPIS.md's rules over
the store in plain Python (first agent reply, status transitions, percentiles), so an engine bug and a
reference bug would have to coincide to go unnoticed. They read only columns the connectors fill from the
vendor's own payloads.

The clock is fake (``_Clock``): simulators and connectors share it, so rate-limit waits and the vendors'
"recent changes are not exported yet" windows never cost real time.
"""

from __future__ import annotations

import functools
import json
import math
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from config.settings import CostSettings, KpiSettings, Settings, SlaSettings
from connectors.base import Connector
from connectors.sim.base import SimServer, serve
from connectors.sim.model import World
from connectors.sim.world import generate_world
from kpi_engine.engine import compute
from sync.engine import SyncEngine
from sync.registry import build_connector, plugin
from sync.simulators import build_simulator
from sync.store import Store
from tests.fake_time import FakeTime

DAY = 86400
NOW = 1_790_000_000  # the world's "now", fixed: every run talks about the same tickets
SEED = 7
TICKETS = 600
HISTORY_DAYS = 365
SPEEDUP = 1000  # vendor rate limits scaled up; pacing has its own tests
KINDS = ("zendesk", "freshdesk", "intercom")
SOURCES = {kind: f"agree-{kind}" for kind in KINDS}
PERIOD = (NOW - 90 * DAY, NOW)  # the fixed reporting period: the 90 days before the world's now
SOLVED = ("solved", "closed")
UNSOLVED = ("new", "open", "pending", "on_hold")
ESCALATION_GROUP = "Tier 2"  # the generated world's escalation group (connectors/sim/world_text.py)
KPI = KpiSettings(escalation={"groups": [ESCALATION_GROUP], "tags": ["escalated"]})
#: The same, with the schedule the Zendesk simulator's business minutes count (Mon-Fri 09:00-17:00 UTC).
BUSINESS_KPI = KpiSettings(timezone="UTC", escalation={"groups": [ESCALATION_GROUP], "tags": ["escalated"]},
                           business_hours={d: "09:00-17:00" for d in ("mon", "tue", "wed", "thu", "fri")})

#: SQL: a ticket counted by KPIs at all (KPIS.md: deleted, spam and merged-away tickets are excluded).
LIVE = "t.status IS NOT 'deleted' AND COALESCE(t.is_spam, 0) = 0 AND COALESCE(t.is_merged, 0) = 0"


@functools.lru_cache(maxsize=1)
def agreement_world() -> World:
    """The seeded history every simulator renders (cached; ``build_simulator`` deep-copies it)."""
    return generate_world(seed=SEED, tickets=TICKETS, now=NOW, days=HISTORY_DAYS)


_Clock = FakeTime  # the one fake clock (tests/fake_time.py)


def _build_http(kind: str) -> Any:
    return plugin(kind).load_http()


class SharedStore:
    """The store file and which vendors have been synced into it (each one once per session)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.synced: set[str] = set()
        self._lock = threading.Lock()

    def ensure(self, kinds: Iterable[str]) -> None:
        """Sync the vendors in ``kinds`` not synced yet, as sources of one configuration, in one engine run."""
        with self._lock:
            missing = [k for k in KINDS if k in set(kinds) and k not in self.synced]
            if not missing:
                return
            fake = _Clock(NOW + 600)  # past Zendesk's one-minute export exclusion and Intercom's search lag
            servers: list[SimServer] = []
            sources = []
            try:
                for kind in missing:
                    sim, source = build_simulator(kind, agreement_world(), speedup=SPEEDUP)
                    sim.clock = fake.clock
                    server = serve(sim)
                    servers.append(server)
                    sources.append({**source, "name": SOURCES[kind], "base_url": server.url})
                settings = Settings(sources=sources, kpi=KPI)

                def factory(source: Any, settings: Settings) -> Connector:
                    http = _build_http(source.kind)(source, clock=fake.clock, sleep=fake.sleep)
                    return build_connector(source, settings, http=http, clock=fake.clock)

                with Store(self.path) as store:
                    reports = SyncEngine(store, settings, connector_factory=factory, clock=fake.clock).sync_all()
                for report in reports:
                    problems = [report.error] + [f"{s.stream}: {s.error}" for s in report.streams if s.error]
                    assert report.ok, f"sync of {report.source} failed: {[p for p in problems if p]}"
                self.synced.update(missing)
            finally:
                for server in servers:
                    # shutdown() waits for serve_forever's next 0.5 s poll: let that happen off the test's time
                    threading.Thread(target=server.stop, name="stop-sim", daemon=True).start()

    def connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path)


_SHARED: dict[str, SharedStore] = {}


def shared_store(directory: Path, kinds: Iterable[str]) -> SharedStore:
    """The session's shared store (created under ``directory`` on first use), with ``kinds`` synced."""
    store = _SHARED.get("store")
    if store is None:
        store = _SHARED["store"] = SharedStore(directory / "agreement.db")
    store.ensure(kinds)
    return store


def kpis(conn: sqlite3.Connection, kind: str, since: int = PERIOD[0], until: int = PERIOD[1], *,
         kpi: KpiSettings = KPI) -> dict[str, Any]:
    """The engine's catalog for one vendor's source over [since, until)."""
    result = compute(conn, kpi=kpi, sla=SlaSettings(), costs=CostSettings(), since=since, until=until,
                     source=SOURCES[kind], now=NOW)
    return result["kpis"]


# -- reference values (KPIS.md restated over the store) ------------------------------------------------------
@dataclass
class TicketRow:
    id: str
    created: int
    status: str
    solved_at: int | None
    metrics: dict[str, Any]
    live: bool


def tickets(conn: sqlite3.Connection, kind: str) -> dict[str, TicketRow]:
    """Every stored ticket of the vendor, with its vendor metrics parsed and whether KPIs count it."""
    rows = conn.execute(f"""SELECT t.id, t.created_at, t.status, t.solved_at, t.vendor_metrics, {LIVE}
        FROM tickets t WHERE t.source = ?""", (SOURCES[kind],)).fetchall()
    return {i: TicketRow(i, c, s, sa, json.loads(vm) if vm else {}, bool(live)) for i, c, s, sa, vm, live in rows}


def first_reply_at(conn: sqlite3.Connection, kind: str) -> dict[str, int]:
    """Per live ticket with a reply: when the first agent reply was (KPIS.md "Agent reply").

    A reply is a public message by an agent; bot and system messages never are. A ticket an agent created
    with a public first comment (that comment is at the creation second and comes first) does not count
    that comment: the next agent reply is the first reply.
    """
    rows = conn.execute(f"""SELECT m.ticket_id, m.author_role, m.created_at, t.created_at
        FROM messages m JOIN tickets t ON t.source = m.source AND t.id = m.ticket_id
        WHERE m.source = ? AND m.public = 1 AND m.author_role IN ('agent', 'customer') AND {LIVE}
        ORDER BY m.ticket_id, m.created_at, m.kind IS NOT 'description', m.id""", (SOURCES[kind],)).fetchall()
    out: dict[str, int] = {}
    first_seen: set[str] = set()
    for tid, role, at, created in rows:
        opening = tid not in first_seen
        first_seen.add(tid)
        if opening and role == "agent" and at <= created:
            continue  # the agent's own opening comment is the description, not a reply
        if role == "agent" and tid not in out:
            out[tid] = at
    return out


@dataclass
class History:
    """A ticket's status transitions: into the solved set (solved/closed) and back out of it."""

    solves: list[int] = field(default_factory=list)  # times of transitions unsolved -> solved/closed
    reopens: int = 0

    @property
    def first_solve(self) -> int | None:
        return min(self.solves) if self.solves else None

    @property
    def latest_solve(self) -> int | None:
        return max(self.solves) if self.solves else None


def histories(conn: sqlite3.Connection, kind: str) -> dict[str, History]:
    """Status history per ticket from ``ticket_events`` (a solved -> closed step is not a new solve)."""
    out: dict[str, History] = {}
    for tid, at, old, new in conn.execute(
            "SELECT ticket_id, created_at, old_value, new_value FROM ticket_events "
            "WHERE source = ? AND field = 'status' ORDER BY ticket_id, created_at, id", (SOURCES[kind],)):
        h = out.setdefault(tid, History())
        if new in SOLVED and old not in SOLVED:
            h.solves.append(at)
        elif old in SOLVED and new in UNSOLVED:
            h.reopens += 1
    return out


def epoch(value: Any) -> int | None:
    """A vendor timestamp (ISO 8601 with ``Z``, or unix seconds) as unix seconds."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return int(value)
    return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp())


def freshdesk_latest_solve(stats: dict[str, Any]) -> int | None:
    """Freshdesk's latest transition to solved/closed as its ``stats`` show it.

    ``resolved_at``/``closed_at`` are the latest times the ticket entered each status; a close after a resolve
    with no reopen in between is the auto-close of a solved ticket, not a new solve (KPIS.md: the latest
    *transition* to solved/closed).
    """
    resolved, closed, reopened = (epoch(stats.get(k)) for k in ("resolved_at", "closed_at", "reopened_at"))
    if resolved is not None and closed is not None and closed > resolved and (reopened is None or reopened < resolved):
        return resolved
    known = [t for t in (resolved, closed) if t is not None]
    return max(known) if known else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """numpy's default (linear interpolation between closest ranks), as KPIS.md specifies."""
    ordered = sorted(values)
    if not ordered:
        return None
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summary(values: Sequence[float]) -> dict[str, float | None]:
    """median / p90 / mean rounded as the catalog reports durations (0.1 s)."""
    if not values:
        return {"median": None, "p90": None, "mean": None}
    return {"median": round(percentile(values, 50) or 0.0, 1), "p90": round(percentile(values, 90) or 0.0, 1),
            "mean": round(sum(values) / len(values), 1)}


def in_period(at: int | None, period: tuple[int, int] = PERIOD) -> bool:
    return at is not None and period[0] <= at < period[1]
