"""Out-of-range values are refused at the edge with one line and exit 2 (issue 10, item 5).

Before: a webhook port of 99999 passed validation and crashed the post ("internal error: ValueError: Port out
of range"), ``kpi``/``digest`` dates in year 1 or 9999 overflowed mid-computation, ``misfire_grace =
"99999999999d"`` passed validation and broke every job, and ``demo --tickets 50000000`` ran out of memory.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from config.errors import ConfigError, UsageError
from config.settings import MAX_DURATION_S, load_settings, parse_duration
from sync.cli.context import AppContext
from sync.cli.demo import MAX_DEMO_TICKETS
from sync.cli.digest import parse_week
from sync.cli.kpi import resolve_period
from tests.test_cli_exit_codes import assert_usage_error, deskpulse

SECRET_PATH = "/services/T000/B000/very-secret-part"
ZENDESK = ('[[sources]]\nname = "zd"\nkind = "zendesk"\nemail = "a@b.test"\napi_token = "t"\n'
           'base_url = "{url}"\n')

console_script = pytest.mark.skipif(shutil.which("deskpulse") is None, reason="console script not installed")


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "deskpulse.toml"
    path.write_text(text)
    return path


# -- config: ports and durations ---------------------------------------------------------------------------------
@console_script
def test_a_webhook_url_with_port_99999_is_a_config_error(tmp_path: Path) -> None:
    path = config(tmp_path, f'[slack]\nwebhook_url = "https://hooks.slack.com:99999{SECRET_PATH}"\n')
    out = deskpulse("--config", str(path), "digest", "--post", cwd=tmp_path)
    assert_usage_error(out, "slack.webhook_url", "port", str(path))
    assert "very-secret-part" not in out.stderr + out.stdout


@pytest.mark.parametrize("port", ["0", "http", "-1"])
def test_other_impossible_webhook_ports(tmp_path: Path, port: str) -> None:
    path = config(tmp_path, f'[slack]\nwebhook_url = "https://hooks.slack.com:{port}{SECRET_PATH}"\n')
    with pytest.raises(ConfigError, match="slack.webhook_url: has an invalid port") as info:
        load_settings(path, env={})
    assert "very-secret-part" not in str(info.value)


@pytest.mark.parametrize("url", ["https://acme.zendesk.com:99999", "https://acme.zendesk.com:0"])
def test_a_source_url_with_an_impossible_port_is_a_config_error(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError, match=r"sources\[0\]\.base_url: has an invalid port"):
        load_settings(config(tmp_path, ZENDESK.format(url=url)), env={})


def test_ports_in_range_still_load(tmp_path: Path) -> None:
    text = ZENDESK.format(url="https://acme.zendesk.com:8443") + \
        f'[slack]\nwebhook_url = "https://hooks.slack.com:443{SECRET_PATH}"\n'
    settings = load_settings(config(tmp_path, text), env={})
    assert settings.sources[0].base_url == "https://acme.zendesk.com:8443"


@console_script
def test_a_huge_misfire_grace_is_a_config_error(tmp_path: Path) -> None:
    path = config(tmp_path, '[schedule]\nmisfire_grace = "99999999999d"\n')
    out = deskpulse("--config", str(path), "status", cwd=tmp_path)
    assert_usage_error(out, "schedule.misfire_grace", "99999999999d", str(path))


@pytest.mark.parametrize(("key", "value"), [("misfire_grace", "8d"), ("sync_every", "30d"), ("sync_every", "400d")])
def test_schedule_durations_are_bounded_to_a_week(tmp_path: Path, key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"schedule.{key}: "):
        load_settings(config(tmp_path, f'[schedule]\n{key} = "{value}"\n'), env={})


def test_schedule_durations_up_to_a_week_load(tmp_path: Path) -> None:
    path = config(tmp_path, '[schedule]\nmisfire_grace = "7d"\nsync_every = "1s"\n')
    assert load_settings(path, env={}).schedule.misfire_grace_s == 7 * 86400


@pytest.mark.parametrize("text", ["99999999999d", "367d", "8785h", str(10**40) + "s", 10.0**40, float("nan")])
def test_parse_duration_refuses_more_than_a_year(text: str | float) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_parse_duration_accepts_up_to_its_ceiling() -> None:
    assert parse_duration("366d") == MAX_DURATION_S == parse_duration(MAX_DURATION_S)


# -- kpi dates ---------------------------------------------------------------------------------------------------
@console_script
def test_kpi_dates_outside_1970_2100_exit_2(tmp_path: Path) -> None:
    out = deskpulse("--db", str(tmp_path / "d.db"), "kpi", "--since", "0001-01-01", "--until", "9999-12-31",
                    cwd=tmp_path)
    assert_usage_error(out, "--since 0001-01-01", "1970-01-01..2100-01-01")


@pytest.mark.parametrize(("since", "until", "needle"), [
    ("2020-01-01", "9999-12-31", "--until 9999-12-31"), ("9999-12-31", None, "--since 9999-12-31"),
    (None, "0001-01-05", "--until 0001-01-05"), ("1969-12-31", None, "--since 1969-12-31"),
])
def test_kpi_dates_are_bounded_before_any_default_is_derived(since: str | None, until: str | None,
                                                              needle: str) -> None:
    from datetime import date

    with pytest.raises(UsageError, match=f"{needle} is outside 1970-01-01..2100-01-01"):
        resolve_period(since, until, "UTC", date(2026, 12, 4))


def test_kpi_period_edges() -> None:
    from datetime import date

    today = date(2026, 12, 4)
    period = resolve_period("2099-12-20", None, "UTC", today)  # the default end is clamped to 2100-01-01
    assert period.as_json()["until"] == "2100-01-01"
    period = resolve_period(None, "1970-01-10", "UTC", today)  # the default start is clamped to 1970-01-01
    assert period.as_json()["since"] == "1970-01-01"


# -- digest --week -------------------------------------------------------------------------------------------------
@console_script
def test_digest_week_0001_w01_exits_2(tmp_path: Path) -> None:
    out = deskpulse("--db", str(tmp_path / "d.db"), "digest", "--week", "0001-W01", cwd=tmp_path)
    assert_usage_error(out, "--week 0001-W01", "1970-W01..2099-W52")


def test_parse_week() -> None:
    assert parse_week(" 2026-W05 ") == "2026-W05"
    assert parse_week("1970-W01") == "1970-W01"
    for bad in ("9999-W52", "2100-W01", "1969-W52"):  # 9999-W52 ends in year 10000: overflow, not a crash
        with pytest.raises(UsageError, match=f"--week {bad} is outside 1970-W01..2099-W52"):
            parse_week(bad)
    for bad in ("2026-W60", "2026-w5", "soon"):
        with pytest.raises(UsageError, match="--week"):
            parse_week(bad)


# -- demo and sim sizes ----------------------------------------------------------------------------------------
@console_script
def test_demo_with_too_many_tickets_exits_2_before_generating_anything(tmp_path: Path) -> None:
    out = deskpulse("demo", "--tickets", "50000000", cwd=tmp_path)
    assert_usage_error(out, "--tickets", f"{MAX_DEMO_TICKETS}")
    assert list(tmp_path.iterdir()) == []


def test_run_demo_refuses_too_many_tickets_itself(tmp_path: Path) -> None:
    from sync.cli.demo import run_demo

    with pytest.raises(UsageError, match="--tickets"):
        run_demo(AppContext(db_path=tmp_path / "d.db"), tickets=MAX_DEMO_TICKETS + 1, seed=1, kinds=["zendesk"])


@console_script
def test_sim_port_out_of_range_exits_2(tmp_path: Path) -> None:
    assert_usage_error(deskpulse("sim", "zendesk", "--port", "99999", cwd=tmp_path), "--port")
