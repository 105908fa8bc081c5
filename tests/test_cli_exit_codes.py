"""Exit codes through the installed ``deskpulse`` console script, as cron/systemd see them (issue 10, item 1).

Each test runs the real entry point in a subprocess: Typer's CliRunner bypasses ``sync.cli:main``, which is how
``standalone_mode=False`` dropping ``typer.Exit(1)`` (every failure exiting 0) and Typer's bundled Click
escaping ``except click.UsageError`` (usage errors exiting 1 as "internal error") went unnoticed.
Contract: 0 only when everything asked succeeded, 1 when any source/stream/write/post failed, 2 for bad usage
or config with one line on stderr, and "internal error ... please report" only for real bugs.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sync.simulators import DEMO_SPEEDUP, RunningSim, start_simulator

WRONG_TOKEN = "wrong-token-for-the-simulator"

pytestmark = pytest.mark.skipif(shutil.which("deskpulse") is None, reason="the deskpulse console script is not "
                                "installed (python3 -m pip install -e '.[dev]')")


def deskpulse(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The installed console script, with no DESKPULSE_* variables leaking in from the test's environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKPULSE_")}
    env["COLUMNS"] = "200"  # keep the sync table's error cells on one line each
    return subprocess.run(["deskpulse", *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


def assert_usage_error(out: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 2, exactly one line on stderr, no bug report request, and every needle in that line."""
    assert out.returncode == 2, (out.returncode, out.stderr)
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: "), out.stderr
    assert "please report" not in out.stderr and "internal error" not in out.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def toml_value(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def write_config(path: Path, sources: list[dict[str, Any]], extra: str = "") -> Path:
    lines: list[str] = []
    for source in sources:
        lines.append("[[sources]]")
        lines += [f"{key} = {toml_value(value)}" for key, value in source.items()]
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


@pytest.fixture(scope="module")
def zendesk() -> Iterator[RunningSim]:
    """One small Zendesk simulator on loopback; limits scaled like the demo's so a sync takes a second."""
    running = start_simulator("zendesk", tickets=40, seed=5, speedup=DEMO_SPEEDUP, name="zd-good")
    yield running
    running.server.stop()


def good(sim: RunningSim) -> dict[str, Any]:
    return {**sim.source, "name": "zd-good"}


def bad(sim: RunningSim, name: str = "zd-bad") -> dict[str, Any]:
    """The same simulator with a token it rejects: HTTP 401 on the first request."""
    return {**sim.source, "name": name, "api_token": WRONG_TOKEN}


# -- bad usage: exit 2, one line -------------------------------------------------------------------------------
def test_unknown_command_exits_2(tmp_path: Path) -> None:
    assert_usage_error(deskpulse("nosuch", cwd=tmp_path), "nosuch")


def test_unknown_option_exits_2(tmp_path: Path) -> None:
    assert_usage_error(deskpulse("daemon", "--onc", cwd=tmp_path), "--onc")


def test_bad_option_value_exits_2(tmp_path: Path) -> None:
    assert_usage_error(deskpulse("distress", "--top", "-5", cwd=tmp_path), "--top")


def test_bare_command_shows_help_and_exits_2(tmp_path: Path) -> None:
    out = deskpulse(cwd=tmp_path)
    assert_usage_error(out, "no command given")
    assert "Usage" in out.stdout


def test_help_exits_0(tmp_path: Path) -> None:
    out = deskpulse("--help", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "sync" in out.stdout and not out.stderr


def test_bad_config_exits_2_naming_field_and_file(tmp_path: Path) -> None:
    config = tmp_path / "deskpulse.toml"
    config.write_text('[schedule]\nsync_every = "soon"\n')
    assert_usage_error(deskpulse("--config", str(config), "sync", cwd=tmp_path), "schedule.sync_every", str(config))


def test_missing_config_exits_2(tmp_path: Path) -> None:
    assert_usage_error(deskpulse("sync", cwd=tmp_path), "deskpulse.toml")


def test_daemon_without_sources_exits_2(tmp_path: Path) -> None:
    """A config problem: systemd's RestartPreventExitStatus=2 must stop restarting it."""
    config = tmp_path / "deskpulse.toml"
    config.write_text('[kpi]\ntimezone = "UTC"\n')
    assert_usage_error(deskpulse("--config", str(config), "daemon", "--once", cwd=tmp_path), "no sources configured")


def test_a_config_that_is_not_utf8_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "deskpulse.toml"
    config.write_bytes('[kpi]\ntimezone = "Europe/Zürich"\n'.encode("latin-1"))
    assert_usage_error(deskpulse("--config", str(config), "status", cwd=tmp_path), "not UTF-8", str(config))


# -- the machine, not deskpulse: exit 1, one line, no bug report ---------------------------------------------------
def test_a_simulator_port_already_taken_exits_1_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = deskpulse("sim", "slack", "--port", str(port), cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    assert out.stderr.splitlines() == [f"error: cannot serve the slack simulator on 127.0.0.1:{port}: "
                                       "Address already in use"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_output_to_a_full_disk_exits_1_without_a_bug_report(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKPULSE_")}
    with open("/dev/full", "w") as full:
        out = subprocess.run(["deskpulse", "kpi", "--list"], stdout=full, stderr=subprocess.PIPE, text=True,
                             timeout=120, cwd=tmp_path, env=env)
    assert out.returncode == 1
    assert out.stderr.splitlines() == ["error: No space left on device"]


# -- runtime failures: exit 1, the table still says which ---------------------------------------------------------
def test_sync_where_every_source_gets_401_exits_1(tmp_path: Path, zendesk: RunningSim) -> None:
    config = write_config(tmp_path / "deskpulse.toml", [bad(zendesk, "zd-bad-1"), bad(zendesk, "zd-bad-2")])
    out = deskpulse("--config", str(config), "--db", str(tmp_path / "d.db"), "sync", cwd=tmp_path)
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert "zd-bad-1" in out.stdout and "zd-bad-2" in out.stdout and "401" in out.stdout
    assert "internal error" not in out.stderr and WRONG_TOKEN not in out.stdout + out.stderr


class _Hostile(BaseHTTPRequestHandler):
    """Answers every request the way a captive portal, a broken proxy or a moved account would."""

    answers = {
        "html": (200, {"Content-Type": "text/html"}, b"<html><body>Please log in</body></html>"),
        "badjson": (200, {"Content-Type": "application/json"}, b'{"tickets": [1, 2'),
        "redirect": (302, {"Location": "https://login.example.invalid/"}, b""),
    }

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        status, headers, body = self.answers[self.server.mode]  # type: ignore[attr-defined]
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("mode", ["html", "badjson", "redirect"])
def test_sync_against_html_bad_json_or_a_redirect_exits_1(tmp_path: Path, mode: str) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    server.mode = mode  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        source = {"name": "zd", "kind": "zendesk", "email": "a@b.test", "api_token": "t-123", "max_retries": 0,
                  "base_url": f"http://127.0.0.1:{server.server_address[1]}"}
        config = write_config(tmp_path / "deskpulse.toml", [source])
        out = deskpulse("--config", str(config), "--db", str(tmp_path / "d.db"), "sync", cwd=tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert "zd" in out.stdout and "internal error" not in out.stderr


def test_sync_with_one_source_failing_exits_1(tmp_path: Path, zendesk: RunningSim) -> None:
    config = write_config(tmp_path / "deskpulse.toml", [good(zendesk), bad(zendesk)])
    out = deskpulse("--config", str(config), "--db", str(tmp_path / "d.db"), "sync", cwd=tmp_path)
    assert out.returncode == 1, (out.stdout, out.stderr)
    rows = {line.split()[0]: line for line in out.stdout.splitlines() if line.strip().startswith("zd-")}
    assert " ok" in rows["zd-good"] and "401" in rows["zd-bad"], out.stdout


def test_sync_that_succeeds_exits_0(tmp_path: Path, zendesk: RunningSim) -> None:
    config = write_config(tmp_path / "deskpulse.toml", [good(zendesk)])
    out = deskpulse("--config", str(config), "--db", str(tmp_path / "d.db"), "sync", cwd=tmp_path)
    assert out.returncode == 0, (out.stdout, out.stderr)
    assert "zd-good" in out.stdout and not [line for line in out.stderr.splitlines() if "ERROR" in line]


def test_daemon_once_with_a_failing_source_exits_1(tmp_path: Path, zendesk: RunningSim) -> None:
    config = write_config(tmp_path / "deskpulse.toml", [good(zendesk), bad(zendesk)])
    out = deskpulse("--config", str(config), "--db", str(tmp_path / "d.db"), "daemon", "--once", cwd=tmp_path)
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert "sync:zd-bad" in out.stderr and "internal error" not in out.stderr


def test_daemon_once_that_succeeds_exits_0(tmp_path: Path, zendesk: RunningSim) -> None:
    config = write_config(tmp_path / "deskpulse.toml", [good(zendesk)])
    out = deskpulse("--config", str(config), "--db", str(tmp_path / "d.db"), "daemon", "--once", cwd=tmp_path)
    assert out.returncode == 0, (out.stdout, out.stderr)


def test_demo_whose_sync_failed_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process through ``main`` (a real demo cannot be made to fail from outside): the demo's table shows the
    failed source, and the exit code says so too."""
    from sync.cli import demo, main
    from sync.engine import SourceReport

    def failing_demo(actx: object, **_: object) -> dict[str, Any]:
        return {"sync": [SourceReport(source="sim-zendesk", kind="zendesk", error="HTTP 500")]}

    monkeypatch.setattr(demo, "run_demo", failing_demo)
    assert main(["demo"]) == 1
    monkeypatch.setattr(demo, "run_demo", lambda actx, **_: {"sync": [SourceReport(source="s", kind="zendesk")]})
    assert main(["demo"]) == 0
