"""The ``deskpulse`` command line (Typer + Rich).

Every command raises deskpulse errors instead of printing and exiting itself;
:func:`main` turns them into one line on stderr and the documented exit code
(0 ok, 1 runtime failure, 2 bad usage/config), with every configured secret
masked. Tracebacks only with ``-vv``.
"""

from __future__ import annotations

import logging
import sqlite3
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from config.errors import DeskpulseError, UsageError
from sync.context import AppContext, get_ctx
from sync.engine import SourceReport, SyncEngine, stop_on_signals
from sync.kpi_facts import refresh_kpi_facts
from sync.logs import setup_logging
from sync.redaction import Redactor

logger = logging.getLogger("deskpulse.sync")
#: ``demo``/``sim --tickets`` ceiling: each simulator holds its own copy of the generated world in memory
#: (100,000 tickets measured at ~750 MB per copy, the demo keeps four), so 50,000 stays near 1.5 GB.
MAX_DEMO_TICKETS = 50_000

app = typer.Typer(
    name="deskpulse",
    help="Sync Zendesk, Freshdesk and Intercom into SQLite, compute support KPIs, flag distressed "
    "customers and post a weekly Slack digest.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option("--config", help="Config file (default ./deskpulse.toml or "
                                                "$DESKPULSE_CONFIG).", envvar=None)] = None,
    db: Annotated[Path | None, typer.Option("--db", help="SQLite store path (overrides the config's store path).",
                                            envvar="DESKPULSE_DB")] = None,
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")] = 0,
    log_format: Annotated[str, typer.Option("--log-format", help="Log format: text or json.")] = "text",
) -> None:
    """Global options shared by every command."""
    if log_format not in ("text", "json"):
        raise UsageError(f"--log-format must be 'text' or 'json', not '{log_format}'")
    ctx.obj = AppContext(config_path=config, db_path=db, verbose=verbose, log_format=log_format)
    setup_logging(verbose, log_format)


_REDACTOR = Redactor()


def _configure_redaction(actx: AppContext) -> Redactor:
    """Once settings are loaded, re-install logging (and the error printer) with their secrets masked."""
    global _REDACTOR
    _REDACTOR = Redactor.from_settings(actx.settings())
    setup_logging(actx.verbose, actx.log_format, _REDACTOR)
    return _REDACTOR


def run_sync(actx: AppContext, *, only: str | None = None, full: bool = False,
             settings_override: object | None = None) -> list[SourceReport]:
    """Sync with a progress display on a terminal (shared by ``sync`` and ``demo``)."""
    settings = settings_override or actx.settings()
    if not settings.sources:  # type: ignore[union-attr]
        raise UsageError("no sources configured: add a [[sources]] table to the config (see "
                         "config/deskpulse.example.toml)")
    store = actx.store(settings)  # type: ignore[arg-type]
    console = actx.console
    show = console.is_terminal
    progress = Progress(SpinnerColumn(), TextColumn("[bold]{task.fields[source]}[/]"),
                        TextColumn("{task.fields[stream]:<22}"), BarColumn(bar_width=None),
                        TextColumn("{task.fields[rows]:>9,} rows"), TimeElapsedColumn(),
                        console=console, transient=False, disable=not show)
    tasks: dict[str, int] = {}

    def on_page(source: str, stream: str, page: object, rows: int) -> None:
        if source not in tasks:
            tasks[source] = progress.add_task("sync", total=None, source=source, stream=stream, rows=0)
        totals[source] = totals.get(source, 0) + (rows - last.get((source, stream), 0))
        last[(source, stream)] = rows
        progress.update(tasks[source], stream=stream, rows=totals[source])

    totals: dict[str, int] = {}
    last: dict[tuple[str, str], int] = {}
    engine = SyncEngine(store, settings, on_page=on_page)  # type: ignore[arg-type]
    try:
        with progress, stop_on_signals(engine.stop):  # SIGTERM/SIGINT: stop at once, resume next run
            reports = engine.sync_all(only=only, full=full)
            for report in reports:
                if report.source in tasks:
                    progress.update(tasks[report.source], stream="done" if report.ok else "failed", total=1,
                                    completed=1)
        try:
            if not engine.stop.is_set():  # stopping: the next KPI run refreshes them
                refresh_kpi_facts(store, settings.kpi, console)  # type: ignore[union-attr]
        except sqlite3.Error as exc:  # not the sync's contract: its data is committed; the next KPI run refreshes
            logger.warning("KPI facts not refreshed (%s); the next KPI run will do it", exc)
    finally:
        store.close()
    return reports


