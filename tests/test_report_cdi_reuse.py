"""The report takes the latest CDI while it is current (kpi_engine.distress_latest) and computes it otherwise.

Current means what write-back already trusts: computed today, no earlier than the last sync activity, with the
same settings. These tests pin the three ways it stops being current and that a reused CDI is the same document
``deskpulse distress --format json`` printed.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import typer

from config.settings import load_settings
from kpi_engine import distress_latest
from sync.cli import distress as cmd_distress
from sync.cli import report as cmd_report
from sync.cli.context import AppContext
from sync.store import Store
from tests.report_kit import NOW, SINCE, UNTIL, make_store
from tests.test_report import _data, _run

EARLIER = NOW - 600  # ten minutes before the report: the same day, the CDI's "as_of" tells which one is shown


def _app_at(db: Path, config: Path, clock: int) -> typer.Typer:
    """The commands as at ``clock`` (the report's worker process computes with the command's clock too)."""
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context) -> None:
        ctx.obj = AppContext(db_path=db, config_path=config, clock=lambda: clock)

    for module in (cmd_distress, cmd_report):
        module.register(app)
    return app


def _stamp(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


@pytest.fixture
def store_and_app(tmp_path: Path) -> tuple[Path, Path, typer.Typer]:
    db, config = make_store(tmp_path, tickets=600, seed=3)
    return db, config, _app_at(db, config, NOW)


def _report(app: typer.Typer, out: Path) -> dict[str, Any]:
    _run(app, "report", "--since", SINCE, "--until", UNTIL, "--out", str(out))
    return _data(out.read_text(encoding="utf-8"))


def test_a_report_after_distress_reuses_its_cdi_whole(store_and_app: tuple[Path, Path, typer.Typer],
                                                      tmp_path: Path) -> None:
    db, config, app = store_and_app
    printed = json.loads(_run(_app_at(db, config, EARLIER), "distress", "--format", "json", "--top", "10"))
    data = _report(app, tmp_path / "r.html")
    assert _stamp(data["distress"]["as_of"]) == EARLIER  # the kept one, not one computed at the report's NOW
    assert data["distress"]["accounts"] == printed["accounts"]  # every field of every shown account
    assert {k: data["distress"][k] for k in ("as_of", "day", "method", "active_accounts", "weights", "bands")} == \
        {k: printed[k] for k in ("as_of", "day", "method", "active_accounts", "weights", "bands")}


def test_a_sync_since_makes_the_report_compute_it(store_and_app: tuple[Path, Path, typer.Typer], tmp_path: Path,
                                                  ) -> None:
    db, config, app = store_and_app
    _run(_app_at(db, config, EARLIER), "distress", "--format", "json")
    settings = load_settings(config)
    args = {"settings": settings.distress, "as_of": NOW, "tz": settings.kpi.timezone, "sla": settings.sla,
            "customers": settings.customers}
    with Store(db) as store:
        assert distress_latest.kept(store.conn, **args) is not None
        # a stream ran after the CDI was computed
        store.conn.execute("INSERT INTO sync_state (source, stream, status, last_run_at) VALUES ('zd', 'tickets', "
                           "'ok', ?) ON CONFLICT(source, stream) DO UPDATE SET last_run_at = excluded.last_run_at",
                           (EARLIER + 1,))
        assert distress_latest.kept(store.conn, **args) is None
    data = _report(app, tmp_path / "r.html")  # computed now, in the report's worker process, and kept
    assert _stamp(data["distress"]["as_of"]) == NOW
    with Store(db) as store:
        assert store.scalar("SELECT computed_at FROM cdi_latest") == NOW


def test_other_settings_or_another_day_are_not_served_the_kept_cdi(store_and_app: tuple[Path, Path, typer.Typer]
                                                                   ) -> None:
    db, config, app = store_and_app
    _run(app, "distress", "--format", "json")
    settings = load_settings(config)
    args = {"tz": settings.kpi.timezone, "sla": settings.sla, "customers": settings.customers}
    with Store(db) as store:
        assert distress_latest.kept(store.conn, settings=settings.distress, as_of=NOW, **args) is not None
        other = settings.distress.model_copy(update={"green_max": settings.distress.green_max - 5})
        assert distress_latest.kept(store.conn, settings=other, as_of=NOW, **args) is None  # other bands
        assert distress_latest.kept(store.conn, settings=settings.distress, as_of=NOW + 86400, **args) is None
        no_matching = settings.customers.model_copy(update={"match": False})
        assert distress_latest.kept(store.conn, settings=settings.distress, as_of=NOW, tz=args["tz"],
                                    sla=settings.sla, customers=no_matching) is None


def test_the_report_keeps_what_it_computed_for_the_next_reader(store_and_app: tuple[Path, Path, typer.Typer],
                                                              tmp_path: Path) -> None:
    db, config, _app = store_and_app
    first = _report(_app_at(db, config, EARLIER), tmp_path / "a.html")  # no CDI yet: computed in the worker, kept
    second = _report(_app_at(db, config, NOW), tmp_path / "b.html")
    assert _stamp(second["distress"]["as_of"]) == EARLIER
    assert second["distress"] == first["distress"] and second["cdi_lines"] == first["cdi_lines"]
    # the weekly KPIs came from the worker process this time, the tables from this one: the same numbers
    # (the period ended before both clocks, so the clock changes none of them)
    assert second["kpis"] == first["kpis"] and second["weeks"] == first["weeks"]
    assert second["breakdowns"] == first["breakdowns"] and second["sla_by_account"] == first["sla_by_account"]


def test_a_terminal_sees_what_the_report_is_busy_with(store_and_app: tuple[Path, Path, typer.Typer]) -> None:
    """A first report on a large store fills the CDI history for a minute or more: a terminal is told so."""
    import io

    from rich.console import Console

    from kpi_engine.periods import Period
    from sync.report_job import build

    db, config, _app = store_and_app
    screen = io.StringIO()
    with Store(db) as store:
        build(store, load_settings(config), Period.from_dates(date.fromisoformat(SINCE), date.fromisoformat(UNTIL),
                                                               "Europe/Berlin"),
              now=NOW, console=Console(file=screen, force_terminal=True, width=200))
    assert "computing the report" in screen.getvalue() and "fills its history" in screen.getvalue()


def test_a_terminal_sees_what_distress_is_busy_with(store_and_app: tuple[Path, Path, typer.Typer]) -> None:
    import io

    from rich.console import Console

    from sync.cli.distress import run_distress

    db, config, _app = store_and_app
    screen = io.StringIO()
    actx = AppContext(db_path=db, config_path=config, clock=lambda: NOW,
                      err_console=Console(file=screen, force_terminal=True, width=200))
    assert run_distress(actx).accounts
    assert "computing the CDI" in screen.getvalue()


def test_a_first_report_fills_the_history_its_line_needs(store_and_app: tuple[Path, Path, typer.Typer],
                                                             tmp_path: Path) -> None:
    """No CDI history yet: today, the 14 days before (the worker's backfill) and the nine older week-ends of the
    12-week line are recorded, whichever of the two processes computes the older week-ends (this one takes them
    once its KPIs are done, the worker any it reaches first)."""
    from datetime import timedelta

    from kpi_engine.distress import day_of

    db, _config, app = store_and_app
    data = _report(app, tmp_path / "r.html")
    today = date.fromisoformat(day_of(NOW, "Europe/Berlin"))
    wanted = {today - timedelta(days=d) for d in range(15)} | {today - timedelta(weeks=w) for w in range(3, 12)}
    with Store(db) as store:
        days = {date.fromisoformat(r["day"]) for r in store.query("SELECT DISTINCT day FROM cdi_history")}
    assert days == wanted
    line_days = {r["day"] for r in data["cdi_lines"]}
    assert len(line_days) == 12 and {date.fromisoformat(d) for d in line_days} <= wanted
