"""``deskpulse kpi``: formats, defaults, errors (exit 2), --list; registry consistency."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from datetime import date
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from config.errors import DeskpulseError, UsageError
from config.settings import CostSettings, KpiSettings, SlaSettings
from kpi_engine.engine import compute
from kpi_engine.registry import CATALOG, NAMES, NOT_COMPUTABLE, markdown_table
from sync.cli import kpi as cmd_kpi
from sync.cli.context import AppContext
from tests.test_kpi_fixtures import T0, Desk, h

README = Path(__file__).resolve().parents[1] / "README.md"


def make_app(db: Path, config: Path, now: float) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context) -> None:
        ctx.obj = AppContext(db_path=db, config_path=config, clock=lambda: now)

    cmd_kpi.register(app)
    return app


def invoke(app: typer.Typer, *args: str) -> tuple[int, str]:
    """Run like sync.cli.main does: a DeskpulseError becomes its exit code."""
    result = CliRunner().invoke(app, list(args))
    if isinstance(result.exception, DeskpulseError):
        return result.exception.exit_code, str(result.exception)
    return result.exit_code, result.stdout


@pytest.fixture
def app(tmp_path: Path) -> typer.Typer:
    db = tmp_path / "kpi.db"
    d = Desk(db)
    d.ticket("1", h(0), status="solved", solved=h(5))
    d.desc("1", h(0))
    d.msg("1", h(2), "agent")
    d.ticket("2", h(30))
    d.store.close()
    config = tmp_path / "deskpulse.toml"
    config.write_text('[kpi]\ntimezone = "UTC"\n[costs]\nmonthly_total = 3100\n')
    return make_app(db, config, now=h(48))


def test_json_shape_and_default_period(app: typer.Typer) -> None:
    code, out = invoke(app, "kpi", "--format", "json")
    assert code == 0
    data = json.loads(out)
    # default: the 30 days ending today (2026-03-04 at h48), --until exclusive
    assert data["period"] == {"since": "2026-02-03", "until": "2026-03-05", "timezone": "UTC"}
    assert list(data["kpis"]) == list(NAMES)
    assert data["kpis"]["tickets_created"] == 2
    assert data["kpis"]["first_response_time_median_s"] == 7200.0
    assert "breakdown" not in data


def test_json_breakdown(app: typer.Typer) -> None:
    code, out = invoke(app, "kpi", "--since", "2026-03-01", "--until", "2026-03-05", "--by", "week",
                       "--format", "json")
    data = json.loads(out)
    assert code == 0
    assert [row["key"] for row in data["breakdown"]] == ["2026-W09", "2026-W10"]
    assert data["breakdown"][1]["kpis"]["tickets_created"] == 2


def test_csv_is_one_row_per_kpi(app: typer.Typer) -> None:
    code, out = invoke(app, "kpi", "--since", "2026-03-01", "--until", "2026-03-05", "--format", "csv")
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["kpi", "value"]
    cells = dict(rows[1:])
    assert cells["tickets_created"] == "2"
    assert cells["backlog_age.24_48h"] == "1"  # nested objects are flattened (ticket 2: 42h old at as_of)
    assert cells["cdi_red"] == ""  # null
    code, out = invoke(app, "kpi", "--since", "2026-03-01", "--until", "2026-03-05", "--format", "csv",
                       "--by", "source")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["key", "kpi", "value"]
    assert ["zd", "tickets_created", "2"] in rows and ["(all)", "tickets_created", "2"] in rows


def test_table_is_readable(app: typer.Typer) -> None:
    code, out = invoke(app, "kpi", "--since", "2026-03-01", "--until", "2026-03-05", "--by", "channel")
    assert code == 0
    assert "2h" in out  # first response time humanized
    assert "By channel" in out and "email" in out


@pytest.mark.parametrize(("args", "message"), [
    (("--since", "2026-13-01"), "not a date"),
    (("--since", "2026-03-05", "--until", "2026-03-01"), "must be before"),
    (("--by", "planet"), "unknown --by"),
    (("--format", "xml"), "unknown --format"),
    (("--source", "nope"), "unknown source"),
])
def test_bad_usage_exits_2(app: typer.Typer, args: tuple[str, ...], message: str) -> None:
    code, out = invoke(app, "kpi", *args)
    assert code == 2
    assert message in out
    assert "\n" not in out.strip()


def test_list_prints_every_definition(app: typer.Typer) -> None:
    code, out = invoke(app, "kpi", "--list")
    assert code == 0
    for kpi in CATALOG:
        assert f"{kpi.name} [" in out
    for name, reason in NOT_COMPUTABLE:
        assert name in out and reason in out
    assert "aht_mean_s" in out and "no effort data" in out


def test_resolve_period_defaults() -> None:
    today = date(2026, 3, 4)
    p = cmd_kpi.resolve_period("2026-03-01", None, "UTC", today)
    assert (p.since_date, p.until_date) == (date(2026, 3, 1), date(2026, 3, 5))
    p = cmd_kpi.resolve_period(None, "2026-02-01", "UTC", today)
    assert (p.since_date, p.until_date) == (date(2026, 1, 2), date(2026, 2, 1))
    with pytest.raises(UsageError):
        cmd_kpi.resolve_period("2026-03-01", "2026-03-01", "UTC", today)


def test_registry_is_the_single_source_of_names() -> None:
    assert len(set(NAMES)) == len(NAMES)
    assert all(k.definition and k.unit for k in CATALOG)
    table = markdown_table()
    for name in NAMES:
        assert f"`{name}`" in table
    # the README carries the generated table between markers: docs cannot drift from the registry
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- kpi-catalog:start -->\n(.*?)\n<!-- kpi-catalog:end -->", text, re.S)
    assert match, "README lost its generated KPI catalog (python -m kpi_engine.registry)"
    assert match.group(1).strip() == table.strip()


def test_compute_works_on_a_read_only_connection(tmp_path: Path) -> None:
    """kpi_engine only reads the store (TEMP tables live outside it): a mode=ro connection is enough."""
    d = Desk(tmp_path / "ro.db")
    d.ticket("1", T0, status="solved", solved=T0 + 3600)
    d.msg("1", T0 + 60, "agent")
    d.store.close()
    conn = sqlite3.connect(f"file:{tmp_path / 'ro.db'}?mode=ro", uri=True)
    result = compute(conn, kpi=KpiSettings(), sla=SlaSettings(), costs=CostSettings(), since=T0, until=T0 + 86400,
                     by="week", now=T0 + 86400)
    assert result["kpis"]["tickets_solved"] == 1
    assert conn.execute("SELECT COUNT(*) FROM sqlite_temp_master").fetchone()[0] == 0  # TEMP tables dropped
