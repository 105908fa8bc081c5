"""Which connector and simulator serve each ``kind``: the installed connector plugins.

Every helpdesk, the built-in three included, is a ``connectors.plugin.ConnectorPlugin`` found through the
``deskpulse.connectors`` entry point group, so adding one never edits deskpulse. Importing this module
hands what the installed plugins declare for config to it: their source models
(``config.settings.use_source_models``) and their priority -> severity maps, the default ``[kpi] severity_map``
(``config.settings.use_severity_defaults``). config itself discovers nothing and imports no connector.
"""

from __future__ import annotations

from typing import Any

from config.errors import ConfigError
from config.settings import Settings, SourceBase, use_severity_defaults, use_source_models
from connectors.base import Connector
from connectors.plugin import ConnectorPlugin, PluginError, installed, load_path
from connectors.plugin import severity_defaults as plugin_severity_defaults


def plugins() -> dict[str, ConnectorPlugin]:
    """The installed connector plugins by kind (sorted)."""
    return installed()


def source_models() -> dict[str, type[SourceBase]]:
    """kind -> the ``[[sources]]`` model a source of that kind is validated against."""
    return {kind: plugin.settings for kind, plugin in plugins().items()}


def severity_defaults() -> dict[str, dict[str, int]]:
    """kind -> priority -> severity as the installed plugins declare it: the default ``[kpi] severity_map``."""
    return plugin_severity_defaults(plugins())


def register_source_models() -> None:
    """Make ``Settings`` validate sources against the installed plugins, and default ``[kpi] severity_map`` to
    their maps (idempotent)."""
    use_source_models(source_models())
    use_severity_defaults(severity_defaults())


def plugin(kind: str) -> ConnectorPlugin:
    """The plugin for ``kind``; a ConfigError listing the installed kinds otherwise."""
    found = plugins().get(kind)
    if found is None:
        raise ConfigError(f"unknown kind '{kind}' (installed: {', '.join(plugins()) or 'none'})")
    return found


def load(path: str) -> Any:
    """Resolve a lazy ``"module:attr"`` path (kept for callers of the old registry)."""
    return load_path(path)


def build_connector(source: Any, settings: Settings, **kwargs: Any) -> Connector:
    """Instantiate the connector for ``source.kind``, passing only the options its constructor takes."""
    found = plugins().get(source.kind)
    if found is None:
        raise ConfigError(f"source {source.name}: unknown kind '{source.kind}' "
                          f"(installed: {', '.join(plugins()) or 'none'})")
    return found.build_connector(source, **{"value_field": settings.distress.value_field, **kwargs})


try:
    register_source_models()
except PluginError:
    pass  # a broken plugin: loading the settings asks again and reports it (one line, exit 2)