def print_reports(actx: AppContext, reports: list[SourceReport]) -> None:
    table = Table(title="sync", title_justify="left", show_edge=False)
    for col in ("source", "kind", "rows", "requests", "seconds", "result"):
        table.add_column(col, justify="right" if col in ("rows", "requests", "seconds") else "left")
    for rep in reports:
        errors = [f"{s.stream}: {s.error}" for s in rep.streams if s.error]
        # error text comes from servers and exceptions: escaped, or a "[/x]" in it breaks the table (MarkupError)
        result = "[green]ok[/]" if rep.ok else "[red]" + escape("; ".join(errors or [rep.error or "failed"])) + "[/]"
        if rep.ok and rep.stopped:
            result = "[yellow]stopped: the next run resumes from the last committed page[/]"
        table.add_row(escape(rep.source), rep.kind, f"{rep.rows:,}",
                      "" if rep.requests is None else f"{rep.requests:,}", f"{rep.seconds:.1f}", result)
    actx.console.print(table)


@app.command()
def sync(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option("--source", help="Only this configured source.")] = None,
    full: Annotated[bool, typer.Option("--full", help="Ignore stored cursors and re-read all history.")] = False,
) -> None:
    """Incrementally sync every configured source into the store."""
    actx = get_ctx(ctx)
    _configure_redaction(actx)
    if source:
        actx.settings().source(source)
    reports = run_sync(actx, only=source, full=full)
    print_reports(actx, reports)
    if not all(r.ok and not r.stopped for r in reports):
        raise typer.Exit(1)


@app.command()
def status(ctx: typer.Context) -> None:
    """Per source and stream: cursor, last run, rows, errors; the outbox backlog."""
    from sync.status import show_status

    show_status(get_ctx(ctx))


@app.command()
def sim(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="zendesk, freshdesk, intercom or slack")],
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Loopback port (0: any free port).")] = 0,
    tickets: Annotated[int, typer.Option("--tickets", min=1, max=MAX_DEMO_TICKETS,
                                         help="Tickets in the generated world.")] = 3000,
    seed: Annotated[int, typer.Option("--seed", help="World seed (same seed, same world).")] = 7,
) -> None:
    """Run one simulator in the foreground on 127.0.0.1 until Ctrl-C."""
    from sync.simulators import start_simulator

    actx = get_ctx(ctx)
    try:
        running = start_simulator(kind, port=port, tickets=tickets, seed=seed)
    except OSError as exc:  # typically the port is taken: the operator's environment, not a bug
        raise DeskpulseError(f"cannot serve the {kind} simulator on 127.0.0.1:{port}: "
                             f"{exc.strerror or exc}") from None
    actx.console.print(f"{kind} simulator on [bold]{running.url}[/] ({tickets:,} tickets, seed {seed})")
    for line in running.config_lines:
        actx.console.print(f"  {line}")
    actx.console.print("Ctrl-C to stop.")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        running.server.stop()


@app.command()
def demo(
    ctx: typer.Context,
    tickets: Annotated[int, typer.Option("--tickets", min=10, max=MAX_DEMO_TICKETS,
                                         help=f"Tickets per simulated helpdesk (at most {MAX_DEMO_TICKETS:,}).")]
    = 3000,
    seed: Annotated[int, typer.Option("--seed", help="World seed.")] = 7,
    kinds: Annotated[str, typer.Option("--kinds", help="Comma-separated helpdesks to simulate.")] = "",
) -> None:
    """Start the built-in simulators, sync them, and show what deskpulse sees. No credentials needed."""
    from sync.demo import run_demo

    shown = run_demo(get_ctx(ctx), tickets=tickets, seed=seed, kinds=[k for k in kinds.split(",") if k])
    if not all(report.ok for report in shown.get("sync", [])):
        raise typer.Exit(1)  # the table above says which simulator's sync failed


