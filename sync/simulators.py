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
from connectors.plugin import SIM_EMAIL, SIM_TOKEN, ConnectorPlugin
from connectors.plugin import SIM_KEY as SIM_FRESHDESK_KEY
from connectors.sim.base import SimServer, Simulator
from sync.registry import plugins

__all__ = ["SIM_EMAIL", "SIM_FRESHDESK_KEY", "SIM_TOKEN", "RunningSim", "build_simulator", "simulator_kinds",
           "start_simulator"]

#: Slack is not a helpdesk: its webhook simulator is the one built-in simulator outside the plugins.
SLACK = "slack"
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


def simulator_kinds() -> list[str]:
    """Every kind ``deskpulse sim`` can start: the installed plugins that ship a simulator, and Slack."""
    return [kind for kind, plugin in plugins().items() if plugin.has_simulator] + [SLACK]


def _simulated(kind: str) -> ConnectorPlugin | None:
    """The plugin whose simulator serves ``kind`` (None for Slack); UsageError listing the kinds otherwise."""
    plugin = plugins().get(kind)
    if kind != SLACK and (plugin is None or not plugin.has_simulator):
        raise UsageError(f"unknown simulator '{kind}' (installed: {', '.join(simulator_kinds())})")
    return plugin


def build_simulator(kind: str, world: Any, *, speedup: int = 1) -> tuple[Simulator, dict[str, Any]]:
    """The simulator for ``kind`` over its own copy of ``world``, and the source settings that reach it."""
    plugin = _simulated(kind)
    if plugin is None:
        from connectors.sim.slack import SlackSim

        return SlackSim(webhook_path=SIM_SLACK_WEBHOOK), {}
    return plugin.build_simulator(copy.deepcopy(world) if world is not None else None, speedup=speedup)


def start_simulator(kind: str, *, port: int = 0, tickets: int = 3000, seed: int = 7, world: Any = None,
                    speedup: int = 1, name: str | None = None) -> RunningSim:
    _simulated(kind)
    if world is None and kind != SLACK:
        world = make_world(tickets, seed)
    sim, source = build_simulator(kind, world, speedup=speedup)
    server = SimServer(sim, port).start()
    if kind == SLACK:
        source = {"webhook_url": server.url + SIM_SLACK_WEBHOOK}
    else:
        source = {"name": name or f"sim-{kind}", **source, "base_url": server.url}
    return RunningSim(kind, sim, server, source)
