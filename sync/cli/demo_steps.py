"""The demo's steps after the sync: each shows one capability on the synced store.

Kept apart from ``sync/cli/demo.py`` so each capability adds its own step; every
step uses the same commands' code paths as the CLI (no demo-only logic).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import SecretStr

from config.settings import Settings
from sync.cli.context import AppContext

Step = Callable[[AppContext, Settings, list], dict[str, Any] | None]


def kpi_step(actx: AppContext, settings: Settings, sims: list) -> dict[str, Any]:
    from kpi_engine.engine import compute
    from kpi_engine.periods import local_date
    from sync.cli.kpi import render_table, resolve_period

    actx.console.rule("KPIs, last 30 days, all helpdesks")
    now = int(actx.clock())
    period = resolve_period(None, None, settings.kpi.timezone, local_date(now, settings.kpi.timezone))
    with actx.store(settings) as store:
        result = compute(store.conn, kpi=settings.kpi, sla=settings.sla, costs=settings.costs, since=period.since,
                         until=period.until, now=now)
    render_table(actx, result, settings.costs.currency, None)
    return {"kpis": result}


def distress_step(actx: AppContext, settings: Settings, sims: list) -> dict[str, Any]:
    from sync.cli.distress import print_table, run_distress

    actx.console.rule("Customer Distress Index")
    result = run_distress(actx)
    print_table(actx, result, 10)
    return {"distress": result}


def writeback_step(actx: AppContext, settings: Settings, sims: list) -> dict[str, Any]:
    from sync.cli.writeback import print_plan, run_writeback

    actx.console.rule("Write-back plan (dry run: nothing is written)")
    planned, _ = run_writeback(actx, settings, do_apply=False)
    print_plan(actx, planned, limit=15)
    return {"writeback": planned}


def digest_step(actx: AppContext, settings: Settings, sims: list) -> dict[str, Any]:
    from connectors.sim.slack import SlackSim
    from connectors.slack import SlackClient
    from kpi_engine.digest import render_terminal
    from sync.digest_job import build_payload, last_complete_week
    from sync.simulators import start_simulator

    week = last_complete_week(actx.clock(), settings.kpi.timezone)
    actx.console.rule(f"Weekly Slack digest for {week} (posted to the Slack simulator)")
    with actx.store(settings) as store:
        payload = build_payload(store, settings, week, now=actx.clock())
    actx.console.print(render_terminal(payload), markup=False, highlight=False)
    slack = start_simulator("slack")
    try:
        slack_settings = settings.slack.model_copy(update={"webhook_url": SecretStr(slack.source["webhook_url"])})
        with SlackClient(slack_settings) as client:
            client.post(payload)
        actx.console.print(f"Slack simulator accepted the digest: {len(payload['blocks'])} blocks, within Block Kit "
                           "limits. 'deskpulse digest --post' sends it to your channel, once per week.")
    finally:
        slack.server.stop()
    sim = slack.sim
    assert isinstance(sim, SlackSim), sim  # what start_simulator("slack") builds
    return {"digest": payload, "slack_messages": list(sim.messages)}


def report_step(actx: AppContext, settings: Settings, sims: list) -> dict[str, Any]:
    from sync.cli.report import write_report

    actx.console.rule("HTML report (the last 12 weeks)")
    store_path = actx.store_path(settings)
    target, _ = write_report(actx, out=store_path.with_name(store_path.stem + "-report.html"))
    actx.console.print(f"Report written to {target.resolve()} (one self-contained file: open it in a browser).",
                       markup=False, highlight=False, soft_wrap=True)
    return {"report": target}


STEPS: list[Step] = [kpi_step, distress_step, writeback_step, digest_step, report_step]
