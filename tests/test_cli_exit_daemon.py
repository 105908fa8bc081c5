"""Issue 10, item 5 (smaller untruths): the daemon lock through a symlink, ``daemon --once`` running every
job, ``status`` in an empty folder, and Rich markup in ``status``."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from rich.console import Console
from typer.testing import CliRunner

from config.settings import Settings
from sync.cli import app
from sync.cli.context import AppContext
from sync.cli.sync_cmd import print_reports
from sync.daemon import Daemon, DaemonLockedError, StoreLock
from sync.engine import SourceReport
from sync.simulators import DEMO_SPEEDUP, start_simulator
from sync.store import Store


def settings(tmp_path: Path, *, slack: bool = False, writeback: bool = False, digest: str = "mon 09:00") -> Settings:
    return Settings(
        store={"path": tmp_path / "d.db"},
        sources=[{"name": n, "kind": "zendesk", "base_url": "http://127.0.0.1:9", "email": "e@x.test",
                  "api_token": "t-123456"} for n in ("a", "b")],
        kpi={"timezone": "Europe/Berlin"},
        schedule={"digest": digest},
        writeback={"enabled": writeback},
        slack={"webhook_url": "http://127.0.0.1:9/hook"} if slack else {},
    )


def epoch(text: str, tz: str = "Europe/Berlin") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp()


class RecordingPipeline:
    """Records the job order; ``fail`` names jobs that raise, ``bad_sync`` sources whose sync reports errors."""

    def __init__(self, *, fail: frozenset[str] = frozenset(), bad_sync: frozenset[str] = frozenset(),
                 failed_writes: int = 0, digest_outcome: str = "posted") -> None:
        self.fail, self.bad_sync, self.failed_writes = fail, bad_sync, failed_writes
        self.digest_outcome = digest_outcome
        self.calls: list[str] = []

    def sync(self, source: str) -> bool:
        self.calls.append(f"sync:{source}")
        if f"sync:{source}" in self.fail:
            raise RuntimeError(f"boom in {source}")
        return source not in self.bad_sync

    def refresh(self, *, writeback: bool) -> int:
        self.calls.append(f"refresh(writeback={writeback})")
        if "refresh" in self.fail:
            raise RuntimeError("boom in refresh")
        return self.failed_writes

    def digest(self) -> str:
        self.calls.append("digest")
        if "digest" in self.fail:
            raise RuntimeError("slack said no")
        return self.digest_outcome


# -- the lock ------------------------------------------------------------------------------------------------------
def test_a_second_daemon_through_a_symlinked_db_is_locked_out(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link-dir").symlink_to(real, target_is_directory=True)
    (tmp_path / "link.db").symlink_to(real / "d.db")
    first = StoreLock(real / "d.db")
    first.acquire()
    try:
        for other in (tmp_path / "link.db", tmp_path / "link-dir" / "d.db", real / ".." / "real" / "d.db"):
            with pytest.raises(DaemonLockedError, match="already running"):
                StoreLock(other).acquire()
    finally:
        first.release()


# -- daemon --once ---------------------------------------------------------------------------------------------
def test_once_runs_every_job_in_order(tmp_path: Path) -> None:
    pipe = RecordingPipeline()
    d = Daemon(settings(tmp_path, slack=True, writeback=True), tmp_path / "d.db", pipeline=pipe,
               clock=lambda: epoch("2026-11-30T10:00"))  # a Monday after the 09:00 digest
    assert d.run_once() == []
    assert pipe.calls == ["sync:a", "sync:b", "refresh(writeback=True)", "digest"]


@pytest.mark.parametrize(("outcome", "failed"), [
    ("posted", []), ("already posted", []), ("no Slack destination configured", []),
    ("not posted: backing off after a failed post until 10:15Z", ["digest"]),
    ("not posted here: being posted by pid 7 since 09:00Z", ["digest"]),
])
def test_once_digest_outcomes(tmp_path: Path, outcome: str, failed: list[str]) -> None:
    """The digest job decides itself whether a week is due (sync.digest_job.post_due); a digest it could not
    post counts as a failed job, as ``digest --post`` exits 1 on it, while "nothing to post" does not."""
    pipe = RecordingPipeline(digest_outcome=outcome)
    assert Daemon(settings(tmp_path), tmp_path / "d.db", pipeline=pipe).run_once() == failed
    assert pipe.calls[-1] == "digest"


@pytest.mark.parametrize(("pipe", "failed"), [
    (RecordingPipeline(bad_sync=frozenset({"a"})), ["sync:a"]),
    (RecordingPipeline(fail=frozenset({"sync:b"})), ["sync:b"]),
    (RecordingPipeline(failed_writes=2), ["refresh"]),
    (RecordingPipeline(fail=frozenset({"refresh", "digest"})), ["refresh", "digest"]),
])
def test_once_reports_every_failed_job_and_still_runs_the_rest(tmp_path: Path, pipe: RecordingPipeline,
                                                               failed: list[str]) -> None:
    d = Daemon(settings(tmp_path, slack=True, writeback=True), tmp_path / "d.db", pipeline=pipe,
               clock=lambda: epoch("2026-11-30T10:00"))
    assert d.run_once() == failed
    assert pipe.calls == ["sync:a", "sync:b", "refresh(writeback=True)", "digest"]


def test_a_failed_once_job_is_recorded_for_status(tmp_path: Path) -> None:
    d = Daemon(settings(tmp_path), tmp_path / "d.db", pipeline=RecordingPipeline(fail=frozenset({"refresh"})))
    Store(tmp_path / "d.db").close()
    assert d.run_once() == ["refresh"]
    with Store(tmp_path / "d.db") as store:
        assert "boom in refresh" in store.scalar("SELECT value FROM meta WHERE key = 'job_error:refresh'")


@pytest.mark.skipif(shutil.which("deskpulse") is None, reason="console script not installed")
def test_daemon_once_posts_the_digest_and_refreshes_kpis_and_distress(tmp_path: Path) -> None:
    """Through the console script: ``--once`` also runs the digest job (before: only sync + refresh).

    ``digest = "mon 00:00"`` makes the digest due whenever the test runs (the slot opens the ISO week).
    """
    sim = start_simulator("zendesk", tickets=40, seed=5, speedup=DEMO_SPEEDUP, name="zd")
    slack = start_simulator("slack")
    try:
        lines = ["[[sources]]"] + [f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v}"
                                   for k, v in sim.source.items()]
        lines += ["[schedule]", 'digest = "mon 00:00"', "[slack]", f'webhook_url = "{slack.source["webhook_url"]}"']
        (tmp_path / "deskpulse.toml").write_text("\n".join(lines) + "\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("DESKPULSE_")}
        out = subprocess.run(["deskpulse", "--db", "d.db", "daemon", "--once"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120)
        posted = list(slack.sim.messages)
    finally:
        sim.server.stop()
        slack.server.stop()
    assert out.returncode == 0, out.stderr
    assert len(posted) == 1
    with sqlite3.connect(tmp_path / "d.db") as conn:
        assert conn.execute("SELECT count(*) FROM tickets").fetchone()[0] > 0
        assert conn.execute("SELECT count(*) FROM kpi_snapshots").fetchone()[0] > 0
        assert conn.execute("SELECT count(*) FROM cdi_history").fetchone()[0] > 0
        assert conn.execute("SELECT status FROM outbox WHERE kind = 'digest'").fetchall() == [("done",)]


# -- status ----------------------------------------------------------------------------------------------------
def test_status_in_an_empty_folder_creates_no_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DESKPULSE_DB", raising=False)
    monkeypatch.delenv("DESKPULSE_CONFIG", raising=False)
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert "Nothing synced yet into deskpulse.db" in result.output
    assert list(tmp_path.iterdir()) == []


def test_status_keeps_brackets_in_its_messages_and_stored_errors(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # Rich sizes its console from it: no wrapping inside the texts
    db = tmp_path / "d.db"
    with Store(db) as store, store.transaction():
        store.conn.execute("INSERT INTO sync_state (source, stream, status, last_error) VALUES "
                           "('zd', 'tickets', 'error', 'bad [kpi] value [/x] in answer')")
    result = CliRunner().invoke(app, ["--db", str(db), "status"])
    assert result.exit_code == 0, result.output
    assert "bad [kpi] value [/x] in answer" in result.output
    assert "changed [kpi] settings" in result.output  # a new store's facts wait for their first build


def test_sync_table_shows_server_text_with_brackets_verbatim() -> None:
    console = Console(width=300, record=True)
    report = SourceReport(source="zd", kind="zendesk", error="HTTP 400: field [/custom] is [bold]wrong")
    print_reports(AppContext(console=console), [report])
    assert "HTTP 400: field [/custom] is [bold]wrong" in console.export_text()


def test_helpdesk_names_keep_their_brackets_in_distress_writeback_and_kpi_tables() -> None:
    """Account, group and reason text comes from the helpdesk: "[beta]" must show, "[/x]" must not crash."""
    from kpi_engine.distress import AccountCdi, CdiResult
    from kpi_engine.registry import CATALOG
    from sync.cli.distress import print_table
    from sync.cli.kpi import render_table
    from sync.cli.writeback import print_plan
    from sync.writeback import FlaggedAccount, Plan, PlannedWrite

    name = "Acme [beta] [/x] GmbH"
    console = Console(width=300, record=True)
    actx = AppContext(console=console)
    acct = AccountCdi(account="o1", source="zd", organization_id="o1", requester_id=None, name=name, cdi=90,
                      band="red", priority=90.0, components={}, scaled={}, top_reasons=["slow [sla] replies"])
    print_table(actx, CdiResult(as_of=0, day="2026-12-04", source=None, method="percentile", active_accounts=1,
                                weights={}, accounts=[acct], notes=["note with [kpi] in it"]), 10)
    flagged = FlaggedAccount(account="o1", source="zd", organization_id="o1", requester_id=None, cdi=90, band="red",
                             rise_7d=None, reasons=[])
    print_plan(actx, Plan(writes=[PlannedWrite(key="k", source="zd", ticket_id="[7]", action="add_tag",
                                               value="distress", reason=f"{name} is red")], flagged=[flagged]))
    kpis = {k.name: None for k in CATALOG}
    render_table(actx, {"period": {"since": "2026-11-01", "until": "2026-12-01", "timezone": "UTC"}, "kpis": kpis,
                        "breakdown": [{"key": name, "kpis": kpis}]}, "USD", "group", business=False)
    text = console.export_text()
    assert text.count(name) == 3  # distress account, write-back reason, KPI breakdown key
    assert "slow [sla] replies" in text and "note with [kpi] in it" in text and "[7]" in text
