"""Every CLI table reads well at 80 columns (issue 13, item 4), and every command a script uses has --format json.

The tables render on a real store (one generated world loaded as two Freshdesk sources, so every customer is on
two helpdesks) with a Rich console of 80 and of 120 columns. At 80: no line is longer than the terminal, each
account / write / stream / source takes at most two lines, and the figures a reader came for are still there.
At 120 and wider the full set of columns is back. The JSON outputs are checked through the installed console
script, with COLUMNS=40 so a narrow terminal cannot wrap them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len
from rich.console import Console

from config.settings import Settings
from connectors.sim.world import generate_world
from kpi_engine.distress_rank import LABELS
from kpi_engine.engine import compute
from kpi_engine.periods import Period
from sync.cli.context import AppContext
from sync.cli.demo import _print_counts
from sync.cli.distress import print_table, run_distress
from sync.cli.fit import SHORT_LABELS, short_reason
from sync.cli.kpi import render_table
from sync.cli.status import show_status
from sync.cli.sync_cmd import print_reports
from sync.cli.writeback import print_plan, run_writeback
from sync.engine import SourceReport, StreamReport
from sync.store import Store
from tests.report_kit import NOW
from tests.world_loader import load_world

SOURCES = ("fd-eu", "freshdesk-americas")
LONG_ERROR = ("HTTP 503 from https://acme.freshdesk.com/api/v2/tickets?updated_since=2026-09-01T00:00:00Z "
              "after 6 attempts: Service Unavailable [maintenance window]")


def _settings(db: Path) -> Settings:
    return Settings(store={"path": db}, distress={"tag": "deskpulse_distress"},
                    sources=[{"name": name, "kind": "freshdesk", "base_url": "http://127.0.0.1:9",
                              "api_key": "k-123456"} for name in SOURCES])


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One world as two Freshdesk sources (customers matched across them), and sync state with a failing
    stream whose error and cursor are long."""
    db = tmp_path_factory.mktemp("narrow") / "store.db"
    world = generate_world(seed=11, tickets=500, now=NOW, days=200)
    with Store(db) as store:
        for source in SOURCES:
            load_world(store, world, source=source)
        with store.transaction():
            for i, stream in enumerate(("tickets", "contacts", "satisfaction_ratings", "time_entries")):
                for source in SOURCES:
                    failing = source == SOURCES[1] and stream == "tickets"
                    cursor = json.dumps({"updated_since": "2026-09-21T14:13:20Z", "page_token": "x" * 60})
                    store.conn.execute(
                        "INSERT INTO sync_state (source, stream, cursor, status, last_run_at, last_success_at, "
                        "last_error, rows_total) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (source, stream, cursor, "error" if failing else "ok", NOW, NOW - i * 60,
                         LONG_ERROR if failing else None, 12_345 * (i + 1)))
    return db


def _console(width: int) -> Console:
    return Console(width=width, record=True, color_system=None)


def _actx(db: Path, width: int) -> AppContext:
    return AppContext(db_path=db, console=_console(width), clock=lambda: float(NOW), _settings=_settings(db))


def _lines(actx: AppContext) -> list[str]:
    return actx.console.export_text().splitlines()


def _fits(lines: list[str], width: int) -> None:
    too_long = [line for line in lines if cell_len(line.rstrip()) > width]
    assert not too_long, f"{len(too_long)} line(s) wider than {width}: {too_long[:3]}"


def _row_heights(lines: list[str], starts: Callable[[str], bool]) -> list[int]:
    """Lines taken by each row of the table body: from one line where ``starts`` is true to the next one (the
    body begins after the header rule; a line without a column separator ends the table)."""
    body_start = next(i for i, line in enumerate(lines) if "╇" in line or "┿" in line) + 1
    heights: list[int] = []
    for line in lines[body_start:]:
        if "│" not in line:
            break
        if starts(line):
            heights.append(1)
        else:
            assert heights, f"a continuation line before any row: {line!r}"
            heights[-1] += 1
    return heights


def _first_cell(line: str) -> str:
    """The first cell's text of a table line, with or without the outer border."""
    return line.strip().removeprefix("│").split("│", 1)[0].strip()


# -- distress --------------------------------------------------------------------------------------------------


def test_distress_at_80_columns_two_lines_per_account_with_cdi_band_and_short_reasons(store_path: Path) -> None:
    actx = _actx(store_path, 80)
    result = run_distress(actx)
    print_table(actx, result, 10)
    lines = _lines(actx)
    _fits(lines, 80)
    heights = _row_heights(lines, lambda line: _first_cell(line).isdigit())
    assert len(heights) == 10 and max(heights) <= 2, heights  # was eight lines per account
    text = "\n".join(lines)
    for rank, acct in enumerate(result.accounts[:10], start=1):
        row = next(line for line in lines if _first_cell(line) == str(rank))
        assert (acct.name or "")[:12] in row
        assert re.search(rf"\b{acct.cdi} {re.escape(acct.trend or '–')}", row) and acct.band in row
        top = short_reason(acct.top_reasons[0])
        assert top in text.replace("\n", " ") and top != acct.top_reasons[0]  # e.g. "tone 85p", not "...85th pct"
    assert "2 helpdesks" in text  # a customer on both sources says so on its second line


