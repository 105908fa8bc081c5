"""What an entry point of group ``deskpulse.connectors`` points at: one helpdesk, described once.

Why entry points: deskpulse finds every helpdesk the same way, the built-in three included
(``[project.entry-points."deskpulse.connectors"]`` in pyproject.toml), so a fourth helpdesk is a separate
package that declares ``mydesk = "mydesk:PLUGIN"`` and never edits deskpulse. A plugin names its parts by
lazy ``"module:attr"`` strings (or passes the objects themselves): discovering the installed kinds imports
only each plugin's small top-level module, and a Zendesk-only run never imports the Intercom code.

The plugin's ``settings`` model (a subclass of ``config.settings.SourceBase`` with ``kind: Literal["<kind>"]``)
is what a ``[[sources]]`` entry of that kind is validated against; sync hands the installed models to
config's loader, so ``config`` itself stays free of connector imports.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from config.errors import ConfigError
from config.settings import SourceBase

ENTRY_POINT_GROUP = "deskpulse.connectors"
#: the highest severity (KPIS.md: severities are 1..3; ``[kpi.escalation] top_severity`` defaults to it)
MAX_SEVERITY = 3

#: Credentials the local simulators accept. Not secrets: they only open a simulator on 127.0.0.1.
SIM_EMAIL = "demo@deskpulse.invalid"
SIM_TOKEN = "sim-token-not-a-secret"
SIM_KEY = "sim-key-not-a-secret"


class PluginError(ConfigError):
    """An installed plugin is broken (its entry point does not load, or describes another kind): a problem
    of the installation, reported like a config error (one line, exit 2)."""


def load_path(target: str | Any) -> Any:
    """Resolve a lazy ``"package.module:attr"`` string; any other value is returned as is."""
    if not isinstance(target, str):
        return target
    module, sep, attr = target.partition(":")
    if not sep or not module or not attr:
        raise PluginError(f"'{target}' is not a 'module:attr' path")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class SimulatorSetup:
    """How to build a kind's simulator: its constructor options, and the ``[[sources]]`` settings (without
    ``name`` and ``base_url``) that authenticate against it."""

    options: Mapping[str, Any]
    source: Mapping[str, Any]


@dataclass(frozen=True)
class ConnectorPlugin:
    """One helpdesk as deskpulse sees it.

    ``kind``: the ``kind = "..."`` of a ``[[sources]]`` entry, and the entry point's name.
    ``settings``: the pydantic model a source of this kind is validated against (subclass of ``SourceBase``
    whose ``kind`` field is ``Literal[kind]``).
    ``connector``: the ``Connector`` class or factory, called as ``factory(source, **options)`` with only the
    options its signature accepts (``http``, ``clock``, ``value_field``, ...).
    ``http``: ``build_http(source, *, clock, sleep)``; the contract kit injects a fake clock through it.
    Defaults to ``build_http`` in the connector's module.
    ``simulator``: the simulator class (a ``connectors.sim.base.Simulator``), called as
    ``cls(world, **setup.options)``; None when the plugin ships no simulator (then no ``deskpulse sim``).
    ``simulator_setup``: ``speedup -> SimulatorSetup``: the simulator's options (rate limits scaled by
    ``speedup``) and the source settings that reach it.
    ``writes``: whether the connector implements ``write()`` (distress write-back).
    ``contract``: the ``connectors.testing.ContractSpec`` the public contract kit runs this plugin with (the
    simulator's test hooks, page sizes, the requests of a quiet run), or None.
    ``severity_map``: vendor priority (as the connector stores it in ``tickets.priority``) -> severity 1..3, the
    default of ``[kpi.severity_map.<kind>]``. Sync hands every plugin's map to config
    (``config.settings.use_severity_defaults``), so config keeps no vendor's values and a new helpdesk's
    tickets get real severities without any configuration; a priority it does not list is severity 1.
    ``history_note``: a line ``deskpulse status`` prints for each source of this kind about history the API
    cannot show (Freshdesk: tickets archived before the first sync), or None. ``{source}`` is replaced by the
    source's name, ``{since}`` by the date of its first sync (``YYYY-MM-DD``, or "the first sync").
    """

    kind: str
    settings: type[SourceBase]
    connector: str | Callable[..., Any]
    http: str | Callable[..., Any] | None = None
    simulator: str | Callable[..., Any] | None = None
    simulator_setup: Callable[[int], SimulatorSetup] | None = None
    writes: bool = False
    contract: Any = None  # "module:attr" or a connectors.testing.ContractSpec
    description: str = ""
    severity_map: Mapping[str, int] = field(default_factory=dict)
    history_note: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def load_connector(self) -> Callable[..., Any]:
        return load_path(self.connector)

    def build_connector(self, source: Any, **options: Any) -> Any:
        """Instantiate the connector, passing only the options its constructor takes."""
        factory = self.load_connector()
        params = inspect.signature(factory).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return factory(source, **options)
        return factory(source, **{k: v for k, v in options.items() if k in params})

    def load_http(self) -> Callable[..., Any]:
        """``build_http(source, *, clock, sleep)``: explicit, else ``build_http`` next to the connector."""
        if self.http is not None:
            return load_path(self.http)
        factory = self.load_connector()
        module = importlib.import_module(factory.__module__)
        build = getattr(module, "build_http", None)
        if build is None:
            raise PluginError(f"plugin '{self.kind}' names no http factory and {module.__name__} has no build_http")
        return build

    @property
    def has_simulator(self) -> bool:
        return self.simulator is not None and self.simulator_setup is not None

    def build_simulator(self, world: Any, *, speedup: int = 1) -> tuple[Any, dict[str, Any]]:
        """The simulator over ``world`` (used as given: callers copy it) and the source settings that reach it."""
        if self.simulator is None or self.simulator_setup is None:
            raise PluginError(f"plugin '{self.kind}' ships no simulator")
        setup = self.simulator_setup(speedup)
        sim = load_path(self.simulator)(world, **dict(setup.options))
        return sim, {"kind": self.kind, **dict(setup.source)}

    def load_contract(self) -> Any:
        return load_path(self.contract) if self.contract is not None else None


def _check(name: str, obj: Any) -> ConnectorPlugin:
    if not isinstance(obj, ConnectorPlugin):
        raise PluginError(f"entry point '{name}' of group {ENTRY_POINT_GROUP} is not a ConnectorPlugin")
    if obj.kind != name:
        raise PluginError(f"entry point '{name}' of group {ENTRY_POINT_GROUP} describes kind '{obj.kind}'")
    if not (isinstance(obj.settings, type) and issubclass(obj.settings, SourceBase)):
        raise PluginError(f"plugin '{name}': settings must subclass config.settings.SourceBase")
    _check_severity_map(name, obj.severity_map)
    _check_history_note(name, obj.history_note)
    return obj


def _check_severity_map(name: str, severity_map: Any) -> None:
    """Refuse at discovery a map the engine and the KPI facts could not use (found late, as wrong numbers)."""
    if not isinstance(severity_map, Mapping):
        raise PluginError(f"plugin '{name}': severity_map must map priorities to severities 1..{MAX_SEVERITY}")
    for priority, severity in severity_map.items():
        if not isinstance(priority, str) or not priority:
            raise PluginError(f"plugin '{name}': severity_map key {priority!r} is not a priority name")
        if isinstance(severity, bool) or not isinstance(severity, int) or not 1 <= severity <= MAX_SEVERITY:
            raise PluginError(f"plugin '{name}': severity_map['{priority}'] must be a severity 1..{MAX_SEVERITY}")


def _check_history_note(name: str, note: Any) -> None:
    """A note must format with ``{source}`` and ``{since}`` only: a stray brace would crash ``deskpulse status``."""
    if note is None:
        return
    if not isinstance(note, str) or not note.strip():
        raise PluginError(f"plugin '{name}': history_note must be a non-empty text or None")
    try:
        note.format(source="source", since="since")
    except (KeyError, IndexError, ValueError):
        raise PluginError(f"plugin '{name}': history_note may only use the placeholders {{source}} and "
                          "{since} (write a literal brace as {{ or }})") from None


@cache
def installed() -> dict[str, ConnectorPlugin]:
    """Every installed plugin by kind, sorted by kind (cached: entry points do not change in a process).

    A plugin whose entry point fails to import raises :class:`PluginError` naming it: a broken install
    should be loud, not a helpdesk that silently vanishes from the list.
    """
    found: dict[str, ConnectorPlugin] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in found:
            continue  # the same distribution seen twice on sys.path (editable + build dir): first wins
        try:
            obj = ep.load()
        except Exception as exc:  # noqa: BLE001 - any import error of a third-party plugin
            raise PluginError(f"connector plugin '{ep.name}' ({ep.value}) failed to load: "
                              f"{type(exc).__name__}: {exc}") from None
        found[ep.name] = _check(ep.name, obj)
    return dict(sorted(found.items()))


def installed_kinds() -> list[str]:
    return list(installed())


def severity_defaults(plugins: Mapping[str, ConnectorPlugin]) -> dict[str, dict[str, int]]:
    """kind -> the priority -> severity map each plugin declares; kinds that declare none are left out, so a
    plugin without a map leaves the default ``[kpi] severity_map`` (and the KPI facts' fingerprint) as it was."""
    return {kind: dict(plugin.severity_map) for kind, plugin in plugins.items() if plugin.severity_map}
