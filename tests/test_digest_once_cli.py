"""The digest's CLI contract through the installed ``deskpulse`` console script: two posts at once post once,
incomplete weeks are refused (exit 2), a failed or unknown post exits 1 and ``deskpulse status`` shows it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from connectors.sim.base import Fault, SimServer
from connectors.sim.slack import SlackSim

TOKEN = "xoxb-digest-cli-Sekrit99"
TZ = "Europe/Berlin"


def _week(days_from_now: int) -> str:
    year, week, _ = (datetime.now(ZoneInfo(TZ)).date() + timedelta(days=days_from_now)).isocalendar()
    return f"{year}-W{week:02d}"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[SlackSim, Path]]:
    sim = SlackSim(bot_token=TOKEN, channels=("#support",))
    with SimServer(sim) as server:
        config = tmp_path / "deskpulse.toml"
        config.write_text(f'[slack]\nbot_token = "{TOKEN}"\nchannel = "C0SIM0001"\napi_base_url = "{server.url}"\n'
                          f'[kpi]\ntimezone = "{TZ}"\n')
        yield sim, config


def _cmd(config: Path, *args: str) -> list[str]:
    return ["deskpulse", "--config", str(config), "--db", str(config.parent / "d.db"), *args]


def _env() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("DESKPULSE_")}, "COLUMNS": "400"}


def _run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_cmd(config, *args), capture_output=True, text=True, timeout=120, env=_env(),
                          cwd=config.parent, check=False)


def test_two_posts_at_once_post_once(env: tuple[SlackSim, Path]) -> None:
    sim, config = env
    _run(config, "status")  # create and migrate the store first, so both posters start alike
    sim.inject(Fault("slow", count=2, path="/api/chat.postMessage", delay=3.0))   # Slack takes its time
    procs = [subprocess.Popen(_cmd(config, "digest", "--post", "--week", _week(-7)), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=_env(), cwd=config.parent) for _ in range(2)]
    results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert [code for code, _, _ in results] == [0, 0], results
    said = sorted(out.strip().split(": ", 1)[1] for _, out, _ in results)
    assert said == ["already posted", "posted"], results
    assert len(sim.messages) == 1 and sim.requests_made("chat.postMessage") == 1


@pytest.mark.parametrize(("days", "what"), [(0, "is not over yet"), (7, "has not begun")])
def test_incomplete_and_future_weeks_are_refused_without_force(env: tuple[SlackSim, Path], days: int,
                                                               what: str) -> None:
    sim, config = env
    out = _run(config, "digest", "--post", "--week", _week(days))
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and what in lines[0] and "--force" in lines[0]
    assert sim.requests_made() == 0


def test_a_failed_post_exits_1_and_status_shows_its_reason_and_next_retry(env: tuple[SlackSim, Path]) -> None:
    sim, config = env
    sim.archive("#support")
    out = _run(config, "digest", "--post")
    assert out.returncode == 1, out
    assert len(out.stderr.strip().splitlines()) == 1 and "is_archived" in out.stderr
    status = _run(config, "status")
    assert status.returncode == 0, status
    line = next(line for line in status.stdout.splitlines() if line.startswith(f"digest {_week(-7)}"))
    assert "FAILED after 1 attempt(s)" in line and "is_archived" in line and "next retry" in line
    assert TOKEN not in status.stdout + out.stderr


def test_an_unknown_post_exits_1_and_status_says_how_it_is_resolved(env: tuple[SlackSim, Path]) -> None:
    sim, config = env
    sim.inject(Fault("5xx", status=503, path="/api/chat.postMessage"))
    out = _run(config, "digest", "--post")
    assert out.returncode == 1, out
    assert len(out.stderr.strip().splitlines()) == 1 and "outcome unknown" in out.stderr
    again = _run(config, "digest", "--post")        # right away: not re-sent, still exit 1
    assert again.returncode == 1 and sim.requests_made("chat.postMessage") == 1
    status = _run(config, "status").stdout
    line = next(line for line in status.splitlines() if line.startswith(f"digest {_week(-7)}"))
    assert "OUTCOME UNKNOWN" in line and "HTTP 503" in line and "checks the channel history" in line
