"""The CLI as a user meets it: every command documented, the demo end to end, status, exit codes."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from sync.cli import app, main
from sync.cli.context import AppContext
from sync.cli.demo import run_demo

COMMANDS = {"demo", "sync", "status", "kpi", "import-survey", "distress", "writeback", "digest", "daemon", "sim",
            "report"}


def test_every_command_is_registered_and_has_help_text() -> None:
    import typer.main

    group = typer.main.get_command(app)
    assert set(group.commands) == COMMANDS
    for name, command in group.commands.items():
        assert (command.help or "").strip(), f"'deskpulse {name}' has no help text"
        for param in command.params:
            if param.name not in ("ctx",) and getattr(param, "help", "x") is not None:
                assert getattr(param, "help", "x"), f"option {param.name} of {name} has no help"


def test_status_on_an_empty_store_says_what_to_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--db", str(tmp_path / "s.db"), "status"])
    assert result.exit_code == 0
    assert "Nothing synced yet" in result.output


def test_status_says_how_current_the_kpi_facts_are(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sync.store import Store

    monkeypatch.chdir(tmp_path)  # no deskpulse.toml here: default settings, as the CLI would use
    db = tmp_path / "s.db"
    with Store(db) as store:
        store.upsert("tickets", [{"source": "zd", "id": "1", "status": "open", "created_at": 1_700_000_000,
                                  "updated_at": 1_700_000_000}])
    runner = CliRunner()
    status = ["--db", str(db), "status"]
    assert "rebuilt by the next KPI run" in runner.invoke(app, status).output
    assert runner.invoke(app, ["--db", str(db), "kpi", "--format", "json"]).exit_code == 0
    assert "KPI facts: 1 tickets; changed since the last refresh: 0" in runner.invoke(app, status).output
    with Store(db) as store:
        store.upsert("messages", [{"source": "zd", "id": "m1", "ticket_id": "1", "author_role": "agent",
                                   "public": 1, "created_at": 1_700_000_060}])
    assert "KPI facts: 1 tickets; changed since the last refresh: 1" in runner.invoke(app, status).output


def test_sync_without_sources_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "deskpulse.toml"
    cfg.write_text("[store]\npath = 'x.db'\n")
    assert main(["--config", str(cfg), "sync"]) == 2
    assert "no sources configured" in capsys.readouterr().err


def test_bad_log_format_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--log-format", "xml", "status"]) == 2


def test_demo_end_to_end_on_all_three_simulators(tmp_path: Path) -> None:
    out = io.StringIO()
    actx = AppContext(db_path=tmp_path / "demo.db", console=Console(file=out, width=120))
    shown = run_demo(actx, tickets=300, seed=3, kinds=[])
    counts = shown["counts"]
    assert set(counts) == {"sim-zendesk", "sim-freshdesk", "sim-intercom"}
    assert all(c["tickets"] > 250 and c["messages"] > 500 and c["quarantine"] == 0 for c in counts.values())
    assert all(report.ok for report in shown["sync"])
    assert shown["kpis"]["kpis"]["tickets_created"] is not None
    assert shown["distress"].accounts
    assert shown["slack_messages"] and shown["slack_messages"][0]["blocks"] == shown["digest"]["blocks"]
    report = shown["report"].read_text(encoding="utf-8")
    assert shown["report"].parent == tmp_path and 'id="deskpulse-data"' in report and "vegaEmbed" in report
    text = out.getvalue()
    for heading in ("what is in the store", "Customer Distress Index", "Write-back plan", "Weekly Slack digest",
                    "HTML report", "Report written to"):
        assert heading in text
    assert "sim-token-not-a-secret" not in text


def test_json_logs_are_json_on_every_line_including_the_scheduler(capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import logging

    from sync.logs import setup_logging
    from sync.redaction import Redactor

    setup_logging(0, "json", Redactor(["tok-SECRET-42"]))
    logging.getLogger("apscheduler.executors.default").warning("job skipped: maximum number of running instances")
    logging.getLogger("deskpulse.sync").error("source x failed with tok-SECRET-42 in a message")
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert [r["logger"] for r in records] == ["apscheduler.executors.default", "deskpulse.sync"]
    assert "tok-SECRET-42" not in lines[1] and "***" in records[1]["msg"]