def _register_commands() -> None:
    """Commands that live in their own modules register themselves here."""
    import importlib

    for module in ("sync.cmd_kpi", "sync.survey", "sync.cmd_distress", "sync.cmd_writeback", "sync.cmd_digest",
                   "sync.cmd_report", "sync.daemon"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                continue
            raise
        mod.register(app)


_register_commands()


#: Click's exception classes exactly as Typer raises them. Typer 0.2x bundles its own copy of Click
#: (``typer._click``), so ``click.UsageError`` from the click package never matches what it raises; the public
#: ``typer.BadParameter`` is a subclass of both, whichever Click Typer uses, so they are taken from its MRO.
_CLICK_USAGE_ERROR: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
_CLICK_EXCEPTION: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def _one_line(text: str) -> str:
    """Error text folded onto one line: a scheduler's log keeps one record per failure."""
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: one line per error, exit codes per DESIGN.md.

    0 only when everything asked succeeded; 1 when any source, stream, write or post failed (commands say so
    by raising ``typer.Exit(1)`` after printing their table, or a :class:`DeskpulseError`); 2 for bad usage
    or config; 130 on Ctrl-C. Click runs with ``standalone_mode=False`` so errors reach the handlers below
    instead of Click's multi-line usage box; in that mode Click *returns* a ``typer.Exit`` code instead of
    raising it, so the return value is the exit code.
    """
    try:
        code = app(args=argv, standalone_mode=False)
    except typer.Exit as exc:  # raised outside a command (Typer catches it inside one and returns the code)
        return exc.exit_code
    except typer.Abort:
        print("aborted", file=sys.stderr)  # noqa: T201
        return 130
    except _CLICK_USAGE_ERROR as exc:  # unknown command or option, bad option value, missing argument
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare ``deskpulse``: the help is the message
            help_text = exc.format_message()  # type: ignore[attr-defined]
            if help_text.strip():  # Typer's Rich help printed itself already; plain Click hands it back
                print(help_text)  # noqa: T201
            print("error: no command given ('deskpulse --help' lists them)", file=sys.stderr)  # noqa: T201
            return 2
        print(f"error: {_one_line(exc.format_message())}", file=sys.stderr)  # type: ignore[attr-defined]  # noqa: T201
        return 2
    except _CLICK_EXCEPTION as exc:
        print(f"error: {_one_line(_REDACTOR.redact(exc.format_message()))}", file=sys.stderr)  # type: ignore[attr-defined]  # noqa: T201,E501
        return int(getattr(exc, "exit_code", 1))
    except DeskpulseError as exc:
        print(f"error: {_one_line(_safe(exc))}", file=sys.stderr)  # noqa: T201
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)  # noqa: T201
        return 130
    except OSError as exc:  # the machine, not deskpulse: a full disk, a missing or unreadable file
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: {_one_line(_REDACTOR.redact(f'{exc.strerror or exc}{where}'))}", file=sys.stderr)  # noqa: T201
        return 1
    except Exception as exc:  # noqa: BLE001 - a bug must still not print a secret or a raw traceback
        print(f"internal error: {_one_line(_safe(exc, with_type=True))} (please report; -vv for details)",  # noqa: T201
              file=sys.stderr)
        if "-vv" in (argv or sys.argv):
            import traceback

            print(_REDACTOR.redact(traceback.format_exc()), file=sys.stderr)  # noqa: T201
        return 1
    # Typer returns the command's return value, or the code of a ``typer.Exit`` it caught. Commands return None.
    return code if isinstance(code, int) and not isinstance(code, bool) else 0


def _safe(exc: BaseException, *, with_type: bool = False) -> str:
    """The message with every configured secret masked."""
    text = f"{type(exc).__name__}: {exc}" if with_type else str(exc)
    return _REDACTOR.redact(text)


if __name__ == "__main__":
    sys.exit(main())
