"""The report in a real browser: headless Chromium (Debian's ``chromium``) with the network off draws every chart.

``.ci/run`` installs Chromium and Playwright when they are missing, so CI runs this test; on a machine without a
browser it skips and says why. Screenshots at 1280 and 390 px wide are saved for a person to look at
(``$DESKPULSE_SCREENSHOTS``, default ``build/screenshots/``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from kpi_engine.units import humanize
from sync.cli import report as cmd_report
from sync.cli.context import AppContext
from tests.report_kit import NOW, SINCE, UNTIL, make_store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install "
                                     "'.[dev]' brings it)")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (apt-get install chromium; "
                                                          ".ci/run installs it)")
SHOTS = Path(os.environ.get("DESKPULSE_SCREENSHOTS", Path(__file__).resolve().parents[1] / "build" / "screenshots"))
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
MARKS = ("svg g.role-mark.mark-rect path, svg g.role-mark.mark-line path, svg g.role-mark.mark-symbol path")


@pytest.fixture(scope="module")
def page_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("browser")
    db, config = make_store(tmp)
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context) -> None:
        ctx.obj = AppContext(db_path=db, config_path=config, clock=lambda: NOW)

    cmd_report.register(app)
    out = tmp / "report.html"
    result = CliRunner().invoke(app, ["report", "--since", SINCE, "--until", UNTIL, "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    data = json.loads(re.search(r'id="deskpulse-data">(.*?)</script>', text, re.S).group(1))
    return out, data


@pytest.mark.parametrize("width", [1280, 390])
def test_every_chart_renders_offline_without_console_errors(page_file: tuple[Path, dict[str, Any]],
                                                            width: int) -> None:
    path, data = page_file
    problems: list[str] = []
    outside: list[str] = []
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            context = browser.new_context(viewport={"width": width, "height": 900}, offline=True)
            page = context.new_page()
            page.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning")
                    else None)
            page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
            page.on("request", lambda r: None if r.url.startswith(("file:", "data:", "blob:"))
                    else outside.append(r.url))
            page.goto(path.as_uri())
            page.wait_for_function("document.documentElement.dataset.chartsReady === 'yes'", timeout=30_000)
            charts = page.evaluate(
                """(sel) => [...document.querySelectorAll("figure[data-has-chart='yes']")].map(f => {
                     const svg = f.querySelector('.vis svg');
                     return {key: f.dataset.chart, width: svg ? svg.getBoundingClientRect().width : 0,
                             marks: f.querySelectorAll(sel).length};
                   })""", MARKS)
            assert page.get_by_role("heading", name="Support report").is_visible()
            for name in ("tickets_created", "full_resolution_time_median_s", "csat_pct"):
                card = page.locator(f"[data-kpi='{name}'] .value")
                assert card.is_visible()
                assert card.inner_text() == humanize(name, data["kpis"][name], "USD")
            scroll_width = page.evaluate("document.documentElement.scrollWidth")
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / f"report-{width}.png"), full_page=True)
        finally:
            browser.close()
    assert problems == [] and outside == []
    assert len(charts) >= 11
    for chart in charts:
        assert chart["marks"] > 0 and chart["width"] > 100, chart
        assert chart["width"] <= width, chart
    assert scroll_width <= width, "no sideways scrolling at this width (wide tables scroll inside their box)"
