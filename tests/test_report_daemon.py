"""The daemon writes the week's report into ``[report] dir`` before it posts the digest, and the digest links it
at ``[report] url``; a report that cannot be written never holds the digest back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import Settings
from connectors.sim.base import SimServer
from connectors.sim.slack import SlackSim
from sync.pipeline import Pipeline
from tests.test_digest_once import MON, TOKEN, W47, _seeded, _settings

URL = "https://reports.example/support/"


@pytest.fixture
def slack() -> Iterator[tuple[SlackSim, str]]:
    sim = SlackSim(bot_token=TOKEN, channels=("#support",))
    with SimServer(sim) as server:
        yield sim, server.url


def _with_report(settings: Settings, **report: str) -> Settings:
    return Settings.model_validate({**settings.model_dump(mode="python", exclude={"slack"}),
                                    "slack": {**settings.slack.model_dump(), "bot_token": TOKEN}, "report": report})


def _blocks_text(message: dict) -> str:
    return json.dumps(message.get("blocks", []))


def test_the_weeks_report_is_written_and_the_digest_links_it(slack: tuple[SlackSim, str], tmp_path: Path) -> None:
    sim, url = slack
    db = tmp_path / "d.db"
    _seeded(db).close()
    settings = _with_report(_settings(url, db=db), dir=str(tmp_path / "reports"), url=URL)
    outcome = Pipeline(settings, db, clock=lambda: MON + 60).digest()
    assert outcome not in ("stopped",) and not outcome.startswith("not posted"), outcome
    report = tmp_path / "reports" / f"deskpulse-report-{W47}.html"
    assert report.exists() and 'id="deskpulse-data"' in report.read_text(encoding="utf-8")
    assert len(sim.messages) == 1
    assert f"<{URL}deskpulse-report-{W47}.html|Open the full report>" in _blocks_text(sim.messages[0])


def test_without_a_report_url_the_digest_has_no_link(slack: tuple[SlackSim, str], tmp_path: Path) -> None:
    sim, url = slack
    db = tmp_path / "d.db"
    _seeded(db).close()
    settings = _with_report(_settings(url, db=db), dir=str(tmp_path / "reports"))
    Pipeline(settings, db, clock=lambda: MON + 60).digest()
    assert (tmp_path / "reports" / f"deskpulse-report-{W47}.html").exists()
    assert "Open the full report" not in _blocks_text(sim.messages[0])


def test_a_report_that_cannot_be_written_never_holds_the_digest_back(
        slack: tuple[SlackSim, str], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sim, url = slack
    db = tmp_path / "d.db"
    _seeded(db).close()
    (tmp_path / "afile").write_text("not a folder")
    settings = _with_report(_settings(url, db=db), dir=str(tmp_path / "afile" / "reports"), url=URL)
    Pipeline(settings, db, clock=lambda: MON + 60).digest()
    assert len(sim.messages) == 1 and "Open the full report" not in _blocks_text(sim.messages[0])
    assert any("report for 2026-W47 not written" in r.getMessage() for r in caplog.records)


def test_report_url_needs_a_dir_and_an_http_url() -> None:
    with pytest.raises(ValueError, match="url needs dir"):
        Settings(report={"url": URL})
    with pytest.raises(ValueError, match="is not an http"):
        Settings(report={"dir": "r", "url": "ftp://x.example/"})
