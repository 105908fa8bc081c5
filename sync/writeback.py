"""Predicted-distress write-back: plan desired ticket states, diff with the store, apply through an outbox.

Why desired states and not events: the plan is recomputed from scratch each
run (which open tickets belong to flagged accounts, what tag/field they should
carry) and compared with what the store knows of each ticket. A write that
already happened, whether recorded or not, shows up in the store after the
next sync and yields no new write, so self-writes (which bump ``updated_at``
and come back in the next sync) can never loop, and a crash between a write
and its outbox record costs at most one repeated, idempotent write.

Flagged accounts are read from ``cdi_history`` (written by the distress step),
so write-back never recomputes the CDI and always acts on what
``deskpulse distress`` showed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from config.settings import Settings
from connectors.base import Connector, WriteRequest, WriteResult
from connectors.errors import APIError, FatalAPIError
from sync.store import Store

log = logging.getLogger("deskpulse.writeback")
OPEN_STATUSES = ("new", "open", "pending", "on_hold")
MAX_ATTEMPTS = 6
RETRY_BASE_S = 300


@dataclass
class FlaggedAccount:
    account: str
    source: str
    organization_id: str | None
    requester_id: str | None
    cdi: int
    band: str
    rise_7d: int | None
    reasons: list[str]

    @property
    def why(self) -> str:
        head = f"CDI {self.cdi} ({self.band})"
        if self.rise_7d is not None and self.rise_7d > 0:
            head += f", +{self.rise_7d} in 7 days"
        return head + (": " + ", ".join(self.reasons[:3]) if self.reasons else "")


@dataclass
class PlannedWrite:
    """One outbox entry: a single idempotent change on one ticket."""

    key: str
    source: str
    ticket_id: str
    action: str  # "add_tag" | "remove_tag" | "set_field"
    value: str
    reason: str
    account: str = ""

    def request(self) -> WriteRequest:
        if self.action == "add_tag":
            return WriteRequest(self.ticket_id, add_tags=[self.value])
        if self.action == "remove_tag":
            return WriteRequest(self.ticket_id, remove_tags=[self.value])
        name, _, value = self.value.partition("=")
        return WriteRequest(self.ticket_id, fields={name: value})


@dataclass
class Plan:
    writes: list[PlannedWrite] = field(default_factory=list)
    flagged: list[FlaggedAccount] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()[:10]


def flagged_accounts(store: Store, settings: Settings) -> list[FlaggedAccount]:
    """Red accounts, and accounts whose CDI rose by ``rise_points`` or more in 7 days, on the latest day."""
    latest = store.scalar("SELECT max(day) FROM cdi_history")
    if latest is None:
        return []
    week_ago = (datetime.fromisoformat(latest) - timedelta(days=7)).date().isoformat()
    rows = store.query(
        "SELECT h.*, p.cdi AS cdi_before FROM cdi_history h LEFT JOIN cdi_history p "
        "ON p.account = h.account AND p.day = ? WHERE h.day = ?", [week_ago, latest])
    out = []
    for row in rows:
        rise = None if row["cdi_before"] is None else int(row["cdi"]) - int(row["cdi_before"])
        if row["band"] != "red" and (rise is None or rise < settings.distress.rise_points):
            continue
        reasons: list[str] = []
        try:
            comp = json.loads(row["components"] or "{}")
            reasons = list(comp.get("reasons") or comp.get("top_reasons") or [])
        except (ValueError, AttributeError):
            reasons = []
        out.append(FlaggedAccount(row["account"], row["source"], row["organization_id"], row["requester_id"],
                                  int(row["cdi"]), row["band"], rise, reasons))
    out.sort(key=lambda a: (-a.cdi, a.account))
    return out


def _field_for(settings: Settings, source_name: str) -> str | None:
    try:
        src = settings.source(source_name)
    except Exception:  # noqa: BLE001 - a store row for a source no longer configured: no field
        return None
    return src.distress_field or settings.distress.field


def plan(store: Store, settings: Settings, *, now: float | None = None) -> Plan:
    """Desired states of every open ticket of a flagged account, minus what the store shows is already there."""
    now = time.time() if now is None else now
    tag = settings.distress.tag
    result = Plan(flagged=flagged_accounts(store, settings))
    configured = {s.name for s in settings.sources}
    wanted: set[tuple[str, str]] = set()
    outbox = {r["key"]: r for r in store.query("SELECT key, status, next_attempt_at FROM outbox WHERE kind='ticket'")}

    def consider(write: PlannedWrite) -> None:
        prior = outbox.get(write.key)
        if prior is not None and prior["status"] == "dead":
            result.skipped["refused or gone earlier"] = result.skipped.get("refused or gone earlier", 0) + 1
            return
        if prior is not None and prior["status"] == "failed" and (prior["next_attempt_at"] or 0) > now:
            result.skipped["waiting to retry"] = result.skipped.get("waiting to retry", 0) + 1
            return
        result.writes.append(write)

    for acc in result.flagged:
        if acc.source not in configured:
            continue
        column, value = ("organization_id", acc.organization_id) if acc.organization_id else \
            ("requester_id", acc.requester_id)
        tickets = store.query(
            f"SELECT id, tags, custom_fields FROM tickets WHERE source = ? AND {column} = ? "  # noqa: S608
            f"AND status IN ({','.join('?' * len(OPEN_STATUSES))}) AND coalesce(is_spam,0)=0 "
            "AND coalesce(is_merged,0)=0 ORDER BY id", [acc.source, value, *OPEN_STATUSES])
        field_name = _field_for(settings, acc.source)
        field_value = f"{acc.cdi} | {acc.why}"[:255]
        for ticket in tickets:
            wanted.add((acc.source, ticket["id"]))
            tags = json.loads(ticket["tags"] or "[]")
            if tag not in tags:
                consider(PlannedWrite(f"{acc.source}:{ticket['id']}:tag:{tag}", acc.source, ticket["id"],
                                      "add_tag", tag, acc.why, acc.account))
            else:
                result.skipped["already tagged"] = result.skipped.get("already tagged", 0) + 1
            if field_name:
                fields = json.loads(ticket["custom_fields"] or "{}")
                current = fields.get(field_name) if isinstance(fields, dict) else None
                current_cdi = str(current).split(" |", 1)[0] if current is not None else None
                if current_cdi != str(acc.cdi):
                    consider(PlannedWrite(
                        f"{acc.source}:{ticket['id']}:field:{field_name}:{_digest(field_value)}", acc.source,
                        ticket["id"], "set_field", f"{field_name}={field_value}", acc.why, acc.account))
    if settings.distress.remove_when_recovered:
        for row in store.query("SELECT o.source, o.target FROM outbox o WHERE o.kind='ticket' AND o.status='done' "
                               "AND o.key LIKE '%:tag:' || ? ", [tag]):
            if (row["source"], row["target"]) in wanted:
                continue
            tags = store.scalar("SELECT tags FROM tickets WHERE source=? AND id=?", [row["source"], row["target"]])
            if tags and tag in json.loads(tags):
                consider(PlannedWrite(f"{row['source']}:{row['target']}:untag:{tag}:{int(now) // 86400}",
                                      row["source"], row["target"], "remove_tag", tag, "account recovered"))
    return result


@dataclass
class ApplyReport:
    applied: int = 0
    gone: int = 0
    refused: int = 0
    failed: int = 0
    capped: int = 0
    errors: list[str] = field(default_factory=list)


def _record(store: Store, write: PlannedWrite, status: str, *, error: str | None = None, attempts_inc: int = 0,
            next_attempt_at: int | None = None, now: int) -> None:
    with store.transaction():
        store.conn.execute(
            "INSERT INTO outbox (key, source, kind, target, payload, status, attempts, last_error, next_attempt_at, "
            "created_at, updated_at, done_at) VALUES (?, ?, 'ticket', ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET status=excluded.status, attempts=outbox.attempts + ?, "
            "last_error=excluded.last_error, next_attempt_at=excluded.next_attempt_at, "
            "updated_at=excluded.updated_at, done_at=excluded.done_at",
            [write.key, write.source, write.ticket_id,
             json.dumps({"action": write.action, "value": write.value, "reason": write.reason}), status,
             attempts_inc, error, next_attempt_at, now, now, now if status in ("done", "dead") else None,
             attempts_inc])


def _reflect_in_store(store: Store, write: PlannedWrite, result: WriteResult) -> None:
    """Mirror an applied write locally so the next plan (before the next sync) already sees it."""
    row = store.query("SELECT tags, custom_fields FROM tickets WHERE source=? AND id=?", [write.source,
                                                                                         write.ticket_id])
    if not row:
        return
    tags = result.tags if result.tags is not None else json.loads(row[0]["tags"] or "[]")
    if result.tags is None and write.action == "add_tag" and write.value not in tags:
        tags = [*tags, write.value]
    if result.tags is None and write.action == "remove_tag":
        tags = [t for t in tags if t != write.value]
    fields = json.loads(row[0]["custom_fields"] or "{}")
    if write.action == "set_field" and isinstance(fields, dict):
        name, _, value = write.value.partition("=")
        fields[name] = value
    store.upsert("tickets", [{"source": write.source, "id": write.ticket_id, "tags": tags, "custom_fields": fields}])


def apply(store: Store, settings: Settings, planned: Plan, connectors: Callable[[str], Connector], *,
          limit: int | None = None, now: Callable[[], float] = time.time) -> ApplyReport:
    """Execute planned writes, at most ``limit`` (default ``[writeback] max_writes_per_run``) per run."""
    report = ApplyReport()
    cap = settings.writeback.max_writes_per_run if limit is None else limit
    dead_sources: set[str] = set()
    for write in planned.writes:
        if report.applied + report.gone + report.refused + report.failed >= cap:
            report.capped = len(planned.writes) - (report.applied + report.gone + report.refused + report.failed)
            log.warning("write-back cap reached (%d per run); %d write(s) left for the next run", cap, report.capped)
            break
        if write.source in dead_sources:
            continue
        t = int(now())
        prior_attempts = store.scalar("SELECT attempts FROM outbox WHERE key=?", [write.key]) or 0
        _record(store, write, "pending", now=t)
        try:
            result = connectors(write.source).write(write.request())
        except FatalAPIError as exc:
            report.failed += 1
            report.errors.append(str(exc))
            _record(store, write, "failed", error=str(exc)[:500], attempts_inc=1, now=t,
                    next_attempt_at=t + RETRY_BASE_S)
            dead_sources.add(write.source)
            continue
        except APIError as exc:
            attempts = prior_attempts + 1
            status = "dead" if attempts >= MAX_ATTEMPTS else "failed"
            report.failed += 1
            report.errors.append(str(exc))
            _record(store, write, status, error=str(exc)[:500], attempts_inc=1, now=t,
                    next_attempt_at=t + RETRY_BASE_S * 2 ** (attempts - 1))
            continue
        if result.outcome == "applied":
            report.applied += 1
            with store.transaction():
                _record(store, write, "done", attempts_inc=1, now=t)
                _reflect_in_store(store, write, result)
        else:
            report.gone += result.outcome == "gone"
            report.refused += result.outcome != "gone"
            _record(store, write, "dead", error=f"{result.outcome}: {result.detail}"[:500], attempts_inc=1, now=t)
    return report


def describe_now(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M UTC")
