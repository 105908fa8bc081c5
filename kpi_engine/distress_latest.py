"""The latest CDI kept whole, so a reader can take it instead of recomputing it while it is still current.

Why: ``cdi_history`` keeps one row per account and day for trends and write-back, not everything a
:class:`~kpi_engine.distress.CdiResult` holds (names, factors, trends, notes). The daemon computes the CDI after
every sync; its weekly report, run later with no sync in between, recomputed exactly that (5 s of the report's
7 on a million tickets). :func:`load` gives the stored result back only while it is current in the sense
write-back already uses (``sync.writeback.ensure_fresh_cdi``): computed today, no earlier than the last sync
activity of any stream, with the same settings and code. Anything else is a miss, and the caller computes.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import fields
from typing import Any

from config.settings import CustomerSettings, DistressSettings, SlaSettings
from kpi_engine import distress
from kpi_engine.customers import CustomerMap
from kpi_engine.distress import AccountCdi, CdiResult
from kpi_engine.transactions import savepoint

#: bump when the CDI's computation or this record's layout changes: stored results are then never reused
VERSION = 1
_ACCOUNT_FIELDS = tuple(f.name for f in fields(AccountCdi))


def fingerprint(*parts: Any) -> str:
    """What the CDI was computed with (its settings, the SLA targets it reads, the customer matching, the
    timezone), as a short hash; pydantic models and plain values both serialize."""
    blob = json.dumps([VERSION, *[p.model_dump(mode="json") if hasattr(p, "model_dump") else p for p in parts]],
                      sort_keys=True, default=str)
    return hashlib.sha1(blob.encode(), usedforsecurity=False).hexdigest()[:16]


def newest_sync(conn: sqlite3.Connection) -> int:
    """The last sync activity of any stream (a run, a success or an error): data may have changed since."""
    row = conn.execute("SELECT max(max(coalesce(last_run_at, 0), coalesce(last_success_at, 0), "
                       "coalesce(last_error_at, 0))) FROM sync_state").fetchone()
    return int(row[0] or 0) if row else 0


def save(conn: sqlite3.Connection, result: CdiResult, *, fingerprint: str, computed_at: int) -> None:
    """Keep ``result`` (every source's CDI; a one-source view is not kept) as the latest."""
    if result.source is not None:
        return
    doc = {"as_of": result.as_of, "day": result.day, "method": result.method,
           "active_accounts": result.active_accounts, "weights": result.weights, "notes": result.notes,
           "fields": _ACCOUNT_FIELDS,
           "accounts": [[getattr(a, name) for name in _ACCOUNT_FIELDS] for a in result.accounts]}
    with savepoint(conn, "dp_cdi_latest"):
        conn.execute("INSERT INTO cdi_latest (scope, day, computed_at, fingerprint, result) VALUES ('all', ?, ?, ?, ?) "
                     "ON CONFLICT(scope) DO UPDATE SET day = excluded.day, computed_at = excluded.computed_at, "
                     "fingerprint = excluded.fingerprint, result = excluded.result",
                     (result.day, int(computed_at), fingerprint, json.dumps(doc, separators=(",", ":"))))


def load(conn: sqlite3.Connection, *, day: str, fingerprint: str) -> CdiResult | None:
    """The stored CDI if it is current: of ``day``, computed with ``fingerprint``, no earlier than the newest
    sync activity; else None. A store without the table (a read-only copy of an older one) has none."""
    try:
        row = conn.execute("SELECT day, computed_at, fingerprint, result FROM cdi_latest WHERE scope = 'all'"
                           ).fetchone()
    except sqlite3.OperationalError:
        return None
    if row is None or row[0] != day or row[2] != fingerprint or int(row[1]) < newest_sync(conn):
        return None
    doc = json.loads(row[3])
    if tuple(doc["fields"]) != _ACCOUNT_FIELDS:
        return None
    result = CdiResult(int(doc["as_of"]), doc["day"], None, doc["method"], int(doc["active_accounts"]),
                       dict(doc["weights"]), notes=list(doc["notes"]))
    result.accounts = [AccountCdi(*values) for values in doc["accounts"]]
    return result


def _fingerprint_of(settings: DistressSettings, tz: str, sla: SlaSettings | None,
                    customers: CustomerSettings | None) -> str:
    return fingerprint(settings, tz, dict(sla.first_reply) if sla is not None else {},
                       customers or CustomerSettings())


def refresh(conn: sqlite3.Connection, *, settings: DistressSettings, as_of: int, tz: str = "UTC",
            sla: SlaSettings | None = None, customers: CustomerSettings | None = None,
            resolved: CustomerMap | None = None) -> CdiResult:
    """:func:`kpi_engine.distress.refresh` over every source (scores, history, today's row), kept as the latest.

    ``resolved``: the customer map of ``customers`` when the caller already has it (resolving takes a second
    on a large store)."""
    result = distress.refresh(conn, settings=settings, as_of=as_of, tz=tz, sla=sla,
                              customers=resolved if resolved is not None else customers)
    save(conn, result, fingerprint=_fingerprint_of(settings, tz, sla, customers), computed_at=int(as_of))
    return result


def kept(conn: sqlite3.Connection, *, settings: DistressSettings, as_of: int, tz: str = "UTC",
         sla: SlaSettings | None = None, customers: CustomerSettings | None = None) -> CdiResult | None:
    """The latest CDI if it is still current on ``as_of``'s day for these settings (see :func:`load`)."""
    return load(conn, day=distress.day_of(int(as_of), tz), fingerprint=_fingerprint_of(settings, tz, sla, customers))
