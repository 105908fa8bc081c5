"""Connectors are plugins found through the ``deskpulse.connectors`` entry points, the built-in three included.

The example plugin ``tests/plugin_example`` (helpdesk "deskette") is installed for the session by
``tests/plugin_install.py`` and registered only through its own entry point: deskpulse's code never names
it. Through the installed ``deskpulse`` console script it validates, syncs, and serves its simulator; an
unknown kind is refused with the list of installed kinds.
"""

from __future__ import annotations

import ast
import os
import signal
import sqlite3
import subprocess
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import requests

from config.errors import ConfigError
from config.settings import Settings, load_settings, use_source_models
from connectors.plugin import ENTRY_POINT_GROUP, ConnectorPlugin, installed
from sync.registry import plugin, source_models
from sync.simulators import build_simulator, simulator_kinds
from tests.plugin_kit import deskpulse, load_error, synced_deskette, toml_source

REPO = Path(__file__).resolve().parents[1]
KINDS = ["deskette", "freshdesk", "intercom", "zendesk"]


# -- discovery --------------------------------------------------------------------------------------------
def test_every_kind_is_an_installed_entry_point_the_built_in_three_included() -> None:
    declared = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert declared["zendesk"] == "connectors.zendesk:PLUGIN"
    assert declared["deskette"] == "deskette:PLUGIN"
    assert list(installed()) == KINDS
    assert all(isinstance(p, ConnectorPlugin) and p.kind == k for k, p in installed().items())
    assert {k: m.__name__ for k, m in source_models().items()} == {
        "deskette": "DesketteSource", "freshdesk": "FreshdeskSource", "intercom": "IntercomSource",
        "zendesk": "ZendeskSource"}


def test_deskpulse_code_never_names_the_example_plugin() -> None:
    """Registered only through its entry point: no module of deskpulse mentions it."""
    for package in ("config", "connectors", "kpi_engine", "sync"):
        for path in (REPO / package).rglob("*.py"):
            assert "deskette" not in path.read_text(encoding="utf-8").lower(), path


def test_config_validates_sources_against_the_models_it_is_handed() -> None:
    """config discovers nothing: the kinds it accepts are the models sync hands it (here: only Zendesk's)."""
    zendesk = {"name": "z", "kind": "zendesk", "base_url": "http://127.0.0.1:1", "email": "a@b.c",
               "api_token": "t-123456"}
    deskette = {"name": "d", "kind": "deskette", "base_url": "http://127.0.0.1:1", "api_key": "k-123456"}
    try:
        use_source_models({"zendesk": source_models()["zendesk"]})
        assert Settings(sources=[zendesk]).sources[0].kind == "zendesk"
        with pytest.raises(ValueError, match="deskette"):
            Settings(sources=[deskette])
    finally:
        use_source_models(source_models())
    assert type(Settings(sources=[deskette]).sources[0]).__name__ == "DesketteSource"


def test_config_imports_nothing_of_ours() -> None:
    for path in (REPO / "config").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not [n for n in names if n.split(".")[0] in ("connectors", "sync", "kpi_engine")], path


def test_an_unknown_kind_lists_the_installed_kinds(tmp_path: Path) -> None:
    path = tmp_path / "deskpulse.toml"
    path.write_text(toml_source("x", {"kind": "helpscout", "base_url": "http://127.0.0.1:1"}), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={}, source_models=source_models())
    assert str(err.value) == (f"invalid config in {path}: sources[0]: unknown kind 'helpscout' "
                              f"(installed: {', '.join(KINDS)})")
    with pytest.raises(ConfigError, match=r"unknown kind 'helpscout' \(installed: deskette, freshdesk"):
        plugin("helpscout")


def test_simulators_are_the_plugins_simulators_and_slack() -> None:
    assert simulator_kinds() == [*KINDS, "slack"]
    sim, source = build_simulator("deskette", None, speedup=1)
    assert type(sim).__name__ == "DesketteSim" and source["kind"] == "deskette" and source["api_key"]


# -- through the installed console script ---------------------------------------------------------------
def test_cli_refuses_an_unknown_kind_naming_field_file_and_installed_kinds(tmp_path: Path) -> None:
    config = tmp_path / "deskpulse.toml"
    config.write_text(toml_source("hs", {"kind": "helpscout", "base_url": "https://x.example"}), encoding="utf-8")
    out = deskpulse("--config", str(config), "sync", cwd=tmp_path)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert out.stderr.splitlines() == [f"error: invalid config in {config}: sources[0]: unknown kind 'helpscout' "
                                       f"(installed: {', '.join(KINDS)})"]


def test_cli_sim_with_an_unknown_kind_lists_the_installed_simulators(tmp_path: Path) -> None:
    out = deskpulse("sim", "helpscout", cwd=tmp_path)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert out.stderr.splitlines() == [f"error: unknown simulator 'helpscout' (installed: {', '.join(KINDS)}, slack)"]


def test_the_example_plugin_syncs_end_to_end_from_the_cli(tmp_path: Path) -> None:
    with synced_deskette(tmp_path, tickets=120, seed=3) as (running, config, db):
        truth = running.sim.ground_truth()  # type: ignore[attr-defined]
        conn = sqlite3.connect(db)
        try:
            def count(table: str) -> int:
                return conn.execute(f"SELECT count(*) FROM {table} WHERE source='desk1'").fetchone()[0]

            assert (count("tickets"), count("messages"), count("people"), count("organizations"),
                    count("ratings")) == (truth["tickets"], truth["messages"], truth["people"],
                                          truth["organizations"], truth["ratings"])
            streams = {s for (s,) in conn.execute("SELECT stream FROM sync_state WHERE source='desk1'")}
            assert streams == {"organizations", "people", "tickets"}
        finally:
            conn.close()
        status = deskpulse("--config", str(config), "--db", str(db), "status", cwd=tmp_path)
        assert status.returncode == 0 and "desk1" in status.stdout, (status.stdout, status.stderr)


def test_cli_sim_serves_the_example_plugins_simulator(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKPULSE_")}
    proc = subprocess.Popen(["deskpulse", "sim", "deskette", "--tickets", "30"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "deskette simulator on http://127.0.0.1:" in first, (first, proc.stderr.read() if proc.poll() else "")
        url = first.split(" on ")[1].split()[0]
        lines = [proc.stdout.readline().strip() for _ in range(3)]
        key = next(line.split(" = ")[1].strip("'\"") for line in lines if line.startswith("api_key"))
        resp = requests.get(f"{url}/api/tickets", params={"limit": 5},
                            headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert resp.status_code == 200 and len(resp.json()["tickets"]) == 5
        assert requests.get(f"{url}/api/tickets", timeout=10).status_code == 401
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""


# -- a broken install is loud, on one line --------------------------------------------------------------
@pytest.mark.parametrize(("value", "problem"), [
    ("deskpulse_no_such_module:PLUGIN", "failed to load: ModuleNotFoundError"),
    ("connectors.zendesk:ZendeskConnector", "is not a ConnectorPlugin"),
    ("connectors.zendesk:PLUGIN", "describes kind 'zendesk'"),
])
def test_a_broken_plugin_is_a_one_line_config_error(monkeypatch: pytest.MonkeyPatch, value: str,
                                                     problem: str) -> None:
    error = load_error(monkeypatch, value)
    assert isinstance(error, ConfigError) and "\n" not in str(error)
    assert "'brokendesk'" in str(error)
    assert problem in str(error)
    assert list(installed()) == KINDS
