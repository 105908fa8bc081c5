"""One connector per source for a run, opened on first use and closed at the end.

Write-back plans and applies against several sources; the pool builds each source's connector once (through
the installed plugins, :func:`sync.registry.build_connector`) so one run keeps one HTTP session and one rate
budget per helpdesk. Used by ``deskpulse writeback`` and by the daemon's refresh job alike, which is why it
lives in the pipeline and not in the CLI.
"""

from __future__ import annotations

import threading

from config.settings import Settings
from connectors.base import Connector
from sync.registry import build_connector


class ConnectorPool:
    """A ``source name -> Connector`` callable that opens each connector once; :meth:`close` closes them all."""

    def __init__(self, settings: Settings, *, stop: threading.Event | None = None) -> None:
        self.settings = settings
        self.open: dict[str, Connector] = {}
        self.stop = stop  # the daemon's: a SIGTERM ends a Retry-After wait of a write (connectors.errors.Stopped)

    def __call__(self, source: str) -> Connector:
        if source not in self.open:
            connector = build_connector(self.settings.source(source), self.settings)
            watch_stop = getattr(getattr(connector, "http", None), "watch_stop", None)
            if self.stop is not None and callable(watch_stop):
                watch_stop(self.stop)
            self.open[source] = connector
        return self.open[source]

    def close(self) -> None:
        for connector in self.open.values():
            connector.close()
