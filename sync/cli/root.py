"""The ``deskpulse`` command line: the Typer app, its root callback, the command list, and :func:`main`.

One root callback sets up what every command shares (the :class:`AppContext`, logging, and redaction of every
configured secret), so no command can forget it. Commands live one per module in this package and are listed in
:data:`COMMANDS` by a plain import: a command module that fails to import is an import error of the CLI, never a
command silently missing. Every command raises deskpulse errors instead of printing and exiting itself;
:func:`main` turns them into one line on stderr and the documented exit code (0 ok, 1 runtime failure, 2 bad
usage/config), with every configured secret masked. Tracebacks only with ``-vv``.

The pipeline (``sync.*`` outside this package) never imports the CLI: import-linter checks it (pyproject.toml).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from config.errors import DeskpulseError, UsageError
from config.settings import Settings
from sync.cli import daemon, demo, digest, distress, kpi, report, sim, status, survey, sync_cmd, writeback
from sync.cli.context import AppContext
from sync.logs import setup_logging
from sync.redaction import Redactor

app = typer.Typer(
    name="deskpulse",
    help="Sync Zendesk, Freshdesk and Intercom into SQLite, compute support KPIs, flag distressed "
    "customers and post a weekly Slack digest.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Every command module, in ``deskpulse --help`` order; each has ``register(app)``. Listed, never discovered.
COMMANDS = (sync_cmd, status, sim, demo, kpi, survey, distress, writeback, digest, report, daemon)


class _Session:
    """What :func:`main` needs after a command failed: the command's context and the redactor installed for it."""

    actx: AppContext | None = None
    redactor: Redactor = Redactor()


def _install_redaction(actx: AppContext) -> None:
    """Settings hook: once a command loads its settings, logging and the error printer mask every secret in them."""

    def install(settings: Settings) -> None:
        _Session.redactor = Redactor.from_settings(settings)
        setup_logging(actx.verbose, actx.log_format, _Session.redactor)

    actx.on_settings = install


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
    """Global options shared by every command.

    Settings load lazily (``sim``, ``demo`` and ``kpi --list`` need no config file), but whenever a command loads
    them, redaction of every secret in them is installed (:func:`_install_redaction`); an error raised before
    that still gets them masked, since :func:`main` loads the settings to build its redactor.
    """
    if log_format not in ("text", "json"):
        raise UsageError(f"--log-format must be 'text' or 'json', not '{log_format}'")
    actx = AppContext(config_path=config, db_path=db, verbose=verbose, log_format=log_format)
    _install_redaction(actx)
    ctx.obj = _Session.actx = actx
    setup_logging(verbose, log_format)


for _command in COMMANDS:
    _command.register(app)


def _redactor() -> Redactor:
    """The redactor for an error message: the command's, or (settings not loaded yet) one built now.

    A command may fail before it loads its settings (a bad option value echoed back, a store path): the
    configured secrets are still masked. A config that does not load has no secrets to mask here; its own
    error is what is being printed.
    """
    actx = _Session.actx
    if actx is not None and not actx.settings_loaded:
        try:
            actx.settings(required=False)  # installs the redactor through the settings hook
        except Exception:  # noqa: BLE001,S110 - the error being reported matters, not this one
            pass
    return _Session.redactor


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
    _Session.actx, _Session.redactor = None, Redactor()  # in-process callers (tests) run main more than once
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
        print(f"error: {_one_line(_redactor().redact(exc.format_message()))}", file=sys.stderr)  # type: ignore[attr-defined]  # noqa: T201,E501
        return 2
    except _CLICK_EXCEPTION as exc:
        print(f"error: {_one_line(_redactor().redact(exc.format_message()))}", file=sys.stderr)  # type: ignore[attr-defined]  # noqa: T201,E501
        return int(getattr(exc, "exit_code", 1))
    except DeskpulseError as exc:
        print(f"error: {_one_line(_safe(exc))}", file=sys.stderr)  # noqa: T201
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)  # noqa: T201
        return 130
    except OSError as exc:  # the machine, not deskpulse: a full disk, a missing or unreadable file
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: {_one_line(_redactor().redact(f'{exc.strerror or exc}{where}'))}", file=sys.stderr)  # noqa: T201
        return 1
    except Exception as exc:  # noqa: BLE001 - a bug must still not print a secret or a raw traceback
        print(f"internal error: {_one_line(_safe(exc, with_type=True))} (please report; -vv for details)",  # noqa: T201
              file=sys.stderr)
        if "-vv" in (argv or sys.argv):
            import traceback

            print(_redactor().redact(traceback.format_exc()), file=sys.stderr)  # noqa: T201
        return 1
    # Typer returns the command's return value, or the code of a ``typer.Exit`` it caught. Commands return None.
    return code if isinstance(code, int) and not isinstance(code, bool) else 0


def _safe(exc: BaseException, *, with_type: bool = False) -> str:
    """The message with every configured secret masked."""
    text = f"{type(exc).__name__}: {exc}" if with_type else str(exc)
    return _redactor().redact(text)

