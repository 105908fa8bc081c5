"""Shared fixtures: paths to the read-only shared material, small stores."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures"
DATA = SHARED / "data"


def pytest_configure(config: pytest.Config) -> None:
    """Install the example connector plugin (tests/plugin_example) before collection: tests/plugin_install.py;
    point the user cache folder (the report's script bundle) at a folder of this run, for it and its
    subprocesses, so tests never write to the home folder."""
    import os
    import tempfile

    from tests.plugin_install import install_example_plugin

    config.stash[_PLUGIN_DIR] = install_example_plugin()
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="deskpulse-test-cache-")


def pytest_unconfigure(config: pytest.Config) -> None:
    from tests.plugin_install import remove

    if _PLUGIN_DIR in config.stash:
        remove(config.stash[_PLUGIN_DIR])


_PLUGIN_DIR = pytest.StashKey[Path]()


@pytest.fixture
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"shared fixtures not found at {FIXTURES}")
    return FIXTURES


@pytest.fixture(autouse=True)
def _isolate_deskpulse_logging():
    """CLI tests call setup_logging(), which sets the 'deskpulse' logger's level and handler: undo it per test."""
    import logging

    saved = {name: (lg.level, list(lg.handlers), lg.propagate)
             for name in ("deskpulse", "apscheduler") for lg in [logging.getLogger(name)]}
    yield
    for name, (level, handlers, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.propagate = propagate
        for handler in list(logger.handlers):
            if handler not in handlers:
                logger.removeHandler(handler)
