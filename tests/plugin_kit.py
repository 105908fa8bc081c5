"""The example plugin ("deskette") driven through the installed console script: shared by the plugin tests."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sync.simulators import start_simulator


def load_error(monkeypatch: Any, value: str) -> Exception:
    """The error discovering an entry point ``brokendesk = value`` raises (the cache of plugins restored after)."""
    from importlib.metadata import EntryPoint

    import pytest

    import connectors.plugin as plugin_module

    broken = EntryPoint(name="brokendesk", value=value, group=plugin_module.ENTRY_POINT_GROUP)
    monkeypatch.setattr(plugin_module, "entry_points", lambda group: [broken])
    plugin_module.installed.cache_clear()
    try:
        with pytest.raises(plugin_module.PluginError) as err:
            plugin_module.installed()
    finally:
        monkeypatch.undo()
        plugin_module.installed.cache_clear()
    return err.value


def deskpulse(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The console script in a subprocess, without the caller's DESKPULSE_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKPULSE_")}
    return subprocess.run(["deskpulse", *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env,
                          check=False)


def toml_source(name: str, source: dict[str, object]) -> str:
    lines = [f"{k} = {v!r}".replace("'", '"') for k, v in {"name": name, **source}.items()]
    return "[[sources]]\n" + "\n".join(lines) + "\n"


@contextmanager
def synced_deskette(tmp_path: Path, *, tickets: int, seed: int, config_head: str = ""
                    ) -> Iterator[tuple[Any, Path, Path]]:
    """A deskette simulator as source ``desk1`` (after ``config_head``), synced once by ``deskpulse sync``;
    yields (the running simulator, the config file, the store), the simulator still serving."""
    running = start_simulator("deskette", tickets=tickets, seed=seed, name="desk1")
    try:
        config = tmp_path / "deskpulse.toml"
        config.write_text(config_head + toml_source("desk1", {k: v for k, v in running.source.items() if k != "name"}),
                          encoding="utf-8")
        db = tmp_path / "d.db"
        out = deskpulse("--config", str(config), "--db", str(db), "sync", cwd=tmp_path)
        assert out.returncode == 0, (out.stdout, out.stderr)
        yield running, config, db
    finally:
        running.server.stop()
