"""``deskpulse distress``: accounts by priority with their Customer Distress Index, band, trend and reasons.

Running it refreshes the derived data it reads: new customer messages get their sentiment
score, missing days of CDI history are backfilled (so the trend arrow means something on a
fresh install) and today's snapshot is recorded, the same steps the daemon runs.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import JustifyMethod
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from config.errors import UsageError
from kpi_engine.distress import AccountCdi, CdiResult
from sync.cli.context import AppContext, get_ctx
from sync.cli.fit import is_narrow, is_wide, reasons_text
from sync.distress_job import distress_view

BAND_STYLE = {"green": "bold green", "yellow": "bold yellow", "red": "bold red"}
FORMATS = ("table", "json")
#: the customer column of the narrow layout (its helpdesks, when they do not fit, become a count)
NARROW_NAME = 24


def run_distress(actx: AppContext, *, source: str | None = None) -> CdiResult:
    """:func:`sync.distress_job.distress_view` on the command's store (shared with the demo); the store must
    exist (a typo'd --db must not create one)."""
    settings = actx.settings(required=False)
    path = actx.store_path(settings)
    if str(path) != ":memory:" and not path.exists():
        raise UsageError(f"no store at {path}: run 'deskpulse sync' (or 'deskpulse demo') first, or pass --db")
    with actx.store(settings) as store, actx.err_console.status(
            "computing the CDI (new messages' sentiment, and 14 days of history on a new store)"):
        return distress_view(store, settings, now=int(actx.clock()), source=source)


def to_json(result: CdiResult, top: int) -> str:
    """The stable script format: ``CdiResult.to_dict()`` with ``accounts`` cut to ``top`` (0 = all)."""
    doc = result.to_dict()
    doc["total_accounts"] = len(result.accounts)
    if top:
        doc["accounts"] = doc["accounts"][:top]
    return json.dumps(doc, ensure_ascii=False, indent=2)


def print_table(actx: AppContext, result: CdiResult, top: int) -> None:
    console = actx.console
    if not result.accounts:
        console.print("No account was active in the last 90 days: nothing to score.")
        return
    shown = result.accounts[:top] if top else result.accounts
    method = "percentile ranks" if result.method == "percentile" else "min-max vs reference values"
    table = Table(title=f"Customer Distress Index, {result.day} ({result.active_accounts} active accounts, {method})",
                  title_justify="left", show_edge=False)
    if is_narrow(console):
        _narrow_rows(table, shown)
    else:
        _full_rows(table, shown, long_reasons=is_wide(console))
    console.print(table)
    hidden_red = sum(1 for a in result.accounts[len(shown):] if a.band == "red")
    if hidden_red:
        console.print(f"[bold red]+{hidden_red} more red account(s)[/] below the top {len(shown)} "
                      "(smaller or newer customers); use --top 0 to list every account.")
    elif len(result.accounts) > len(shown):
        console.print(f"…and {len(result.accounts) - len(shown)} more accounts (--top 0 lists all).")
    counts = result.band_counts()
    console.print(f"bands: {counts['cdi_red']} red, {counts['cdi_yellow']} yellow, {counts['cdi_green']} green")
    for note in result.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")


def _narrow_rows(table: Table, shown: list[AccountCdi]) -> None:
    """Below :data:`~sync.cli.fit.NARROW` columns: each account on at most two lines. The customer's name with its
    helpdesks under it (each line cut with an ellipsis, never wrapped), CDI and trend in one cell, short reasons;
    the priority is the order of the rows (its value, and everything else, is in ``--format json``)."""
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("customer", no_wrap=True, overflow="ellipsis", max_width=NARROW_NAME)
    table.add_column("CDI", justify="right", no_wrap=True)
    table.add_column("band", no_wrap=True)
    table.add_column("top reasons", overflow="fold", min_width=16)
    for rank, acct in enumerate(shown, start=1):
        # helpdesk text (names, reasons) goes in as Text: never read as markup, so "[beta]" shows and "[/x]" is safe
        sources = acct.sources or [acct.source]
        joined = ", ".join(sources)
        who = Text(acct.name or acct.account)
        who.append("\n" + (joined if len(joined) <= NARROW_NAME else f"{len(sources)} helpdesks"), style="dim")
        table.add_row(str(rank), who, f"{acct.cdi} {acct.trend or '–'}",
                      Text(acct.band, style=BAND_STYLE.get(acct.band, "")),
                      Text(reasons_text(acct.top_reasons, short=True) or "–"))


def _full_rows(table: Table, shown: list[AccountCdi], *, long_reasons: bool) -> None:
    """Every column; the reasons in the engine's words only where they fit (:data:`~sync.cli.fit.WIDE`)."""
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("#", "right"), ("account", "left"), ("source", "left"), ("CDI", "right"), ("band", "left"),
        ("trend", "center"), ("priority", "right"), ("top reasons", "left"))
    for col, justify in columns:
        table.add_column(col, justify=justify, overflow="fold")
    for rank, acct in enumerate(shown, start=1):
        # account names come from the helpdesk: escaped, or Rich eats "[beta]" and fails on "[/x]";
        # a customer on several helpdesks lists one source per line (a source name never breaks mid-word)
        table.add_row(str(rank), escape(acct.name or acct.account), escape("\n".join(acct.sources or [acct.source])),
                      str(acct.cdi),
                      Text(acct.band, style=BAND_STYLE.get(acct.band, "")), acct.trend or "–",
                      f"{acct.priority:.0f}", escape(reasons_text(acct.top_reasons, short=not long_reasons)) or "–")


def register(app: typer.Typer) -> None:
    """Add ``deskpulse distress`` to the CLI."""

    @app.command()
    def distress(
        ctx: typer.Context,
        top: Annotated[int, typer.Option("--top", min=0, help="Show the N highest-priority accounts (0 = all).")] = 20,
        fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
        source: Annotated[str | None, typer.Option("--source", help="Only this source's accounts.")] = None,
    ) -> None:
        """Accounts by priority with their Customer Distress Index (CDI), band, trend and top reasons."""
        if fmt not in FORMATS:
            raise UsageError(f"--format must be table or json, not '{fmt}'")
        actx = get_ctx(ctx)
        result = run_distress(actx, source=source)
        if fmt == "json":
            typer.echo(to_json(result, top))
        else:
            print_table(actx, result, top)
