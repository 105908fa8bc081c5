"""``deskpulse digest``: preview the weekly Slack digest, or post it once per week with ``--post``."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from config.errors import UsageError
from kpi_engine.digest import render_terminal
from sync.cli.context import get_ctx
from sync.digest_job import LEASE_S, build_payload, last_complete_week, post_once

#: ``--week`` years: week arithmetic on year 1 or 9999 overflows (the trend reaches 8 weeks back)
MIN_WEEK_YEAR, MAX_WEEK_YEAR = 1970, 2099


def parse_week(text: str) -> str:
    """``--week``: an ISO week ``YYYY-Www`` that exists, in 1970..2099; a one-line usage error otherwise."""
    from kpi_engine.digest_input import iso_week_bounds

    try:
        monday, _ = iso_week_bounds(text)
    except OverflowError:  # e.g. 9999-W52: its Sunday is in year 10000
        raise UsageError(f"--week {text.strip()} is outside {MIN_WEEK_YEAR}-W01..{MAX_WEEK_YEAR}-W52") from None
    except ValueError as exc:
        raise UsageError(f"--week: {exc}") from None
    if not MIN_WEEK_YEAR <= monday.isocalendar()[0] <= MAX_WEEK_YEAR:
        raise UsageError(f"--week {text.strip()} is outside {MIN_WEEK_YEAR}-W01..{MAX_WEEK_YEAR}-W52")
    year, num, _ = monday.isocalendar()
    return f"{year}-W{num:02d}"


def register(app: typer.Typer) -> None:
    """Add ``deskpulse digest`` to the CLI."""

    @app.command()
    def digest(
        ctx: typer.Context,
        week: Annotated[str | None, typer.Option("--week", help="ISO week YYYY-Www (default: last complete week).")]
        = None,
        post: Annotated[bool, typer.Option("--post", help="Send to Slack (once per week; a repeat is a no-op).")]
        = False,
        force: Annotated[bool, typer.Option("--force", help="With --post: post a week that is not over (a partial "
                                            "digest, recorded apart from the week's own), or re-send a post whose "
                                            "outcome is unknown and cannot be checked (webhook).")] = False,
        fmt: Annotated[str, typer.Option("--format", help="text (preview) or json (the Slack payload)")] = "text",
    ) -> None:
        """The weekly Slack digest: a preview by default, posted with --post."""
        if fmt not in ("text", "json"):
            raise UsageError(f"--format must be text or json, not '{fmt}'")
        if force and not post:
            raise UsageError("--force only makes sense with --post")
        actx = get_ctx(ctx)
        settings = actx.settings(required=post)
        week = parse_week(week) if week else last_complete_week(time.time(), settings.kpi.timezone)
        with actx.store(settings) as store:
            if post:
                # Waits for another process's claim on the week (a daemon posting right now) to resolve, so
                # the exit code reports the real outcome; failures and unknown outcomes raise (exit 1).
                outcome = post_once(store, settings, week, force=force, wait_s=LEASE_S + 5)
                actx.console.print(f"digest {week}: {outcome}", markup=False, highlight=False)
                if outcome.startswith("not posted"):
                    raise typer.Exit(1)
                return
            payload = build_payload(store, settings, week)
        if fmt == "json":
            actx.console.print_json(json.dumps(payload, ensure_ascii=False))
        else:
            actx.console.print(render_terminal(payload), markup=False, highlight=False)
