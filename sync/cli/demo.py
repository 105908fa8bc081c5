"""``deskpulse demo``: the whole product on the built-in simulators, with no credentials.

It generates one world, serves it as Zendesk, Freshdesk and Intercom on
loopback ports, syncs all three into one store with the real connectors and
engine, then shows what a support lead would see.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from config.errors import UsageError
from config.settings import Settings
from sync.cli import demo_steps
from sync.cli.context import AppContext, get_ctx
from sync.cli.fit import is_narrow
from sync.cli.sync_cmd import print_reports, run_sync
from sync.simulators import DEMO_SPEEDUP, RunningSim, make_world, start_simulator
from sync.store import Store

#: ``demo``/``sim --tickets`` ceiling: each simulator holds its own copy of the generated world in memory
#: (100,000 tickets measured at ~750 MB per copy, the demo keeps four), so 50,000 stays near 1.5 GB.
MAX_DEMO_TICKETS = 50_000
DEMO_DB = Path("deskpulse-demo.db")
DEFAULT_KINDS = ("zendesk", "freshdesk", "intercom")

DEMO_SETTINGS: dict[str, Any] = {
    "kpi": {
        "timezone": "Europe/Berlin",
        "business_hours": {d: "09:00-17:00" for d in ("mon", "tue", "wed", "thu", "fri")},
        "holidays": ["2026-12-25", "2026-12-26", "2027-01-01"],
    },
    "costs": {"monthly_total": 42000},
    "sla": {"first_reply": {3: 60, 2: 240, 1: 480}, "resolution": {3: 480, 2: 1440, 1: 4320}},
    "distress": {"tag": "deskpulse_distress"},
}


def demo_settings(sims: list[RunningSim], db: Path) -> Settings:
    return Settings(store={"path": db}, sources=[s.source for s in sims], **DEMO_SETTINGS)


def run_demo(actx: AppContext, *, tickets: int, seed: int, kinds: list[str]) -> dict[str, Any]:
    """Run the demo; returns what it showed (tests assert on it)."""
    if not 10 <= tickets <= MAX_DEMO_TICKETS:  # the CLI bounds it too; a larger world runs out of memory
        raise UsageError(f"--tickets {tickets} is outside 10..{MAX_DEMO_TICKETS:,}")
    console = actx.console
    kinds = kinds or list(DEFAULT_KINDS)
    db = actx.db_path or DEMO_DB
    if actx.db_path is None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    console.rule("[bold]deskpulse demo")
    started = time.monotonic()
    world = make_world(tickets, seed)
    console.print(f"Generated a support history: {len(world.tickets):,} tickets, {len(world.orgs):,} organizations, "
                  f"{len(world.people):,} people (seed {seed}) in {time.monotonic() - started:.1f}s")
    sims = [start_simulator(kind, world=world, speedup=DEMO_SPEEDUP) for kind in kinds]
    shown: dict[str, Any] = {"db": str(db)}
    try:
        for sim in sims:
            console.print(f"  {sim.kind:<9} simulator at {sim.url}")
        settings = demo_settings(sims, db)
        actx.db_path = db
        actx.use_settings(settings)  # every later step sees the demo's configuration
        t0 = time.monotonic()
        reports = run_sync(actx, settings_override=settings)
        elapsed = time.monotonic() - t0
        print_reports(actx, reports)
        shown["sync"] = reports
        shown["counts"] = _print_counts(actx, db, [s.source["name"] for s in sims])
        total_tickets = sum(c["tickets"] for c in shown["counts"].values())
        console.print(f"Synced {total_tickets:,} tickets from {len(sims)} helpdesks in {elapsed:.1f}s "
                      f"({total_tickets / max(elapsed, 1e-9):,.0f} tickets/s, simulator limits scaled "
                      f"{DEMO_SPEEDUP}x).")
        for step in demo_steps.STEPS:
            shown.update(step(actx, settings, sims) or {})
    finally:
        for sim in sims:
            sim.server.stop()
    console.print(f"\nThe store is [bold]{escape(str(db))}[/]. Explore it: deskpulse --db {escape(str(db))} "
                  "status | kpi | distress")
    return shown


#: the store-counts headers below NARROW columns (eight columns fit 80 only with these)
SHORT_HEADERS = {"messages": "msgs", "organizations": "orgs", "ticket_events": "events", "quarantine": "quar."}


def _print_counts(actx: AppContext, db: Path, sources: list[str]) -> dict[str, dict[str, int]]:
    """The store's row counts per source. Narrow: short headers, and the quarantine column only when a record
    was quarantined (a source name is never cut)."""
    with Store(db) as store:
        counts = {source: store.counts(source) for source in sources}
    narrow = is_narrow(actx.console)
    columns = [c for c in ("tickets", "messages", "people", "organizations", "ratings", "ticket_events", "quarantine")
               if not (narrow and c == "quarantine" and not any(n[c] for n in counts.values()))]
    table = Table(title="what is in the store", title_justify="left", show_edge=False)
    table.add_column("source", no_wrap=True)
    for col in columns:
        table.add_column(SHORT_HEADERS.get(col, col) if narrow else col, justify="right", no_wrap=True)
    for source in sources:
        table.add_row(escape(source), *(f"{counts[source][c]:,}" for c in columns))
    actx.console.print(table)
    return counts


def register(app: typer.Typer) -> None:
    """Add ``deskpulse demo`` to the CLI."""

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
        shown = run_demo(get_ctx(ctx), tickets=tickets, seed=seed, kinds=[k for k in kinds.split(",") if k])
        if not all(report.ok for report in shown.get("sync", [])):
            raise typer.Exit(1)  # the table above says which simulator's sync failed
