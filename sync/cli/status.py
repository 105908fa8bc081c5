"""``deskpulse status``: what the store knows about every sync stream, the outbox and the schedule."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from config.errors import UsageError
from kpi_engine import fact_store, quality
from sync.cli.context import AppContext, get_ctx
from sync.cli.fit import is_narrow, is_wide
from sync.digest_job import digest_status
from sync.history_notes import archive_lines
from sync.store import Store

FORMATS = ("table", "json")


def _when(epoch: int | None, *, seconds: bool = True) -> str:
    if not epoch:
        return "never"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ" if seconds else "%Y-%m-%d %H:%M")


def _cursor_text(raw: str | None) -> str:
    """Short, human cursor: the interesting field of the JSON cursor, truncated."""
    if raw is None:
        return "-"
    try:
        value = json.loads(raw)
    except ValueError:
        return raw[:24]
    if value is None:
        return "- (full refresh)"
    if isinstance(value, dict):
        for key in ("after_cursor", "start_time", "updated_since", "watermark", "created_since", "since", "high"):
            if value.get(key) is not None:
                return f"{key}={str(value[key])[:24]}"
        first = next((k for k, v in sorted(value.items()) if isinstance(v, str | int | float)), None)
        return f"{first}={str(value[first])[:24]}" if first else "{…}"
    return str(value)[:32]


def status_data(actx: AppContext) -> dict:
    """Everything ``status`` shows, as data (also used by tests and ``--format json`` later)."""
    settings = actx.settings(required=False)
    # no store yet: read an empty in-memory one (same schema, every section empty) instead of creating the file
    store = actx.store(settings) if actx.store_exists(settings) else Store(":memory:")
    try:
        full, changed = fact_store.stale(store.conn, settings.kpi)
        facts = {"tickets": store.scalar("SELECT COUNT(*) FROM kpi_facts"), "changed": changed, "rebuild": full}
        streams = store.query("SELECT * FROM sync_state ORDER BY source, stream")
        outbox = store.query("SELECT kind, status, count(*) AS n FROM outbox GROUP BY kind, status ORDER BY kind")
        failed_writes = store.query(
            "SELECT source, target, status, attempts, last_error, next_attempt_at, updated_at FROM outbox "
            "WHERE kind = 'ticket' AND status IN ('failed', 'dead') AND last_error IS NOT NULL "
            "ORDER BY updated_at DESC, key LIMIT 20")
        quarantine = store.query("SELECT source, stream, count(*) AS n FROM quarantine GROUP BY source, stream")
        jobs = store.query("SELECT value FROM meta WHERE key = 'daemon_jobs'")
        archive = archive_lines(settings, store.conn)  # Freshdesk: history archived before the first sync
        digest = digest_status(store)  # failed / unknown / in-flight digest posts, with reason and next retry
        csat = quality.csat_unavailable(store.conn, None, int(actx.clock()))
    finally:
        store.close()
    return {"streams": streams, "outbox": outbox, "failed_writes": failed_writes, "quarantine": quarantine,
            "kpi_facts": facts, "csat_unavailable": csat, "archive": archive,
            "jobs": json.loads(jobs[0]["value"]) if jobs else [], "digest": digest}


def _cursor_value(raw: str | None) -> object:
    """The stored cursor as JSON data (it is stored as JSON text); text that is not JSON stays a string."""
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def to_json(actx: AppContext, data: dict) -> str:
    """The stable script format of ``deskpulse status --format json`` (shape documented in the README):
    :func:`status_data` plus ``store`` (its path), each stream's ``cursor`` decoded from its stored JSON text.
    Times are epoch seconds (UTC) or null."""
    doc = {"store": str(actx.store_path()), **data,
           "streams": [{**row, "cursor": _cursor_value(row["cursor"])} for row in data["streams"]]}
    return json.dumps(doc, ensure_ascii=False, indent=2, default=str)


def show_status(actx: AppContext) -> None:
    data = status_data(actx)
    console = actx.console
    if not data["streams"]:
        console.print(f"Nothing synced yet into {escape(str(actx.store_path()))}. "
                      "Run 'deskpulse sync' (or 'deskpulse demo').")
    else:
        narrow, wide = is_narrow(console), is_wide(console)
        table = Table(title=f"sync state ({escape(str(actx.store_path()))}{', times in UTC' if narrow else ''})",
                      title_justify="left", show_edge=False)
        # narrow: one line per stream (names cut with an ellipsis, no cursor); below WIDE: the errors go under the
        # table, whole, instead of folding into a column a few characters wide. All of it: --format json.
        columns = ["source", "stream", "status", "last success", "rows"] + ([] if narrow else ["cursor"]) \
            + (["last error"] if wide else [])
        for col in columns:
            if narrow and col in ("source", "stream"):
                # the only columns Rich may shrink (a name is one word: cut with an ellipsis, not wrapped), so
                # the figures beside them are never cut
                table.add_column(col, overflow="ellipsis", max_width=20)
            else:  # wider: the cursor (cells cut with an ellipsis) and the error are the columns that give way
                table.add_column(col, justify="right" if col == "rows" else "left",
                                 no_wrap=col not in ("cursor", "last error"), overflow="fold")
        errors: list[str] = []
        for row in data["streams"]:
            colour = {"ok": "green", "error": "red", "running": "yellow"}.get(row["status"] or "", "white")
            error = row["last_error"] if row["status"] == "error" else ""
            # stored text (names, cursors, server errors) is escaped: Rich would eat "[kpi]" or choke on "[/x]"
            cells: list[str | Text] = [
                escape(row["source"]), escape(row["stream"]), f"[{colour}]{escape(row['status'] or '')}[/]",
                _when(row["last_success_at"], seconds=not narrow), f"{row['rows_total'] or 0:,}"]
            if not narrow:
                cells.append(Text(_cursor_text(row["cursor"]), no_wrap=True, overflow="ellipsis"))
            if wide:
                cells.append(escape(error or ""))
            elif error:
                errors.append(f"{row['source']}/{row['stream']}: {error}")
            table.add_row(*cells)
        console.print(table)
        for line in errors:
            console.print(Text.assemble(("error", "red"), " ", line), highlight=False)  # one print: wraps as one line
    if data["quarantine"]:
        total = sum(r["n"] for r in data["quarantine"])
        console.print(f"[yellow]{total} quarantined record(s)[/]: "
                      + escape(", ".join(f"{r['source']}/{r['stream']} {r['n']}" for r in data["quarantine"])))
    pending = [r for r in data["outbox"] if r["status"] not in ("done",)]
    if data["outbox"]:
        console.print("outbox: " + escape(", ".join(f"{r['kind']} {r['status']} {r['n']}" for r in data["outbox"])))
    elif not pending:
        console.print("outbox: empty")
    for row in data["failed_writes"]:  # newest first, at most 20: each with its one-line reason
        what = (f"retry after {_when(row['next_attempt_at'])}" if row["status"] == "failed"
                else f"given up after {row['attempts']} attempt(s)")
        console.print(f"[red]write failed[/] {row['source']} ticket {row['target']} ({what}): ", end="")
        console.print(row["last_error"], markup=False, highlight=False)
    for entry in data["digest"]:  # the newest week's digest, and any not posted in the last four weeks
        colour = {"done": "green", "posting": "yellow"}.get(entry["status"], "red")
        console.print(f"[{colour}]{escape(entry['line'])}[/]")
    for source, reason in sorted(data["csat_unavailable"].items()):  # KPIs show csat_pct null with this reason
        console.print(f"[yellow]CSAT ({escape(source)})[/]: {escape(reason)}")
    for line in data["archive"]:
        console.print(f"[yellow]history[/]: {escape(line)}")
    facts = data["kpi_facts"]
    if facts["rebuild"]:
        console.print("KPI facts: rebuilt by the next KPI run or sync (new store, upgrade or changed \\[kpi] settings)")
    else:
        console.print(f"KPI facts: {facts['tickets']:,} tickets; changed since the last refresh: {facts['changed']:,}")
    for job in data["jobs"]:
        line = escape(f"job {job['id']}: next run {job.get('next_run') or 'paused'}")
        if job.get("failures"):
            line += f" [red]({job['failures']} failures in a row, backing off until {job.get('backoff_until')})[/]"
        console.print(line)


def register(app: typer.Typer) -> None:
    """Add ``deskpulse status`` to the CLI."""

    @app.command()
    def status(
        ctx: typer.Context,
        fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    ) -> None:
        """Per source and stream: cursor, last run, rows, errors; the outbox backlog."""
        if fmt not in FORMATS:
            raise UsageError(f"--format must be table or json, not '{fmt}'")
        actx = get_ctx(ctx)
        if fmt == "json":
            typer.echo(to_json(actx, status_data(actx)))
        else:
            show_status(actx)
