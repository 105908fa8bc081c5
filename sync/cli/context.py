"""What every CLI command needs: the resolved settings, the store, the console, the clock.

Commands get one :class:`AppContext` from the Typer context object instead of
re-reading global options, so ``--config``/``--db`` mean the same everywhere.
The root callback (:mod:`sync.cli.root`) sets :attr:`AppContext.on_settings`, so
whichever command loads the settings, redaction of their secrets is installed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import typer
from rich.console import Console

from config.settings import Settings, load_settings
from sync.store import Store


@dataclass
class AppContext:
    config_path: Path | None = None
    db_path: Path | None = None
    verbose: int = 0
    log_format: str = "text"
    console: Console = field(default_factory=Console)
    err_console: Console = field(default_factory=lambda: Console(stderr=True))
    clock: Callable[[], float] = time.time
    #: called once with the settings when they are loaded or set (the root callback installs redaction here)
    on_settings: Callable[[Settings], None] | None = None
    _settings: Settings | None = None

    @property
    def settings_loaded(self) -> bool:
        return self._settings is not None

    def settings(self, *, required: bool = True) -> Settings:
        """Load once; ``required=False`` gives defaults when no config file exists."""
        if self._settings is None:
            # the installed connector plugins' [[sources]] models and default [kpi] severity_map
            from sync.registry import severity_defaults, source_models

            self.use_settings(load_settings(self.config_path, required=required, source_models=source_models(),
                                            severity_maps=severity_defaults()))
        assert self._settings is not None
        return self._settings

    def use_settings(self, settings: Settings) -> None:
        """Settings from elsewhere than the config file (the demo's); the settings hook sees them too."""
        self._settings = settings
        if self.on_settings is not None:
            self.on_settings(settings)

    def store_path(self, settings: Settings | None = None) -> Path:
        if self.db_path is not None:
            return self.db_path
        settings = settings or self.settings(required=False)
        return settings.store.path

    def store(self, settings: Settings | None = None) -> Store:
        return Store(self.store_path(settings))

    def store_exists(self, settings: Settings | None = None) -> bool:
        """Whether the store file is there: read-only commands must not create one by opening it."""
        path = self.store_path(settings)
        return str(path) == ":memory:" or path.exists()


def get_ctx(ctx: typer.Context) -> AppContext:
    """The AppContext the root callback stored on the Typer context."""
    obj = ctx.find_root().obj
    if not isinstance(obj, AppContext):
        obj = AppContext()
        ctx.find_root().obj = obj
    return obj