def test_distress_at_120_columns_keeps_source_trend_and_priority(store_path: Path) -> None:
    actx = _actx(store_path, 120)
    result = run_distress(actx)
    print_table(actx, result, 5)
    lines = _lines(actx)
    _fits(lines, 120)
    header = next(line for line in lines if "┃" in line)
    for col in ("account", "source", "CDI", "band", "trend", "priority", "top reasons"):
        assert col in header
    text = "\n".join(lines)
    assert all(source in text for source in SOURCES)
    assert f"{result.accounts[0].priority:.0f}" in text


def test_distress_at_160_columns_words_reasons_as_the_engine_does(store_path: Path) -> None:
    actx = _actx(store_path, 160)
    result = run_distress(actx)
    print_table(actx, result, 3)
    assert result.accounts[0].top_reasons[0] in actx.console.export_text()  # "negative tone 85th pct"


# -- write-back plan ---------------------------------------------------------------------------------------------


def test_writeback_plan_at_80_columns_two_lines_per_write(store_path: Path) -> None:
    actx = _actx(store_path, 80)
    planned, _ = run_writeback(actx, actx.settings(), do_apply=False)
    assert planned.writes, "the world has a red account: there is something to plan"
    print_plan(actx, planned, limit=8)
    lines = _lines(actx)
    _fits(lines, 80)
    shown = planned.writes[:8]
    heights = _row_heights(lines, lambda line: _first_cell(line) in {w.ticket_id for w in shown})
    assert len(heights) == len(shown) and max(heights) <= 2, heights
    text = "\n".join(lines)
    assert "+deskpulse_distress" in text and f"CDI {planned.flagged[0].cdi} ({planned.flagged[0].band})" in text
    assert all(source in text for source in {w.source for w in shown})


def test_writeback_plan_at_120_columns_has_a_source_column(store_path: Path) -> None:
    actx = _actx(store_path, 120)
    planned, _ = run_writeback(actx, actx.settings(), do_apply=False)
    print_plan(actx, planned, limit=4)
    lines = _lines(actx)
    _fits(lines, 120)
    header = next(line for line in lines if "┃" in line)
    assert all(col in header for col in ("source", "ticket", "write", "reason"))
    heights = _row_heights(lines, lambda line: _first_cell(line) in SOURCES)
    assert heights == [1] * 4  # one line per write


# -- status, sync, demo counts, kpi -----------------------------------------------------------------------------


@pytest.mark.parametrize("width", [80, 120])
def test_status_one_line_per_stream_and_the_error_whole(store_path: Path, width: int) -> None:
    actx = _actx(store_path, width)
    show_status(actx)
    lines = _lines(actx)
    _fits(lines, width)
    heights = _row_heights(lines, lambda line: _first_cell(line) in SOURCES)
    assert heights == [1] * 8, heights  # the stream names, cursors and the error used to fold over 2-4 lines
    text = "\n".join(lines)
    assert "satisfaction_ratings" in text and "24,690" in text and "49,380" in text
    assert ("cursor" in lines[1]) == (width >= 100)  # narrow: the cursor is in --format json
    # the failing stream's error, under the table and whole (no line break inside a word)
    assert f"{SOURCES[1]}/tickets: " + LONG_ERROR in " ".join(line.strip() for line in lines)


@pytest.mark.parametrize("width", [80, 120])
def test_sync_results_one_line_per_source(width: int) -> None:
    actx = AppContext(console=_console(width))
    reports = [SourceReport(source="fd-eu", kind="freshdesk", streams=[StreamReport("tickets", rows=1_234)],
                            seconds=1.5, requests=42),
               SourceReport(source="freshdesk-americas", kind="freshdesk", seconds=3.0, requests=7,
                            streams=[StreamReport("tickets", rows=10, error=LONG_ERROR)])]
    print_reports(actx, reports)
    lines = _lines(actx)
    _fits(lines, width)
    heights = _row_heights(lines, lambda line: _first_cell(line) in ("fd-eu", "freshdesk-americas"))
    assert heights == [1, 1]  # the error is not folded into the row: it follows the table, whole
    text = " ".join(line.strip() for line in lines)
    assert "1,234" in text and "42" in text and "tickets: " + LONG_ERROR in text


def test_demo_store_counts_fit_80_columns_without_cutting_a_source_name(store_path: Path) -> None:
    actx = _actx(store_path, 80)
    counts = _print_counts(actx, store_path, list(SOURCES))
    lines = _lines(actx)
    _fits(lines, 80)
    heights = _row_heights(lines, lambda line: _first_cell(line) in SOURCES)
    assert heights == [1, 1]  # "freshdesk-americas" whole, the headers shortened ("msgs", "orgs", ...)
    assert f"{counts['fd-eu']['messages']:,}" in "\n".join(lines) and "…" not in "\n".join(lines)


