"""``deskpulse daemon``: the scheduled pipeline (:class:`sync.daemon.Daemon`) in the foreground, or once."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from config.errors import ConfigError
from sync.cli.context import AppContext, get_ctx
from sync.daemon import STOP_SIGNALS, Daemon, StoreLock
from sync.engine import stop_on_signals

log = logging.getLogger("deskpulse.daemon")


def register(app: typer.Typer) -> None:
    """Add ``deskpulse daemon`` to the CLI."""

    @app.command()
    def daemon(
        ctx: typer.Context,
        once: Annotated[bool, typer.Option("--once", help="Run every job once, then exit (for cron/CI).")] = False,
    ) -> None:
        """Run sync, KPI snapshot, distress, write-back and the digest on the configured schedule until SIGTERM."""
        actx: AppContext = get_ctx(ctx)
        settings = actx.settings()
        if not settings.sources:
            raise ConfigError("no sources configured: nothing for the daemon to do (add a [[sources]] table)")
        d = Daemon(settings, actx.store_path(settings))
        if once:
            lock = StoreLock(d.db_path)
            lock.acquire()
            try:
                with stop_on_signals(d.stop, STOP_SIGNALS):
                    failed = d.run_once()
            finally:
                lock.release()
            if failed:
                log.error("daemon --once: %d job(s) failed: %s", len(failed), ", ".join(failed))
                raise typer.Exit(1)
            if d.stop.is_set():  # like `deskpulse sync`: not everything asked was done, so not a success
                log.error("daemon --once: stopped before every job had run; the next run resumes")
                raise typer.Exit(1)
            return
        d.run()
