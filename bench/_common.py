"""Shared by the ingest and memory benchmarks: a vendor simulator running in its own process.

Why another process: the simulator renders every page in Python; in the sync's own
process it would share the GIL with the engine and the measured figure would be
half simulator. In a child process it costs what a remote API costs the sync: wall
time spent waiting on a socket. The child is started with ``spawn`` so it does not
inherit the parent's memory (the memory benchmark measures the sync, not the world).

Simulators run unthrottled: no per-minute budgets, so the benchmark measures the
ingest path, not the vendor's rate limits (``bench_pacing.py`` measures those).
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sync.simulators import SIM_EMAIL, SIM_FRESHDESK_KEY, SIM_TOKEN  # noqa: E402

WORLD_NOW = 1_790_000_000  # fixed, so two simulator processes with one seed serve byte-identical pages
UNLIMITED = 10**9


def _sim_and_source(kind: str, world: Any) -> tuple[Any, dict[str, Any]]:
    """The simulator for ``kind`` without rate limits, and the source settings that reach it."""
    if kind == "zendesk":
        from connectors.sim.zendesk import ZendeskSim

        sim = ZendeskSim(world, email=SIM_EMAIL, token=SIM_TOKEN, export_limit_per_minute=None,
                         account_limit_per_minute=UNLIMITED)
        return sim, {"kind": "zendesk", "email": SIM_EMAIL, "api_token": SIM_TOKEN,
                     "export_requests_per_minute": UNLIMITED}
    if kind == "freshdesk":
        from connectors.sim.freshdesk import FreshdeskSim

        return FreshdeskSim(world, api_key=SIM_FRESHDESK_KEY), {"kind": "freshdesk", "api_key": SIM_FRESHDESK_KEY}
    if kind == "intercom":
        from connectors.sim.intercom import IntercomSim

        return IntercomSim(world, token=SIM_TOKEN), {"kind": "intercom", "access_token": SIM_TOKEN, "admin_id": "1"}
    raise SystemExit(f"unknown helpdesk kind {kind!r}")


def _serve(kind: str, tickets: int, seed: int, messages: bool, conn: Connection) -> None:
    """Child process: generate the world, serve it on loopback, answer 'stats'/'stop' on the pipe."""
    from connectors.sim.base import SimServer
    from connectors.sim.world import generate_world

    started = time.perf_counter()
    world = generate_world(seed=seed, tickets=tickets, now=WORLD_NOW, messages=messages)
    sim, source = _sim_and_source(kind, world)
    server = SimServer(sim, 0).start()
    conn.send({"url": server.url, "source": source, "generate_s": time.perf_counter() - started})
    while True:
        command = conn.recv()
        if command == "stats":
            with sim.lock:
                conn.send({"served": dict(sim.served), "statuses": dict(sim.statuses)})
        elif command == "stop":
            server.stop()
            conn.send("stopped")
            return


@dataclass
class SimProcess:
    """A simulator in a child process; ``source`` is a ``[[sources]]`` entry pointing at it."""

    kind: str
    process: mp.process.BaseProcess
    conn: Connection
    url: str
    source: dict[str, Any]
    generate_s: float

    @classmethod
    def start(cls, kind: str, tickets: int, *, seed: int = 7, messages: bool = True,
              name: str | None = None) -> SimProcess:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        process = ctx.Process(target=_serve, args=(kind, tickets, seed, messages, child), daemon=True,
                              name=f"sim-{kind}")
        process.start()
        info = parent.recv()
        source = {"name": name or f"bench-{kind}", **info["source"], "base_url": info["url"]}
        return cls(kind, process, parent, info["url"], source, info["generate_s"])

    def stats(self) -> dict[str, Any]:
        self.conn.send("stats")
        return self.conn.recv()

    def stop(self) -> None:
        if self.process.is_alive():
            try:
                self.conn.send("stop")
                self.conn.recv()
            except (EOFError, OSError):
                pass
            self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)

    def __enter__(self) -> SimProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def fmt_rate(count: float, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s" if seconds > 0 else "n/a"
