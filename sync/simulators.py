"""Start the built-in simulators on loopback and say how to point deskpulse at them.

Used by ``deskpulse sim`` (one simulator in the foreground) and ``deskpulse
demo`` (all of them, then a sync). The demo runs the simulators with the
vendors' per-endpoint limits scaled up 60x so it finishes in seconds; the
limits are still enforced, and the connector still paces itself to them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from config.errors import UsageError
from connectors.sim.base import SimServer, Simulator
from sync.registry import SIMULATORS, load

SIM_EMAIL = "demo@deskpulse.invalid"
SIM_TOKEN = "sim-token-not-a-secret"
SIM_FRESHDESK_KEY = "sim-key-not-a-secret"
SIM_SLACK_WEBHOOK = "/services/TDEMO/BDEMO/not-a-secret"
DEMO_SPEEDUP = 60


@dataclass
class RunningSim:
    kind: str
    sim: Simulator
    server: SimServer
    source: dict[str, Any] = field(default_factory=dict)  # a [[sources]] entry that points at it

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def config_lines(self) -> list[str]:
        return [f"{key} = {value!r}" for key, value in self.source.items()]


def make_world(tickets: int, seed: int) -> Any:
    from connectors.sim.world import generate_world

    return generate_world(seed=seed, tickets=tickets)


def build_simulator(kind: str, world: Any, *, speedup: int = 1) -> tuple[Simulator, dict[str, Any]]:
    """The simulator for ``kind`` over its own copy of ``world``, and the source settings that reach it."""
    if kind not in SIMULATORS:
        raise UsageError(f"unknown simulator '{kind}' (choose from: {', '.join(SIMULATORS)})")
    cls = load(SIMULATORS[kind])
    world = copy.deepcopy(world) if world is not None else None
    if kind == "zendesk":
        sim = cls(world, email=SIM_EMAIL, token=SIM_TOKEN, export_limit_per_minute=10 * speedup,
                  account_limit_per_minute=700 * speedup)
        source = {"kind": "zendesk", "email": SIM_EMAIL, "api_token": SIM_TOKEN,
                  "export_requests_per_minute": 10 * speedup}
    elif kind == "freshdesk":
        sim = cls(world, api_key=SIM_FRESHDESK_KEY, calls_per_minute=400 * speedup)
        source = {"kind": "freshdesk", "api_key": SIM_FRESHDESK_KEY}
    elif kind == "intercom":
        sim = cls(world, token=SIM_TOKEN, limit_per_window=167 * speedup)
        source = {"kind": "intercom", "access_token": SIM_TOKEN, "admin_id": "1"}
    else:
        sim = cls(webhook_path=SIM_SLACK_WEBHOOK)
        source = {}
    return sim, source


def start_simulator(kind: str, *, port: int = 0, tickets: int = 3000, seed: int = 7, world: Any = None,
                    speedup: int = 1, name: str | None = None) -> RunningSim:
    if kind not in SIMULATORS:
        raise UsageError(f"unknown simulator '{kind}' (choose from: {', '.join(SIMULATORS)})")
    if world is None and kind != "slack":
        world = make_world(tickets, seed)
    sim, source = build_simulator(kind, world, speedup=speedup)
    server = SimServer(sim, port).start()
    if kind == "slack":
        source = {"webhook_url": server.url + SIM_SLACK_WEBHOOK}
    else:
        source = {"name": name or f"sim-{kind}", **source, "base_url": server.url}
    return RunningSim(kind, sim, server, source)
