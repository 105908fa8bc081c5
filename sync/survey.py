"""``deskpulse import-survey``: NPS / CES / CSAT responses from a CSV file into ``ratings``.

CSV columns (header row required, names case-insensitive):

- ``email`` or ``external_id`` (at least one of the columns; each row needs one): who answered,
  matched to ``people.email`` (case-insensitive) or ``people.external_id`` when possible
- ``score``: nps 0-10, ces 1-7 (CES 2.0 agreement), csat 1-5; whole numbers
- ``date``: ISO date (``2026-03-02``, taken as 00:00 UTC) or ISO date-time (with offset; naive = UTC)
- ``comment`` (optional), ``ticket_id`` (optional: the helpdesk ticket the answer is about)

Every row is validated; a bad row is reported with its line number and skipped, the good
rows are kept. A row's id is a hash of its content, so importing the same file again
updates the same rows instead of duplicating them.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import typer

from config.errors import UsageError
from sync.context import get_ctx
from sync.store import Store

KINDS = {"nps": (0, 10), "ces": (1, 7), "csat": (1, 5)}


@dataclass
class ImportReport:
    path: str
    kind: str
    source: str
    rows: int = 0
    imported: int = 0
    matched: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


def _parse_when(text: str) -> int:
    text = text.strip()
    try:
        if len(text) == 10:
            return int(datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC).timestamp())
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"date '{text}' is not an ISO date or date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _parse_score(text: str, kind: str) -> int:
    low, high = KINDS[kind]
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"score '{text}' is not a number") from None
    if value != int(value):
        raise ValueError(f"score {text.strip()} is not a whole number")
    if not low <= value <= high:
        raise ValueError(f"score {int(value)} is outside {low}-{high} for {kind}")
    return int(value)


def _score_1_5(kind: str, score: int) -> float:
    """Every rating keeps a 1-5 view: csat as is, nps/ces mapped linearly onto 1-5."""
    low, high = KINDS[kind]
    return float(score) if kind == "csat" else round(1 + 4 * (score - low) / (high - low), 3)


def _person(store: Store, email: str, external_id: str) -> tuple[str, str] | None:
    if email:
        row = store.conn.execute("SELECT source, id FROM people WHERE lower(email) = lower(?) "
                                 "ORDER BY source, id LIMIT 1", [email]).fetchone()
        if row:
            return row[0], row[1]
    if external_id:
        row = store.conn.execute("SELECT source, id FROM people WHERE external_id = ? ORDER BY source, id LIMIT 1",
                                 [external_id]).fetchone()
        if row:
            return row[0], row[1]
    return None


def import_survey(store: Store, path: Path | str, kind: str, source: str = "survey") -> ImportReport:
    """Validate and upsert every good row of the CSV; raise UsageError when the file itself is unusable."""
    if kind not in KINDS:
        raise UsageError(f"unknown --kind '{kind}' (use nps, ces or csat)")
    path = Path(path)
    report = ImportReport(str(path), kind, source)
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise UsageError(f"cannot read survey file {path}: {exc.strerror or exc}") from None
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header:
            raise UsageError(f"survey file {path} is empty (a header row is required)")
        columns = [h.strip().lower() for h in header]
        missing = [c for c in ("score", "date") if c not in columns]
        if "email" not in columns and "external_id" not in columns:
            missing.append("email or external_id")
        if missing:
            raise UsageError(f"survey file {path} lacks column(s): {', '.join(missing)}")
        rows: list[dict[str, Any]] = []
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            report.rows += 1
            cells = {name: (values[i].strip() if i < len(values) else "") for i, name in enumerate(columns)}
            try:
                row = _row(store, cells, kind, source, line, report)
            except ValueError as exc:
                report.errors.append((line, str(exc)))
                continue
            rows.append(row)
    with store.transaction():
        store.upsert("ratings", rows)
    report.imported = len(rows)
    return report


def _row(store: Store, cells: dict[str, str], kind: str, source: str, line: int,
         report: ImportReport) -> dict[str, Any]:
    email, external_id = cells.get("email", ""), cells.get("external_id", "")
    if not email and not external_id:
        raise ValueError("neither email nor external_id is given")
    score = _parse_score(cells.get("score", ""), kind)
    when = _parse_when(cells.get("date", ""))
    digest = hashlib.sha1(json.dumps([kind, sorted(cells.items())]).encode(), usedforsecurity=False).hexdigest()
    person = _person(store, email, external_id)
    if person:
        report.matched += 1
    return {
        "id": f"{kind}-{digest[:24]}", "source": source, "kind": kind,
        "ticket_id": cells.get("ticket_id") or None,
        "requester_id": person[1] if person else None,
        "score_raw": cells.get("score"), "score": float(score), "score_1_5": _score_1_5(kind, score),
        "comment": cells.get("comment") or None, "created_at": when,
        "raw": {"line": line, "row": cells, "person_source": person[0] if person else None,
                "imported_at": int(time.time())},
    }


def register(app: typer.Typer) -> None:
    """Add ``deskpulse import-survey`` to the CLI."""

    @app.command("import-survey")
    def import_survey_command(
        ctx: typer.Context,
        file: Path = typer.Argument(..., help="CSV with email|external_id, score, date[, comment, ticket_id]"),
        kind: str = typer.Option(..., "--kind", help="nps | ces | csat"),
        source: str = typer.Option("survey", "--source", help="source name stored on the ratings"),
    ) -> None:
        """Import NPS/CES/CSAT survey responses from a CSV file."""
        app = get_ctx(ctx)
        store = app.store()
        try:
            report = import_survey(store, file, kind, source)
        finally:
            store.close()
        for line, reason in report.errors:
            app.err_console.print(f"line {line}: {reason}", markup=False, highlight=False)
        app.console.print(f"{report.imported} of {report.rows} {kind} responses imported from {file} "
                          f"({report.matched} matched to people); {len(report.errors)} skipped",
                          markup=False, highlight=False)
