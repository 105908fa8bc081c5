"""Which connector and simulator serve each ``kind``: imported lazily by dotted path.

Lazy strings keep the connectors independent of each other (none imports
another) and keep start-up fast: a Zendesk-only install never imports the
Intercom module.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from config.errors import ConfigError
from config.settings import Settings
from connectors.base import Connector

CONNECTORS: dict[str, str] = {
    "zendesk": "connectors.zendesk:ZendeskConnector",
    "freshdesk": "connectors.freshdesk:FreshdeskConnector",
    "intercom": "connectors.intercom:IntercomConnector",
}

SIMULATORS: dict[str, str] = {
    "zendesk": "connectors.sim.zendesk:ZendeskSim",
    "freshdesk": "connectors.sim.freshdesk:FreshdeskSim",
    "intercom": "connectors.sim.intercom:IntercomSim",
    "slack": "connectors.sim.slack:SlackSim",
}


def load(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def build_connector(source: Any, settings: Settings, **kwargs: Any) -> Connector:
    """Instantiate the connector for ``source.kind``, passing only the options its constructor takes."""
    target = CONNECTORS.get(source.kind)
    if target is None:
        raise ConfigError(f"source {source.name}: unknown kind '{source.kind}'")
    cls = load(target)
    params = inspect.signature(cls).parameters
    options = {"value_field": settings.distress.value_field, **kwargs}
    return cls(source, **{k: v for k, v in options.items() if k in params})
