"""``deskpulse sync``: incrementally sync every configured source, with a progress display on a terminal.

The run itself is the pipeline's (:func:`sync.pipeline.sync_and_refresh`); this module parses, shows
progress and prints the per-source table. (Named ``sync_cmd``: ``sync.cli.sync`` would read as the package.)
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from config.errors import UsageError
from config.settings import Settings
from sync.cli.context import AppContext, get_ctx
from sync.cli.fit import is_narrow, is_wide
from sync.engine import SourceReport
from sync.pipeline import sync_and_refresh


def run_sync(actx: AppContext, *, only: str | None = None, full: bool = False,
             settings_override: Settings | None = None) -> list[SourceReport]:
    """Sync with a progress display on a terminal (shared by ``sync`` and ``demo``)."""
    settings = settings_override or actx.settings()
    if not settings.sources:
        raise UsageError("no sources configured: add a [[sources]] table to the config (see "
                         "config/deskpulse.example.toml)")
    store = actx.store(settings)
    console = actx.console
    progress = Progress(SpinnerColumn(), TextColumn("[bold]{task.fields[source]}[/]"),
                        TextColumn("{task.fields[stream]:<22}"), BarColumn(bar_width=None),
                        TextColumn("{task.fields[rows]:>9,} rows"), TimeElapsedColumn(),
                        console=console, transient=False, disable=not console.is_terminal)
    tasks: dict[str, TaskID] = {}
    totals: dict[str, int] = {}
    last: dict[tuple[str, str], int] = {}

    def on_page(source: str, stream: str, page: object, rows: int) -> None:
        if source not in tasks:
            tasks[source] = progress.add_task("sync", total=None, source=source, stream=stream, rows=0)
        totals[source] = totals.get(source, 0) + (rows - last.get((source, stream), 0))
        last[(source, stream)] = rows
        progress.update(tasks[source], stream=stream, rows=totals[source])

    try:
        with progress:
            reports = sync_and_refresh(store, settings, only=only, full=full, on_page=on_page, console=console)
            for report in reports:
                if report.source in tasks:
                    progress.update(tasks[report.source], stream="done" if report.ok else "failed", total=1,
                                    completed=1)
    finally:
        store.close()
    return reports


def print_reports(actx: AppContext, reports: list[SourceReport]) -> None:
    """One row per source. Below :data:`~sync.cli.fit.WIDE` columns a failure's text goes under the table, whole
    (a result column a few dozen characters wide would fold it over many lines); wider, it stays in its row."""
    console = actx.console
    narrow, errors_below = is_narrow(console), not is_wide(console)
    table = Table(title="sync", title_justify="left", show_edge=False)
    for col in ("source", "kind", "rows", "requests", "seconds", "result"):
        table.add_column(col, justify="right" if col in ("rows", "requests", "seconds") else "left",
                         no_wrap=narrow and col != "result")
    below: list[str] = []
    for rep in reports:
        errors = [f"{s.stream}: {s.error}" for s in rep.streams if s.error]
        error_text = "; ".join(errors or [rep.error or "failed"])
        # error text comes from servers and exceptions: escaped, or a "[/x]" in it breaks the table (MarkupError)
        if rep.ok:
            result = "[green]ok[/]"
        elif errors_below:
            result = "[red]failed (below)[/]"
            below.append(f"{rep.source}: {error_text}")
        else:
            result = "[red]" + escape(error_text) + "[/]"
        if rep.ok and rep.stopped:
            result = "[yellow]stopped: the next run resumes" + ("[/]" if narrow else
                                                                  " from the last committed page[/]")
        table.add_row(escape(rep.source), rep.kind, f"{rep.rows:,}",
                      "" if rep.requests is None else f"{rep.requests:,}", f"{rep.seconds:.1f}", result)
    console.print(table)
    for line in below:
        console.print(Text.assemble(("failed", "red"), " ", line), highlight=False)  # one print: wraps as one line


def register(app: typer.Typer) -> None:
    """Add ``deskpulse sync`` to the CLI."""

    @app.command()
    def sync(
        ctx: typer.Context,
        source: Annotated[str | None, typer.Option("--source", help="Only this configured source.")] = None,
        full: Annotated[bool, typer.Option("--full", help="Ignore stored cursors and re-read all history.")] = False,
    ) -> None:
        """Incrementally sync every configured source into the store."""
        actx = get_ctx(ctx)
        if source:
            actx.settings().source(source)
        reports = run_sync(actx, only=source, full=full)
        print_reports(actx, reports)
        if not all(r.ok and not r.stopped for r in reports):
            raise typer.Exit(1)
