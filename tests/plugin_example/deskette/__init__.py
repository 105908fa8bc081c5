"""Deskette, an imaginary helpdesk, as a deskpulse connector plugin: the whole of what a plugin declares.

``PLUGIN`` is what the ``deskpulse.connectors`` entry point ``deskette`` (pyproject.toml) points at. Names
are lazy ``"module:attr"`` strings, so discovering the installed helpdesks imports only this module.
"""

from __future__ import annotations

from connectors.plugin import ConnectorPlugin, SimulatorSetup
from deskette.settings import DesketteSource

#: The key the Deskette simulator accepts (not a secret: it only opens a simulator on 127.0.0.1).
SIM_KEY = "deskette-sim-key-not-a-secret"


def simulator_setup(speedup: int) -> SimulatorSetup:
    """The simulator's options and the ``[[sources]]`` settings that reach it (Deskette has no rate limit)."""
    return SimulatorSetup(options={"api_key": SIM_KEY}, source={"api_key": SIM_KEY})


PLUGIN = ConnectorPlugin(
    kind="deskette",
    settings=DesketteSource,
    connector="deskette.connector:DesketteConnector",
    http="deskette.connector:build_http",
    simulator="deskette.sim:DesketteSim",
    simulator_setup=simulator_setup,
    writes=True,
    contract="deskette.contract:CONTRACT",
    description="Deskette (example plugin)",
    # Deskette's priorities -> deskpulse severities 1..3: the default of [kpi.severity_map.deskette], so its
    # tickets get real severities without any configuration
    severity_map={"urgent": 3, "high": 2, "normal": 1, "low": 1},
)
