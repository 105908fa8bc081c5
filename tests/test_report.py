"""``deskpulse report``: the page shows exactly what ``deskpulse kpi`` and ``deskpulse distress`` print for the same
period and store, is one self-contained file, and the CLI contract holds through the console script."""

from __future__ import annotations

import html
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from kpi_engine.units import humanize
from sync.cli import distress as cmd_distress
from sync.cli import kpi as cmd_kpi
from sync.cli import report as cmd_report
from sync.cli.context import AppContext
from tests.report_kit import NOW, SINCE, UNTIL, make_store


@pytest.fixture(scope="module")
def world_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_store(tmp_path_factory.mktemp("report"))


def _app(db: Path, config: Path) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context) -> None:
        ctx.obj = AppContext(db_path=db, config_path=config, clock=lambda: NOW)

    for module in (cmd_kpi, cmd_distress, cmd_report):
        module.register(app)
    return app


def _run(app: typer.Typer, *args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def _data(page: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="deskpulse-data">(.*?)</script>', page, re.S)
    assert match, "the page embeds its numbers"
    return json.loads(match.group(1))


@pytest.fixture(scope="module")
def report(world_store: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any],
                                                                                              typer.Typer]:
    db, config = world_store
    app = _app(db, config)
    out = tmp_path_factory.mktemp("out") / "r.html"
    printed = _run(app, "report", "--since", SINCE, "--until", UNTIL, "--out", str(out))
    assert str(out) in printed
    page = out.read_text(encoding="utf-8")
    return page, _data(page), app


def test_numbers_equal_kpi_and_distress(report: tuple[str, dict[str, Any], typer.Typer]) -> None:
    page, data, app = report
    kpi = json.loads(_run(app, "kpi", "--since", SINCE, "--until", UNTIL, "--format", "json"))
    assert data["kpis"] == kpi["kpis"]
    assert data["period"]["since"] == kpi["period"]["since"] and data["period"]["until"] == kpi["period"]["until"]
    weekly = json.loads(_run(app, "kpi", "--since", SINCE, "--until", UNTIL, "--by", "week", "--format", "json"))
    assert [w["week"] for w in data["weeks"]] == [row["key"] for row in weekly["breakdown"]]
    assert len(data["weeks"]) == 12
    for week, row in zip(data["weeks"], weekly["breakdown"], strict=True):
        for name in ("tickets_created", "first_response_time_p90_s_business", "full_resolution_time_median_s",
                     "csat_pct", "nps", "ces_mean", "backlog_size"):
            assert week[name] == row["kpis"][name], (week["week"], name)
    for dim in ("agent", "group", "channel"):
        by = json.loads(_run(app, "kpi", "--since", SINCE, "--until", UNTIL, "--by", dim, "--format", "json"))
        expected = {row["key"]: row["kpis"]["tickets_created"] for row in by["breakdown"]}
        assert {r["key"]: r["tickets_created"] for r in data["breakdowns"][dim]} == expected
    distress = json.loads(_run(app, "distress", "--format", "json", "--top", "10"))
    assert data["distress"]["accounts"] == distress["accounts"]
    assert data["distress"]["bands"] == distress["bands"]
    # what a person reads: the key figures, humanized like the kpi table
    for name in ("tickets_created", "first_response_time_median_s", "csat_pct", "sla_adherence_pct"):
        shown = re.search(rf"data-kpi='{name}'>.*?class='value'>(.*?)</span>", page).group(1)
        assert html.unescape(shown) == humanize(name, kpi["kpis"][name], "USD")
    top = distress["accounts"][0]
    assert f"data-account='{html.escape(top['account'])}'" in page


def test_sla_chart_lists_accounts_worst_first(report: tuple[str, dict[str, Any], typer.Typer]) -> None:
    _, data, app = report
    rows = data["sla_by_account"]
    assert len(rows) >= 5
    assert [r["sla_adherence_pct"] for r in rows] == sorted(r["sla_adherence_pct"] for r in rows)
    by_org = json.loads(_run(app, "kpi", "--since", SINCE, "--until", UNTIL, "--by", "organization", "--format",
                             "json"))
    everything = sorted(row["kpis"]["sla_adherence_pct"] for row in by_org["breakdown"]
                        if row["kpis"]["sla_adherence_pct"] is not None)
    assert [r["sla_adherence_pct"] for r in rows] == everything[:len(rows)]


def test_page_is_self_contained_with_a_text_alternative_per_chart(
        report: tuple[str, dict[str, Any], typer.Typer]) -> None:
    page, _, _ = report
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "nothing is loaded at view time"
    assert "cdn." not in page
    figures = re.findall(r"<figure data-chart='([a-z_]+)' data-has-chart='(yes|no)'>(.*?)</figure>", page, re.S)
    charted = {key for key, has, _ in figures if has == "yes"}
    assert charted >= {"volume_weekly", "volume_monthly", "first_response", "resolution", "backlog",
                       "satisfaction_csat_pct", "satisfaction_nps", "satisfaction_ces_mean", "sla_accounts",
                       "cdi_bands", "cdi_trend"}
    for key, _, body in figures:
        assert "<h3>" in body and "class='units'" in body and "Text alternative" in body, key
        assert re.search(r"class='alt'>[^<]{10,}</p>", body), key


def test_report_command_through_the_console_script(world_store: tuple[Path, Path], tmp_path: Path) -> None:
    db, config = world_store
    out = tmp_path / "nested" / "week.html"
    ok = subprocess.run(["deskpulse", "--db", str(db), "--config", str(config), "report", "--since", SINCE,
                         "--until", UNTIL, "--out", str(out)], capture_output=True, text=True, timeout=120,
                        check=False)
    assert ok.returncode == 0, ok.stderr
    assert f"written to {out}" in ok.stdout and out.stat().st_size > 100_000
    assert not list(out.parent.glob(".*.tmp")), "written through a temporary file, renamed into place"
    bad = subprocess.run(["deskpulse", "--db", str(db), "--config", str(config), "report", "--since", "2026-13-01"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "internal error" not in bad.stderr
    missing = subprocess.run(["deskpulse", "--db", str(tmp_path / "none.db"), "--config", str(config), "report"],
                             capture_output=True, text=True, timeout=60, check=False)
    assert missing.returncode == 2 and "no store at" in missing.stderr
    assert not (tmp_path / "none.db").exists()
