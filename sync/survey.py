"""Survey import: NPS / CES / CSAT responses from a CSV file into ``ratings`` (``deskpulse import-survey``).

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

import codecs
import csv
import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from config.errors import UsageError
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
    skipped: int = 0
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


def _index_people(store: Store) -> None:
    """Respondents are matched by e-mail (case-insensitive) or external_id; ``people`` has no index on either,
    so one pass builds TEMP lookup tables (first match by source, id, as before) instead of a scan per row."""
    conn = store.conn
    conn.execute("DROP TABLE IF EXISTS temp.survey_email")
    conn.execute("DROP TABLE IF EXISTS temp.survey_external")
    conn.execute("CREATE TEMP TABLE survey_email (k TEXT PRIMARY KEY, source TEXT, id TEXT) WITHOUT ROWID")
    conn.execute("CREATE TEMP TABLE survey_external (k TEXT PRIMARY KEY, source TEXT, id TEXT) WITHOUT ROWID")
    conn.execute("INSERT OR IGNORE INTO temp.survey_email SELECT lower(email), source, id FROM people "
                 "WHERE email IS NOT NULL AND email != '' ORDER BY source, id")
    conn.execute("INSERT OR IGNORE INTO temp.survey_external SELECT external_id, source, id FROM people "
                 "WHERE external_id IS NOT NULL AND external_id != '' ORDER BY source, id")


def _person(store: Store, email: str, external_id: str) -> tuple[str, str] | None:
    if email:
        row = store.conn.execute("SELECT source, id FROM temp.survey_email WHERE k = lower(?)", [email]).fetchone()
        if row:
            return row[0], row[1]
    if external_id:
        row = store.conn.execute("SELECT source, id FROM temp.survey_external WHERE k = ?",
                                 [external_id]).fetchone()
        if row:
            return row[0], row[1]
    return None


BATCH_ROWS = 5_000
MAX_REPORTED_ERRORS = 1_000


def check_encoding(path: Path, encoding: str) -> None:
    """Decode the whole file once before importing anything, so a wrong encoding is one clear error, not a
    half-imported file: Excel's "CSV" export is Windows-1252 (Latin-1-like), not UTF-8."""
    try:
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    except LookupError:
        raise UsageError(f"--encoding '{encoding}' is not a known text encoding (try utf-8-sig or cp1252)") from None
    line = 1
    try:
        with path.open("rb") as raw:
            while chunk := raw.read(1 << 20):
                try:
                    text = decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    line += chunk[: exc.start].count(b"\n")
                    raise UsageError(
                        f"survey file {path} is not {encoding} (line {line}, byte 0x{chunk[exc.start]:02x}); "
                        f"Excel exports are often Windows-1252: rerun with --encoding cp1252") from None
                line += text.count("\n")
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise UsageError(f"survey file {path} ends inside a {encoding} character (truncated?)") from None
    except OSError as exc:
        raise UsageError(f"cannot read survey file {path}: {exc.strerror or exc}") from None


def import_survey(store: Store, path: Path | str, kind: str, source: str = "survey", *,
                  encoding: str = "utf-8-sig") -> ImportReport:
    """Validate and upsert every good row of the CSV; raise UsageError when the file itself is unusable.

    Rows are committed in batches of ``BATCH_ROWS`` so memory stays flat for million-row exports; each batch
    is one transaction, so an interrupted import keeps whole batches and a rerun upserts the same ids.
    """
    if kind not in KINDS:
        raise UsageError(f"unknown --kind '{kind}' (use nps, ces or csat)")
    path = Path(path)
    report = ImportReport(str(path), kind, source)
    check_encoding(path, encoding)
    try:
        handle = path.open(encoding=encoding, newline="")
    except OSError as exc:
        raise UsageError(f"cannot read survey file {path}: {exc.strerror or exc}") from None
    _index_people(store)
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise UsageError(f"survey file {path}: header row is not valid CSV ({exc})") from None
        if not header:
            raise UsageError(f"survey file {path} is empty (a header row is required)")
        columns = [h.strip().lower() for h in header]
        missing = [c for c in ("score", "date") if c not in columns]
        if "email" not in columns and "external_id" not in columns:
            missing.append("email or external_id")
        if missing:
            raise UsageError(f"survey file {path} lacks column(s): {', '.join(missing)}")
        batch: list[dict[str, Any]] = []
        while True:
            try:
                values = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:  # e.g. a field over csv.field_size_limit (128 KiB): that row only
                report.rows += 1
                _bad(report, reader.line_num, f"not valid CSV ({exc})")
                continue
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            report.rows += 1
            cells = {name: (values[i].strip() if i < len(values) else "") for i, name in enumerate(columns)}
            try:
                row = _row(store, cells, kind, source, line, report)
            except ValueError as exc:
                _bad(report, line, str(exc))
                continue
            batch.append(row)
            if len(batch) >= BATCH_ROWS:
                _flush(store, batch, report)
        _flush(store, batch, report)
    return report


def _bad(report: ImportReport, line: int, reason: str) -> None:
    """Count every bad row; keep the first MAX_REPORTED_ERRORS reasons (a broken export must not fill memory)."""
    report.skipped += 1
    if len(report.errors) < MAX_REPORTED_ERRORS:
        report.errors.append((line, reason))


def _flush(store: Store, batch: list[dict[str, Any]], report: ImportReport) -> None:
    if batch:
        with store.transaction():
            store.upsert("ratings", batch)
        report.imported += len(batch)
        batch.clear()


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
