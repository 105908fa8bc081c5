"""``deskpulse writeback``: show (default) or apply (--apply) the predicted-distress ticket writes.

Planning and writing are the pipeline's (:func:`sync.writeback.run_writeback`); this module parses and prints.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from config.errors import UsageError
from config.settings import Settings
from sync import writeback as pipeline_writeback
from sync.cli.context import AppContext, get_ctx
from sync.cli.fit import is_narrow, is_wide, short_reason
from sync.writeback import ApplyReport, Plan, PlannedWrite


def print_plan(actx: AppContext, planned: Plan, *, limit: int = 50) -> None:
    console = actx.console
    if planned.cdi is not None:
        console.print(planned.cdi.describe(), markup=False)
    if not planned.flagged:
        console.print("No account is red or rising fast: nothing to write.")
        return
    table = Table(title=f"planned writes ({len(planned.writes)})", title_justify="left", show_edge=False)
    if is_narrow(console):
        # each write on two lines: the ticket with its helpdesk under it, the change, the short reason
        table.add_column("ticket", no_wrap=True, overflow="ellipsis", max_width=18)
        table.add_column("write", no_wrap=True, overflow="ellipsis", max_width=24)
        table.add_column("reason", overflow="fold", min_width=20)
        for write in planned.writes[:limit]:
            where = Text(write.ticket_id)
            where.append("\n" + write.source, style="dim")
            table.add_row(where, Text(_what(write, short=True)), Text(short_reason(write.reason)))
    else:
        for col in ("source", "ticket", "write", "reason"):
            table.add_column(col, overflow="fold")
        for write in planned.writes[:limit]:
            reason = write.reason if is_wide(console) else short_reason(write.reason)
            table.add_row(escape(write.source), escape(write.ticket_id), escape(_what(write)), escape(reason))
    console.print(table)
    if len(planned.writes) > limit:
        console.print(f"…and {len(planned.writes) - limit} more")
    if planned.skipped:
        console.print("skipped: " + ", ".join(f"{k} {v}" for k, v in sorted(planned.skipped.items())))


def _what(write: PlannedWrite, *, short: bool = False) -> str:
    """``tag +deskpulse_distress`` (``+deskpulse_distress`` when short), ``tag -…``, or ``field <name>``."""
    if write.action in ("add_tag", "remove_tag"):
        sign = "+" if write.action == "add_tag" else "-"
        return f"{sign}{write.value}" if short else f"tag {sign}{write.value}"
    return f"field {write.value.split('=', 1)[0]}"


def run_writeback(actx: AppContext, settings: Settings, *, do_apply: bool,
                  limit: int | None = None) -> tuple[Plan, ApplyReport | None]:
    """:func:`sync.writeback.run_writeback` on the command's store and clock (shared with the demo)."""
    with actx.store(settings) as store:
        return pipeline_writeback.run_writeback(store, settings, do_apply=do_apply, limit=limit, clock=actx.clock)


def register(app: typer.Typer) -> None:
    """Add ``deskpulse writeback`` to the CLI."""

    @app.command()
    def writeback(
        ctx: typer.Context,
        do_apply: Annotated[bool, typer.Option("--apply", help="Write to the helpdesks (default: dry run).")] = False,
        limit: Annotated[int | None, typer.Option("--limit", min=0, help="At most N writes (default: "
                                                  "[writeback] max_writes_per_run).")] = None,
        fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    ) -> None:
        """Plan the predicted-distress tags/fields; writes only with --apply."""
        if fmt not in ("table", "json"):
            raise UsageError(f"--format must be table or json, not '{fmt}'")
        actx = get_ctx(ctx)
        settings = actx.settings()
        planned, report = run_writeback(actx, settings, do_apply=do_apply, limit=limit)
        if fmt == "json":
            actx.console.print_json(json.dumps({
                "planned": [w.__dict__ for w in planned.writes], "skipped": planned.skipped,
                "flagged": [f.__dict__ for f in planned.flagged],
                "cdi": None if planned.cdi is None else planned.cdi.__dict__,
                "applied": None if report is None else report.__dict__}))
            if report is not None and report.failed:
                raise typer.Exit(1)
            return
        print_plan(actx, planned)
        if report is None:
            actx.console.print("Dry run: nothing was written. Run with --apply to write.")
            return
        actx.console.print(f"applied {report.applied}, gone {report.gone}, refused {report.refused}, "
                           f"failed {report.failed}" + (f", {report.capped} left by the cap" if report.capped else ""))
        for error in report.errors[:10]:
            actx.console.print(f"failed: {error}", markup=False, highlight=False)
        if len(report.errors) > 10:
            actx.console.print(f"…and {len(report.errors) - 10} more failed write(s): see 'deskpulse status'")
        if report.failed:
            raise typer.Exit(1)
