"""``deskpulse report``: the period's KPIs, trends, SLA per account and the CDI as one self-contained HTML file.

The command resolves the period like ``deskpulse kpi`` (same dates, same defaults but twelve weeks), refreshes
the derived data like ``deskpulse distress`` (sentiment, CDI history, today's snapshot), and writes the page
atomically (a temporary file renamed into place), so a browser or a web server never sees half a report.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Annotated

import typer

from config.errors import UsageError
from kpi_engine.periods import Period, local_date
from kpi_engine.report import ReportData
from sync import report_job
from sync.cli.context import AppContext, get_ctx
from sync.cli.kpi import resolve_period
from sync.report_job import weeks_ending


def default_period(since: str | None, until: str | None, timezone: str, today: date) -> Period:
    """``--since``/``--until`` as ``deskpulse kpi`` reads them; by default the last 12 ISO weeks (this one included)."""
    if since is None and until is None:
        return weeks_ending(today - timedelta(days=today.weekday()), today + timedelta(days=1), timezone)
    return resolve_period(since, until, timezone, today)


def write_report(actx: AppContext, *, since: str | None = None, until: str | None = None, source: str | None = None,
                 out: Path | None = None) -> tuple[Path, ReportData]:
    """The command on ``actx``'s store (shared with the demo): the period as ``deskpulse report`` reads it, then
    :func:`sync.report_job.write_report`; returns the file written and its data."""
    settings = actx.settings(required=False)
    path = actx.store_path(settings)
    if str(path) != ":memory:" and not path.exists():
        raise UsageError(f"no store at {path}: run 'deskpulse sync' (or 'deskpulse demo') first, or pass --db")
    now = int(actx.clock())
    period = default_period(since, until, settings.kpi.timezone, local_date(now, settings.kpi.timezone))
    with actx.store(settings) as store:
        return report_job.write_report(store, settings, period, now=now, source=source, out=out,
                                       console=actx.err_console)


def register(app: typer.Typer) -> None:
    """Add ``deskpulse report`` to the CLI."""

    @app.command("report")
    def report_command(
        ctx: typer.Context,
        since: Annotated[str | None, typer.Option("--since", help="first day (YYYY-MM-DD, inclusive)")] = None,
        until: Annotated[str | None, typer.Option("--until", help="day after the last (YYYY-MM-DD, exclusive)")] = None,
        source: Annotated[str | None, typer.Option("--source", help="only this source")] = None,
        out: Annotated[Path | None, typer.Option("--out", help="HTML file to write (default: a dated name here)")
                       ] = None,
    ) -> None:
        """Write the KPI and distress report as one self-contained HTML file (default: the last 12 weeks)."""
        actx = get_ctx(ctx)
        target, data = write_report(actx, since=since, until=until, source=source, out=out)
        actx.console.print(f"Report for {data.period['since']} to {data.period['last_day']} written to {target}",
                           markup=False, highlight=False, soft_wrap=True)
