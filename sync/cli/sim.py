"""``deskpulse sim``: one built-in simulator in the foreground on 127.0.0.1, for trying a config by hand."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from config.errors import DeskpulseError
from sync.cli.context import get_ctx
from sync.cli.demo import MAX_DEMO_TICKETS
from sync.simulators import start_simulator


def register(app: typer.Typer) -> None:
    """Add ``deskpulse sim`` to the CLI."""

    @app.command()
    def sim(
        ctx: typer.Context,
        kind: Annotated[str, typer.Argument(help="an installed helpdesk kind, or slack")],
        port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Loopback port (0: any free port).")] = 0,
        tickets: Annotated[int, typer.Option("--tickets", min=1, max=MAX_DEMO_TICKETS,
                                             help="Tickets in the generated world.")] = 3000,
        seed: Annotated[int, typer.Option("--seed", help="World seed (same seed, same world).")] = 7,
    ) -> None:
        """Run one simulator in the foreground on 127.0.0.1 until Ctrl-C."""
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