@pytest.mark.parametrize("by", ["organization", "agent"])
@pytest.mark.parametrize("width", [80, 120])
def test_kpi_breakdown_two_lines_per_customer(store_path: Path, width: int, by: str) -> None:
    settings = _settings(store_path)
    period = Period.from_dates(date(2026, 6, 1), date(2026, 9, 21), "UTC")
    with Store(store_path) as store:
        result = compute(store.conn, kpi=settings.kpi, sla=settings.sla, costs=settings.costs, since=period.since,
                         until=period.until, now=NOW, by=by, customers=settings.customers)
    actx = _actx(store_path, width)
    render_table(actx, result, "USD", by, business=False)
    lines = _lines(actx)
    _fits(lines, width)
    table = lines[next(i for i, line in enumerate(lines) if line.strip().startswith(f"By {by}")):]
    numbers = [row for row in result["breakdown"] if row["kpis"]["tickets_created"]]
    created = {f"{row['kpis']['tickets_created']:,}" for row in numbers}
    second_lines = {"2 helpdesks", ", ".join(SOURCES), ", ".join(reversed(SOURCES))}
    heights = _row_heights(table, lambda line: _first_cell(line) not in second_lines)
    assert len(heights) == len(result["breakdown"]) and max(heights) <= 2, heights
    if by == "organization":
        assert max(heights) == 2  # the customer's helpdesks on its second line
    assert created <= set(re.findall(r"[\d,]+", "\n".join(table)))


# -- short reasons -----------------------------------------------------------------------------------------------


def test_short_reason_rewrites_percentile_min_max_and_rise_and_leaves_other_text() -> None:
    assert short_reason("negative tone 89th pct") == "tone 89p"
    assert short_reason("tickets per tenure month 40% of ref") == "tenure 40%"
    assert short_reason("tickets (30d) 1st pct") == "30d 1p"
    assert short_reason("CDI 62 (yellow), +44 in 7 days: open tickets 100% of ref, avg time to close 97% of ref") \
        == "CDI 62 (yellow), +44/7d: open 100%, close 97%"
    assert short_reason("slow [sla] replies") == "slow [sla] replies"  # not a known reason: unchanged


def test_every_cdi_component_has_a_short_label() -> None:
    assert set(SHORT_LABELS) == set(LABELS)
    assert len(set(SHORT_LABELS.values())) == len(SHORT_LABELS)  # two components never read the same


# -- --format json through the installed console script -----------------------------------------------------------


@pytest.fixture(scope="module")
def cli_env(store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], dict[str, str]]:
    config = tmp_path_factory.mktemp("cfg") / "deskpulse.toml"
    config.write_text("".join(f'[[sources]]\nname = "{n}"\nkind = "freshdesk"\nbase_url = "http://127.0.0.1:9"\n\n'
                              for n in SOURCES) + '[distress]\ntag = "deskpulse_distress"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKPULSE_")}
    env.update({"COLUMNS": "40", "DESKPULSE_SOURCES__0__API_KEY": "k-123456",
                "DESKPULSE_SOURCES__1__API_KEY": "k-654321"})
    return ["deskpulse", "--config", str(config), "--db", str(store_path)], env


def _json(cli_env: tuple[list[str], dict[str, str]], *args: str) -> Any:
    base, env = cli_env
    proc = subprocess.run([*base, *args, "--format", "json"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_status_json_has_its_documented_shape(cli_env: tuple[list[str], dict[str, str]], store_path: Path) -> None:
    doc = _json(cli_env, "status")
    assert list(doc) == ["store", "streams", "outbox", "failed_writes", "quarantine", "kpi_facts",
                         "csat_unavailable", "archive", "jobs", "digest"]
    assert doc["store"] == str(store_path)
    failing = next(s for s in doc["streams"] if s["status"] == "error")
    assert failing["last_error"] == LONG_ERROR and failing["source"] == SOURCES[1]
    assert failing["cursor"] == {"updated_since": "2026-09-21T14:13:20Z", "page_token": "x" * 60}  # decoded
    assert {"tickets", "changed", "rebuild"} <= set(doc["kpi_facts"])


def test_writeback_json_parses_and_lists_planned_and_flagged(cli_env: tuple[list[str], dict[str, str]]) -> None:
    doc = _json(cli_env, "writeback")
    assert list(doc) == ["planned", "skipped", "flagged", "cdi", "applied"]
    assert doc["applied"] is None  # a dry run
    for write in doc["planned"]:
        assert {"key", "source", "ticket_id", "action", "value", "reason"} <= set(write)
    for account in doc["flagged"]:
        assert {"account", "cdi", "band", "reasons"} <= set(account)


@pytest.mark.parametrize("command", [["distress", "--top", "0"], ["kpi"], ["kpi", "--by", "organization"],
                                     ["digest"]])
def test_json_output_parses_at_40_columns(cli_env: tuple[list[str], dict[str, str]], command: list[str]) -> None:
    doc = _json(cli_env, *command)
    assert isinstance(doc, dict) and doc
