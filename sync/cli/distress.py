"""``deskpulse distress``: accounts by priority with their Customer Distress Index, band, trend and reasons.

Running it refreshes the derived data it reads: new customer messages get their sentiment
score, missing days of CDI history are backfilled (so the trend arrow means something on a
fresh install) and today's snapshot is recorded, the same steps the daemon runs.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from config.errors import UsageError
from kpi_engine.distress import CdiResult
from sync.cli.context import AppContext, get_ctx
from sync.distress_job import distress_view

BAND_STYLE = {"green": "bold green", "yellow": "bold yellow", "red": "bold red"}
FORMATS = ("table", "json")


def run_distress(actx: AppContext, *, source: str | None = None) -> CdiResult:
    """:func:`sync.distress_job.distress_view` on the command's store (shared with the demo); the store must
    exist (a typo'd --db must not create one)."""
    settings = actx.settings(required=False)
    path = actx.store_path(settings)
    if str(path) != ":memory:" and not path.exists():
        raise UsageError(f"no store at {path}: run 'deskpulse sync' (or 'deskpulse demo') first, or pass --db")
    with actx.store(settings) as store:
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
    for col, justify in (("#", "right"), ("account", "left"), ("source", "left"), ("CDI", "right"),
                         ("band", "left"), ("trend", "center"), ("priority", "right"), ("top reasons", "left")):
        table.add_column(col, justify=justify, overflow="fold")
    for rank, acct in enumerate(shown, start=1):
        # account names come from the helpdesk: escaped, or Rich eats "[beta]" and fails on "[/x]";
        # a customer on several helpdesks lists one source per line (a source name never breaks mid-word)
        table.add_row(str(rank), escape(acct.name or acct.account), escape("\n".join(acct.sources or [acct.source])),
                      str(acct.cdi),
                      Text(acct.band, style=BAND_STYLE.get(acct.band, "")), acct.trend or "–",
                      f"{acct.priority:.0f}", escape(", ".join(acct.top_reasons)) or "–")
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
