"""What a connector plugin declares instead of the core hard-coding it per vendor (issue 12's leftovers).

- ``ConnectorPlugin.severity_map``: the default ``[kpi.severity_map.<kind>]``. The built-in three declare
  exactly the numbers config used to hard-code, so default settings, and with them the stored KPI facts'
  fingerprint, are what they were; a fourth helpdesk (the example plugin "deskette") gets real severities
  without any configuration; a configured ``[kpi] severity_map`` still replaces the defaults as a whole.
- ``ConnectorPlugin.history_note``: the ``deskpulse status`` line about history the API cannot show, so no
  sync module names Freshdesk (its line itself is checked in tests/test_freshdesk_fidelity.py).
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from config.errors import ConfigError
from config.settings import KpiSettings, Settings, load_settings, use_severity_defaults
from connectors.plugin import installed
from connectors.plugin import severity_defaults as plugin_severity_defaults
from kpi_engine import fact_store
from sync import history_notes
from sync.registry import plugins, register_source_models, severity_defaults
from sync.store import Store
from tests.plugin_kit import load_error, synced_deskette, toml_source

REPO = Path(__file__).resolve().parents[1]
BUILT_IN = ("freshdesk", "intercom", "zendesk")
#: config/settings.py ``_default_severity_map()`` before the maps moved into the plugins (commit 14522dc)
OLD_DEFAULTS = {
    "zendesk": {"urgent": 3, "high": 2, "normal": 1, "low": 1},
    "freshdesk": {"4": 3, "3": 2, "2": 1, "1": 1},
    "intercom": {"priority": 2, "not_priority": 1, "urgent": 3, "high": 2, "medium": 1, "low": 1},
}
DESKETTE_MAP = {"urgent": 3, "high": 2, "normal": 1, "low": 1}


@pytest.fixture
def built_in_only() -> Iterator[None]:
    """The defaults as an install without the example plugin has them (the test session has it installed)."""
    use_severity_defaults(plugin_severity_defaults({k: p for k, p in plugins().items() if k in BUILT_IN}))
    try:
        yield
    finally:
        register_source_models()


def severities(db: Path, source: str) -> dict[str, set[int]]:
    conn = sqlite3.connect(db)
    try:
        out: dict[str, set[int]] = {}
        for priority, severity in conn.execute("SELECT priority, severity FROM tickets WHERE source = ?", [source]):
            out.setdefault(priority, set()).add(severity)
        return out
    finally:
        conn.close()


# -- the built-in three: the same numbers, the same fingerprint ----------------------------------------
def test_the_built_in_plugins_declare_the_maps_config_used_to_hard_code() -> None:
    assert {kind: dict(installed()[kind].severity_map) for kind in BUILT_IN} == OLD_DEFAULTS


def test_default_settings_are_what_they_were_so_stored_facts_are_not_rebuilt(built_in_only: None,
                                                                          tmp_path: Path) -> None:
    """The facts' fingerprint hashes ``kpi.model_dump()``: default settings must dump the old map exactly."""
    assert KpiSettings().severity_map == OLD_DEFAULTS
    config = tmp_path / "deskpulse.toml"
    config.write_text('[kpi]\ntimezone = "UTC"\n', encoding="utf-8")
    loaded = load_settings(config, env={})
    assert loaded.kpi.severity_map == OLD_DEFAULTS
    with Store(tmp_path / "s.db") as store:
        before = fact_store.fingerprint(store.conn, KpiSettings(severity_map=OLD_DEFAULTS))
        assert fact_store.fingerprint(store.conn, KpiSettings()) == before
        assert fact_store.fingerprint(store.conn, loaded.kpi) == before


def test_a_plugin_without_a_map_changes_no_default() -> None:
    bare = dataclasses.replace(installed()["zendesk"], kind="baredesk", severity_map={})
    assert plugin_severity_defaults({**installed(), "baredesk": bare}) == plugin_severity_defaults(installed())


def test_nothing_but_the_plugins_fills_the_default() -> None:
    """config names no vendor's priorities: with no plugin registered the default map is empty."""
    try:
        use_severity_defaults({})
        assert KpiSettings().severity_map == {}
    finally:
        register_source_models()
    assert KpiSettings().severity_map == severity_defaults()
    assert severity_defaults()["deskette"] == DESKETTE_MAP


# -- a fourth helpdesk: its own map, without configuration ---------------------------------------------
def test_the_cli_loads_a_plugins_map_as_the_default(tmp_path: Path) -> None:
    config = tmp_path / "deskpulse.toml"
    config.write_text(toml_source("d", {"kind": "deskette", "base_url": "http://127.0.0.1:1", "api_key": "k"}),
                      encoding="utf-8")
    settings = load_settings(config, env={}, severity_maps=severity_defaults())
    assert settings.kpi.severity_map["deskette"] == DESKETTE_MAP
    assert {k: settings.kpi.severity_map[k] for k in BUILT_IN} == OLD_DEFAULTS


def test_a_plugins_map_reaches_the_stored_severities_without_any_config(tmp_path: Path) -> None:
    """Before plugins declared maps, every ticket of a fourth helpdesk had severity 1."""
    with synced_deskette(tmp_path, tickets=80, seed=5) as (_running, _config, db):
        pass
    assert severities(db, "desk1") == {p: {s} for p, s in DESKETTE_MAP.items()}


