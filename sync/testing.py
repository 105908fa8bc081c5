"""The pytest plugin ``deskpulse_contract`` (entry point group ``pytest11``): the sync engine for the public
connector contract kit (``connectors.testing``).

Why here: the contract cases drive the real engine and store, and ``connectors`` may not import ``sync``
(DESIGN.md's layers). So sync hands them in: the fixture ``deskpulse_engine`` is an :class:`EngineRunner`,
the ``connectors.testing.kit.EngineRunner`` protocol. Loading the plugin also lets pytest rewrite the kit's
asserts, so a failing contract case in any connector package shows the values it compared. Imports of the
engine happen on first use: a pytest run that never asks for the fixture pays nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

pytest.register_assert_rewrite("connectors.testing.contract", "connectors.testing.kit")


class EngineRunner:
    """One ``deskpulse sync`` at a time over a store file: a fresh store connection and engine per call."""

    @property
    def tables(self) -> Mapping[str, Mapping[str, Any]]:
        from sync.store import TABLES

        return TABLES

    def sync(self, db: Path, settings: Any, *, connector_factory: Callable[..., Any], clock: Callable[[], float],
             on_page: Callable[..., None] | None = None, full: bool = False) -> list[Any]:
        from sync.engine import SyncEngine
        from sync.store import Store

        with Store(db) as store:
            engine = SyncEngine(store, settings, connector_factory=connector_factory, clock=clock, on_page=on_page)
            return engine.sync_all(full=full)


@pytest.fixture(scope="session")
def deskpulse_engine() -> EngineRunner:
    """The real sync engine and store, for ``connectors.testing.ConnectorContract``."""
    return EngineRunner()
