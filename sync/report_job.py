"""Building and writing the HTML report: shared by ``deskpulse report``, the demo and the daemon's weekly job.

Why in the pipeline and not in the command module: the daemon writes the week's report before it posts the
digest (so the digest's link works the moment people click it), and the pipeline never imports the CLI.
"""

from __future__ import annotations

import logging
import os
import tempfile
from contextlib import nullcontext
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from config.errors import DeskpulseError
from config.settings import Settings
from kpi_engine.digest_input import iso_week_bounds
from kpi_engine.periods import Period
from kpi_engine.report import ReportData, build_report
from kpi_engine.report_html import render
from sync.kpi_facts import check_source, refresh_kpi_facts
from sync.store import Store

log = logging.getLogger("deskpulse.report")

DEFAULT_WEEKS = 12


def weeks_ending(last_monday: date, until: date, timezone: str) -> Period:
    """The DEFAULT_WEEKS ISO weeks whose last one starts on ``last_monday``, up to ``until`` (exclusive)."""
    return Period.from_dates(last_monday - timedelta(weeks=DEFAULT_WEEKS - 1), until, timezone)


def build(store: Store, settings: Settings, period: Period, *, now: int, source: str | None = None,
          console: Any = None) -> ReportData:
    """Refresh the KPI facts, then compute every number the report shows (the CDI, with its sentiment scores
    and history, refreshed beside the KPIs: :func:`kpi_engine.report.build_report`)."""
    refresh_kpi_facts(store, settings.kpi, console, now=now)
    what = "computing the report (the KPIs, and the CDI unless it is current; a first report also fills its history)"
    with console.status(what) if console is not None else nullcontext():
        return build_report(store.conn, kpi=settings.kpi, sla=settings.sla, costs=settings.costs,
                            distress_settings=settings.distress, since=period.since, until=period.until, now=now,
                            source=source, customers=settings.customers)


def write_atomically(path: Path, text: str) -> None:
    """Write ``path`` through a temporary file in the same folder, renamed into place: a browser or a web
    server never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(store: Store, settings: Settings, period: Period, *, now: int, source: str | None = None,
                 out: Path | None = None, console: Any = None) -> tuple[Path, ReportData]:
    """``period``'s report (only ``source``'s tickets, if given) written atomically to ``out`` (default: a dated
    name in the current folder); returns the file written and its data (``deskpulse report`` and the demo)."""
    check_source(store.conn, settings, source)
    data = build(store, settings, period, now=now, source=source, console=console)
    target = out or Path(f"deskpulse-report-{data.period['since']}-to-{data.period['last_day']}.html")
    try:
        write_atomically(target, render(data))
    except OSError as exc:
        raise DeskpulseError(f"cannot write the report to {target}: {exc.strerror or exc}") from None
    return target, data


def week_report_name(week: str) -> str:
    return f"deskpulse-report-{week}.html"


def week_report_url(settings: Settings, week: str) -> str | None:
    """Where the digest links for ``week``'s report: ``[report] url`` + the file name (None without a url)."""
    if not settings.report.url or not settings.report.dir:
        return None
    return settings.report.url.rstrip("/") + "/" + week_report_name(week)


def write_week_report(store: Store, settings: Settings, week: str, *, now: int) -> Path:
    """The report for the 12 weeks ending with ``week`` into ``[report] dir`` (kept if already written)."""
    assert settings.report.dir is not None
    target = Path(settings.report.dir) / week_report_name(week)
    if target.exists():
        return target
    monday, next_monday = iso_week_bounds(week)
    period = weeks_ending(monday, next_monday, settings.kpi.timezone)
    data = build(store, settings, period, now=now)
    write_atomically(target, render(data))
    log.info("report for %s written to %s", week, target)
    return target
