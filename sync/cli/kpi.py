"""``deskpulse kpi``: the KPI catalog over the store, as a table, JSON or CSV.

The command only parses and formats; every number comes from
:func:`kpi_engine.engine.compute`, every definition from the registry.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from config.errors import UsageError
from kpi_engine.engine import compute
from kpi_engine.periods import Period, local_date, parse_date
from kpi_engine.registry import CATALOG, NOT_COMPUTABLE
from kpi_engine.units import arrow, humanize
from kpi_engine.workspace import DIMENSIONS
from sync.cli.context import AppContext, get_ctx
from sync.cli.fit import is_narrow
from sync.kpi_facts import check_source, refresh_kpi_facts

FORMATS = ("table", "json", "csv")
DEFAULT_DAYS = 30
#: the dates a period may span: epochs outside them overflow (year 1 or 9999) and no helpdesk has such data
MIN_DATE, MAX_DATE = date(1970, 1, 1), date(2100, 1, 1)
#: the columns of the breakdown table (the full set is in --format json/csv)
HEADLINE = (("tickets_created", "created"), ("tickets_solved", "solved"), ("first_response_time_median_s", "FRT med"),
            ("full_resolution_time_median_s", "resol. med"), ("csat_pct", "CSAT"), ("backlog_size", "backlog"))


#: the customer column of ``--by organization``, narrow and wide (its helpdesks, when they do not fit, become a count)
NAME_WIDTH, WIDE_NAME_WIDTH = 16, 44


def resolve_period(since: str | None, until: str | None, timezone: str, today: date) -> Period:
    """Dates -> Period; default: the last 30 days ending today (``until`` is exclusive).

    Both dates must lie in 1970-01-01..2100-01-01 (a one-line usage error otherwise): year 1 or 9999 overflows
    the epoch arithmetic mid-computation. A default derived from the other date is clamped to that range.
    """
    try:
        end = parse_date(until) if until else None
        start = parse_date(since) if since else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    for flag, day in (("--since", start), ("--until", end)):
        if day is not None and not MIN_DATE <= day <= MAX_DATE:
            raise UsageError(f"{flag} {day} is outside {MIN_DATE}..{MAX_DATE}")
    if end is None:
        end = today + timedelta(days=1) if start is None or start <= today else \
            min(start + timedelta(days=DEFAULT_DAYS), MAX_DATE)
    if start is None:
        start = max(end - timedelta(days=DEFAULT_DAYS), MIN_DATE)
    if start >= end:
        raise UsageError(f"--since {start} must be before --until {end} (--until is exclusive)")
    return Period.from_dates(start, end, timezone)


def _flat(name: str, value: Any) -> list[tuple[str, str]]:
    """CSV cells: scalars as is, backlog_age flattened, lists as JSON."""
    if isinstance(value, dict):
        return [(f"{name}.{k}", "" if v is None else str(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [(name, json.dumps(value, separators=(",", ":")))]
    return [(name, "" if value is None else str(value))]


def to_csv(result: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    breakdown = result.get("breakdown")
    if breakdown is None:
        writer.writerow(["kpi", "value"])
        for name, value in result["kpis"].items():
            writer.writerows(_flat(name, value))
        return out.getvalue()
    writer.writerow(["key", "kpi", "value"])
    for key, kpis in [("(all)", result["kpis"])] + [(row["key"], row["kpis"]) for row in breakdown]:
        for name, value in kpis.items():
            for cell_name, cell in _flat(name, value):
                writer.writerow([key, cell_name, cell])
    return out.getvalue()


def render_table(app: AppContext, result: dict[str, Any], currency: str, by: str | None,
                 business: bool | None = None) -> None:
    """The human view. ``business``: whether a schedule is configured (None: any business value present)."""
    if business is None:
        business = any(v is not None for k, v in result["kpis"].items() if k.endswith("_business"))
    period = result["period"]
    title = f"KPIs {period['since']} → {period['until']} (until exclusive, {period['timezone']})"
    table = Table(title=title)
    table.add_column("KPI", no_wrap=True)
    table.add_column("value", justify="right")
    kpis = result["kpis"]
    families = list(dict.fromkeys(kpi.family for kpi in CATALOG))
    for family in families:
        table.add_row(f"[bold]{family}[/bold]", "")
        for kpi in CATALOG:
            if kpi.family != family or kpi.name == "monthly_ticket_volume":
                continue  # the monthly list has its own table
            if kpi.name.endswith("_business") and not business:
                continue  # business variants need a schedule
            table.add_row(f"  {kpi.name}", humanize(kpi.name, kpis[kpi.name], currency))
    app.console.print(table)
    for name, reason in (result.get("reasons") or {}).items():  # e.g. CSAT a helpdesk API does not serve
        app.console.print(f"{name}: {reason}", style="yellow", markup=False)
    if not business:
        app.console.print("business-hours variants: configure [kpi] business_hours", style="dim", markup=False)
    volume = kpis.get("monthly_ticket_volume") or []
    if volume:
        months = Table(title="Monthly ticket volume")
        for col in ("month", "tickets", "MoM", "YoY", "partial"):
            months.add_column(col, justify="right" if col != "month" else "left")
        for m in volume:
            months.add_row(m["month"], f"{m['tickets']:,}", arrow(m["mom_change_pct"]) or "—",
                           arrow(m["yoy_change_pct"]) or "—", "yes" if m["is_partial"] else "")
        app.console.print(months)
    if by is not None:
        narrow = is_narrow(app.console)  # 80 columns: no outer border, names cut at NAME_WIDTH (one row, 2 lines)
        rows = Table(title=f"By {by} (all KPIs: --format json or csv)", show_edge=not narrow)
        name_width = NAME_WIDTH if narrow else WIDE_NAME_WIDTH
        if by == "organization":  # one row per customer, its helpdesks on a second line (fits 80 columns)
            rows.add_column("customer", no_wrap=True, overflow="ellipsis", max_width=name_width)
        else:
            rows.add_column(by, no_wrap=True, max_width=NAME_WIDTH if narrow else 24)
        for _, label in HEADLINE:
            rows.add_column(label, justify="right", no_wrap=True)
        for row in result.get("breakdown", []):
            cells = [humanize(name, row["kpis"][name], currency) for name, _ in HEADLINE]
            if by == "organization":  # helpdesk text as Text: never read as markup
                who = Text(str(row.get("name") or row["key"]))
                sources = row.get("sources") or []
                joined = ", ".join(sources)
                if sources:  # two lines at most: the helpdesks' names, or their count when they do not fit
                    who.append("\n" + (joined if len(joined) <= name_width else f"{len(sources)} helpdesks"),
                               style="dim")
                rows.add_row(who, *cells)
                continue
            rows.add_row(escape(str(row["key"])), *cells)  # a group/tag name from the helpdesk: no markup
        app.console.print(rows)


def list_text() -> str:
    lines = []
    for kpi in CATALOG:
        lines.append(f"{kpi.name} [{kpi.family}, {kpi.unit}]\n    {kpi.definition}")
    lines.append("\nNot computable from helpdesk data (not faked):")
    for name, reason in NOT_COMPUTABLE:
        lines.append(f"{name}\n    {reason}")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add ``deskpulse kpi`` to the CLI."""

    @app.command("kpi")
    def kpi_command(
        ctx: typer.Context,
        since: str | None = typer.Option(None, "--since", help="first day (YYYY-MM-DD, inclusive, reporting tz)"),
        until: str | None = typer.Option(None, "--until", help="day after the last (YYYY-MM-DD, exclusive)"),
        source: str | None = typer.Option(None, "--source", help="only this source"),
        by: str | None = typer.Option(None, "--by", help=f"break down by {'|'.join(DIMENSIONS)}"),
        fmt: str = typer.Option("table", "--format", help="table | json | csv"),
        list_kpis: bool = typer.Option(False, "--list", help="print every KPI's definition and exit"),
    ) -> None:
        """Support KPIs over the synced store (default: the last 30 days)."""
        app = get_ctx(ctx)
        if list_kpis:
            typer.echo(list_text())
            return
        if fmt not in FORMATS:
            raise UsageError(f"unknown --format '{fmt}' (use table, json or csv)")
        if by is not None and by not in DIMENSIONS:
            raise UsageError(f"unknown --by '{by}' (use one of: {', '.join(DIMENSIONS)})")
        settings = app.settings(required=False)
        now = int(app.clock())
        period = resolve_period(since, until, settings.kpi.timezone, local_date(now, settings.kpi.timezone))
        store = app.store(settings)
        try:
            check_source(store.conn, settings, source)
            refresh_kpi_facts(store, settings.kpi, app.err_console, now=now)
            result = compute(store.conn, kpi=settings.kpi, sla=settings.sla, costs=settings.costs,
                             since=period.since, until=period.until, source=source, by=by, now=now,
                             customers=settings.customers)
        finally:
            store.close()
        if fmt == "json":
            typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
        elif fmt == "csv":
            typer.echo(to_csv(result), nl=False)
        else:
            render_table(app, result, settings.costs.currency, by, bool(settings.kpi.business_hours))

