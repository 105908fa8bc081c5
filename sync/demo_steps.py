"""The demo's steps after the sync: each shows one capability on the synced store.

Kept apart from ``sync/demo.py`` so each capability adds its own step; every
step uses the same commands' code paths as the CLI (no demo-only logic).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from config.settings import Settings
from sync.context import AppContext

Step = Callable[[AppContext, Settings, list], dict[str, Any] | None]


def distress_step(actx: AppContext, settings: Settings, sims: list) -> dict[str, Any]:
    from sync.cmd_distress import print_table, run_distress

    actx.console.rule("Customer Distress Index")
    result = run_distress(actx)
    print_table(actx, result, 10)
    return {"distress": result}


def writeback_step(actx: AppContext, settings: Settings, sims: list) -> dict[str, Any]:
    from sync.cmd_writeback import print_plan, run_writeback

    actx.console.rule("Write-back plan (dry run: nothing is written)")
    planned, _ = run_writeback(actx, settings, do_apply=False)
    print_plan(actx, planned, limit=15)
    return {"writeback": planned}


STEPS: list[Step] = [distress_step, writeback_step]
