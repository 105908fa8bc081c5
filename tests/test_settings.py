"""Configuration: TOML + env overlay, validation, and one-line errors that exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from config.errors import ConfigError
from config.settings import load_settings, overlay_env, parse_duration, parse_hours
from sync.cli import app, main

GOOD = """
[store]
path = "x.db"

[[sources]]
name = "zd"
kind = "zendesk"
base_url = "https://acme.zendesk.com"
email = "ops@acme.example"
api_token = "tok-file"

[schedule]
sync_every = "15m"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "deskpulse.toml"
    path.write_text(text)
    return path


def test_example_config_loads_with_secrets_from_env() -> None:
    example = Path(__file__).resolve().parents[1] / "config" / "deskpulse.example.toml"
    env = {"DESKPULSE_SOURCES__0__API_TOKEN": "a", "DESKPULSE_SOURCES__1__API_KEY": "b",
           "DESKPULSE_SOURCES__2__ACCESS_TOKEN": "c"}
    settings = load_settings(example, env=env)
    assert [s.kind for s in settings.sources] == ["zendesk", "freshdesk", "intercom"]
    assert settings.sources[0].api_token.get_secret_value() == "a"
    assert "api_token" not in example.read_text().split("#")[0]


def test_env_overrides_file_and_nests(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    settings = load_settings(path, env={"DESKPULSE_SOURCES__0__API_TOKEN": "tok-env",
                                        "DESKPULSE_STORE__PATH": "y.db", "DESKPULSE_KPI__TIMEZONE": "Europe/Berlin"})
    assert settings.sources[0].api_token.get_secret_value() == "tok-env"
    assert str(settings.store.path) == "y.db"
    assert settings.kpi.timezone == "Europe/Berlin"
    assert settings.schedule.sync_every_s == 900


def test_secret_repr_is_masked(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD), env={})
    assert "tok-file" not in repr(settings) and "tok-file" not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (lambda t: t.replace('email = "ops@acme.example"\n', "").replace('api_token = "tok-file"\n', ""),
         "sources[0]: needs email + api_token"),
        (lambda t: t.replace('kind = "zendesk"', 'kind = "zenddesk"'), "sources[0]: unknown kind"),
        (lambda t: t.replace("https://acme.zendesk.com", "acme.zendesk.com"), "sources[0].base_url"),
        (lambda t: t.replace("https://acme.zendesk.com", "http://acme.zendesk.com"), "must use https"),
        (lambda t: t.replace('sync_every = "15m"', 'sync_every = "soon"'), "schedule.sync_every"),
        (lambda t: t.replace('name = "zd"', 'name = ""'), "sources[0].name"),
        (lambda t: t + "\n[kpi]\ntimezone = \"Mars/Base\"\n", "unknown timezone"),
        (lambda t: t + "\n[kpi]\nbusiness_hours = { mon = \"17:00-09:00\" }\n", "ends before it starts"),
        (lambda t: t + "\n[bogus]\nx = 1\n", "bogus: unknown setting"),
        (lambda t: t + "\n[[sources]\n", "not valid TOML"),
    ],
)
def test_bad_config_is_one_line_naming_field_and_file(tmp_path: Path, mutation, expected: str) -> None:
    path = write(tmp_path, mutation(GOOD))
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    message = str(info.value)
    assert expected in message
    assert str(path) in message
    assert "\n" not in message
    assert "tok-file" not in message


def test_loopback_http_is_allowed(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD.replace("https://acme.zendesk.com", "http://127.0.0.1:8080/")),
                             env={})
    assert settings.sources[0].base_url == "http://127.0.0.1:8080"


def test_duplicate_source_names_rejected(tmp_path: Path) -> None:
    text = GOOD + GOOD[GOOD.index("[[sources]]"):GOOD.index("[schedule]")]
    with pytest.raises(ConfigError, match="used twice"):
        load_settings(write(tmp_path, text), env={})


def test_cli_bad_config_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, GOOD.replace('kind = "zendesk"', 'kind = "helpscout"'))
    code = main(["--config", str(path), "sync"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "unknown kind" in err and "Traceback" not in err


def test_cli_missing_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--config", str(tmp_path / "nope.toml"), "sync"])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_unknown_option_exits_2() -> None:
    result = CliRunner().invoke(app, ["sync", "--bogus"])
    assert result.exit_code == 2


def test_overlay_env_indexes_lists() -> None:
    doc = {"sources": [{"name": "a"}]}
    overlay_env(doc, {"DESKPULSE_SOURCES__0__API_KEY": "k", "DESKPULSE_SOURCES__1__NAME": "b", "OTHER": "x"})
    assert doc == {"sources": [{"name": "a", "api_key": "k"}, {"name": "b"}]}


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("15m", 900), ("1h30m", 5400), ("1d", 86400), (45, 45)])
def test_parse_duration(text, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "0m", "fast", "-5m"])
def test_parse_duration_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_parse_hours_allows_midnight_end() -> None:
    start, end = parse_hours("00:00-24:00")
    assert start.hour == 0 and end.hour == 23