def test_a_configured_map_still_replaces_the_plugin_defaults_as_a_whole(tmp_path: Path) -> None:
    """Today's semantics (README "Adding a helpdesk"): a ``[kpi] severity_map`` in the file or the environment
    replaces every default, the built-in kinds' included; a priority it does not list is severity 1."""
    config = tmp_path / "deskpulse.toml"
    config.write_text("[kpi.severity_map.deskette]\nurgent = 2\n", encoding="utf-8")
    assert load_settings(config, env={}).kpi.severity_map == {"deskette": {"urgent": 2}}
    env = {"DESKPULSE_KPI__SEVERITY_MAP__ZENDESK__HIGH": "3"}
    assert load_settings(tmp_path / "none.toml", env=env, required=False).kpi.severity_map == {"zendesk": {"high": 3}}

    with synced_deskette(tmp_path, tickets=80, seed=5, config_head="[kpi.severity_map.deskette]\nurgent = 2\n\n"
                         ) as (_running, _config, db):
        pass
    assert severities(db, "desk1") == {"urgent": {2}, "high": {1}, "normal": {1}, "low": {1}}


# -- a plugin's declarations are checked when it is discovered -----------------------------------------
BASE = installed()["zendesk"]
BAD_SEVERITY = dataclasses.replace(BASE, kind="brokendesk", severity_map={"urgent": 4})
BAD_BOOL = dataclasses.replace(BASE, kind="brokendesk", severity_map={"urgent": True})
BAD_KEY = dataclasses.replace(BASE, kind="brokendesk", severity_map={1: 3})  # type: ignore[dict-item]
BAD_NOTE = dataclasses.replace(BASE, kind="brokendesk", history_note="{source}: archived before {first_sync}")
EMPTY_NOTE = dataclasses.replace(BASE, kind="brokendesk", history_note=" ")


@pytest.mark.parametrize(("attr", "problem"), [
    ("BAD_SEVERITY", "severity_map['urgent'] must be a severity 1..3"),
    ("BAD_BOOL", "severity_map['urgent'] must be a severity 1..3"),
    ("BAD_KEY", "severity_map key 1 is not a priority name"),
    ("BAD_NOTE", "history_note may only use the placeholders {source} and {since} (write a literal brace as {{ "
                 "or }})"),
    ("EMPTY_NOTE", "history_note must be a non-empty text or None"),
])
def test_a_plugin_declaring_an_unusable_map_or_note_is_refused_on_one_line(monkeypatch: pytest.MonkeyPatch,
                                                                            attr: str, problem: str) -> None:
    error = load_error(monkeypatch, f"tests.test_plugin_defaults:{attr}")
    assert isinstance(error, ConfigError) and "\n" not in str(error)
    assert str(error) == f"plugin 'brokendesk': {problem}"


# -- history notes come from the plugin ------------------------------------------------------------------
def _settings(*sources: Mapping[str, object]) -> Settings:
    return Settings.model_validate({"sources": list(sources)})


FD = {"name": "fd", "kind": "freshdesk", "base_url": "http://127.0.0.1:1", "api_key": "k-123456"}
DESK = {"name": "desk1", "kind": "deskette", "base_url": "http://127.0.0.1:1", "api_key": "k-123456"}
ZD = {"name": "zd", "kind": "zendesk", "base_url": "http://127.0.0.1:1", "email": "a@b.c", "api_token": "t-123456"}


def test_only_a_plugin_declaring_a_history_note_gets_a_status_line(tmp_path: Path) -> None:
    assert [k for k, p in installed().items() if p.history_note] == ["freshdesk"]
    with Store(tmp_path / "s.db") as store:
        lines = history_notes.archive_lines(_settings(FD, DESK, ZD), store.conn)
    assert lines == ["fd: closed tickets archived by Freshdesk before the first sync are not visible via the API; "
                     "history before the first sync may be partial"]


def test_a_fourth_helpdesks_history_note_is_printed_for_its_sources(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    """No sync module names a vendor: a plugin's note is filled in with the source and its first sync."""
    noted = dataclasses.replace(installed()["deskette"], history_note="{source}: nothing before {since} (sic)")
    monkeypatch.setattr(history_notes, "plugins", lambda: {**installed(), "deskette": noted})
    with Store(tmp_path / "s.db") as store:
        store.conn.execute("INSERT INTO sync_state (source, stream, cursor) VALUES ('desk1', 'tickets', ?)",
                           ['{"history_partial_before": "2026-09-21T14:13:20+00:00"}'])
        lines = history_notes.archive_lines(_settings(DESK, ZD), store.conn)
    assert lines == ["desk1: nothing before 2026-09-21 (sic)"]


def test_no_sync_module_names_a_vendor_kind_to_write_a_history_note() -> None:
    text = (REPO / "sync" / "history_notes.py").read_text(encoding="utf-8").lower()
    code = text.split('"""', 2)[2]  # past the module docstring
    for kind in BUILT_IN:
        assert f'"{kind}"' not in code and f"'{kind}'" not in code
