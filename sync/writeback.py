"""Predicted-distress write-back: plan desired ticket states, diff with the store, apply through an outbox.

Why desired states and not events: the plan is recomputed from scratch each
run (which open tickets belong to flagged accounts, what tag/field they should
carry) and compared with what the store knows of each ticket. A write that
already happened, whether recorded or not, shows up in the store after the
next sync and yields no new write, so self-writes (which bump ``updated_at``
and come back in the next sync) can never loop, and a crash between a write
and its outbox record costs at most one repeated, idempotent write.

Flagged accounts are read from ``cdi_history`` (written by the distress step).
The daemon records it after every sync; ``deskpulse writeback`` first checks it
is at least as fresh as the newest synced data and computes it when it is not
(:func:`ensure_fresh_cdi`), then says which day it used.

Removal on recovery (``remove_when_recovered``) touches only a tag whose
presence deskpulse's own latest write explains (:func:`own_tags`): once it has
removed its tag, an agent's re-add belongs to the agent.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from config.settings import Settings
from connectors.base import Connector, WriteRequest, WriteResult
from connectors.errors import APIError, FatalAPIError, Stopped
from kpi_engine import distress_latest
from sync.connector_pool import ConnectorPool
from sync.distress_job import refresh_cdi
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
    members: list[str] = field(default_factory=list)  # a customer on several helpdesks: source:org|user:id each

    def targets(self) -> list[tuple[str, str, str]]:
        """(source, tickets column, value) of every helpdesk account whose open tickets carry this CDI."""
        out = []
        for member in self.members:
            source, kind, ident = member.split(":", 2)
            out.append((source, "organization_id" if kind == "org" else "requester_id", ident))
        if not out:
            out.append((self.source, *(("organization_id", self.organization_id) if self.organization_id
                                       else ("requester_id", self.requester_id or ""))))
        return out

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
class CdiBasis:
    """Which CDI a write-back run acts on, and whether it had to be computed first."""

    day: str | None
    computed_at: int | None
    recomputed: bool

    def describe(self) -> str:
        if self.day is None:
            return "No CDI could be computed (nothing synced yet?)."
        when = describe_now(self.computed_at) if self.computed_at else "at an unknown time"
        if self.recomputed:
            return f"Using the CDI of {self.day}, computed just now (the stored one predated the last sync)."
        return f"Using the CDI of {self.day}, computed {when} (after the last sync)."


@dataclass
class Plan:
    writes: list[PlannedWrite] = field(default_factory=list)
    flagged: list[FlaggedAccount] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
    cdi: CdiBasis | None = None  # which CDI the plan acted on, when the caller checked (ensure_fresh_cdi)
    wanted_keys: set[str] | None = None  # every write still wanted, incl. those waiting to retry (plan() sets it)


def ensure_fresh_cdi(store: Store, settings: Settings, *, now: float) -> CdiBasis:
    """Make the CDI write-back reads at least as fresh as the newest synced data; compute it if not.

    ``deskpulse sync`` stores tickets but computes no CDI (the daemon does, after each sync): acting on the
    stored one would tag by yesterday's distress, or find nothing at all on a fresh install. Fresh means
    recorded (``cdi_history.computed_at``) no earlier than the last sync activity of any stream.
    """
    newest_sync = distress_latest.newest_sync(store.conn)
    day = store.scalar("SELECT max(day) FROM cdi_history")
    computed = store.scalar("SELECT max(computed_at) FROM cdi_history WHERE day = ?", [day]) if day else None
    if day is not None and computed is not None and int(computed) >= int(newest_sync or 0):
        return CdiBasis(day, int(computed), False)
    refresh_cdi(store, settings, int(now))
    day = store.scalar("SELECT max(day) FROM cdi_history")
    computed = store.scalar("SELECT max(computed_at) FROM cdi_history WHERE day = ?", [day]) if day else None
    return CdiBasis(day, None if computed is None else int(computed), True)


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
        members: list[str] = []
        try:
            comp = json.loads(row["components"] or "{}")
            reasons = list(comp.get("reasons") or comp.get("top_reasons") or [])
            members = [str(m) for m in comp.get("members") or [] if str(m).count(":") >= 2]
        except (ValueError, AttributeError):
            reasons = []
        out.append(FlaggedAccount(row["account"], row["source"], row["organization_id"], row["requester_id"],
                                  int(row["cdi"]), row["band"], rise, reasons, members))
    out.sort(key=lambda a: (-a.cdi, a.account))
    return out


def _field_for(settings: Settings, source_name: str) -> str | None:
    try:
        src = settings.source(source_name)
    except Exception:  # noqa: BLE001 - a store row for a source no longer configured: no field
        return None
    return src.distress_field or settings.distress.field


def resolve_fields(settings: Settings, sources: Iterable[str], connectors: Callable[[str], Connector] | None,
                   skipped: dict[str, int] | None = None) -> dict[str, str | None]:
    """Each source's configured CDI field as the key the store keeps it under, resolved once per run.

    The plan compares a ticket's stored ``custom_fields`` with the wanted value; looking under the
    configured spelling when the store uses another key (Freshdesk ``deskpulse_cdi`` vs
    ``cf_deskpulse_cdi``, a Zendesk title vs its id) would rewrite every flagged ticket every run.
    Without ``connectors`` (tests of the planner alone) the configured name is used as is. A field the
    vendor does not know, or a lookup that fails, leaves that source without field writes this run
    (counted in ``skipped``); tags still go out.
    """
    out: dict[str, str | None] = {}
    for source in sources:
        name = _field_for(settings, source)
        if not name or connectors is None:
            out[source] = name
            continue
        try:
            out[source] = connectors(source).resolve_field(name)
        except APIError as exc:
            log.warning("write-back: could not look up field %r on source %s: %s", name, source, exc)
            out[source] = None
        if out[source] is None and skipped is not None:
            reason = f"field {name!r} not found on {source}"
            skipped[reason] = skipped.get(reason, 0) + 1
    return out


def plan(store: Store, settings: Settings, *, now: float | None = None,
         connectors: Callable[[str], Connector] | None = None) -> Plan:
    """Desired states of every open ticket of a flagged account, minus what the store shows is already there.

    ``connectors`` (the run's connector pool) resolves each source's configured field to its store key
    first (:func:`resolve_fields`); pass it whenever the plan will be applied.
    """
    now = time.time() if now is None else now
    tag = settings.distress.tag
    wanted_keys: set[str] = set()
    result = Plan(flagged=flagged_accounts(store, settings), wanted_keys=wanted_keys)
    configured = {s.name for s in settings.sources}
    flagged_sources = sorted({t[0] for a in result.flagged for t in a.targets() if t[0] in configured})
    field_keys = resolve_fields(settings, flagged_sources, connectors, result.skipped)
    wanted: set[tuple[str, str]] = set()
    outbox = {r["key"]: r for r in store.query("SELECT key, status, next_attempt_at FROM outbox WHERE kind='ticket'")}

    def consider(write: PlannedWrite) -> None:
        wanted_keys.add(write.key)
        prior = outbox.get(write.key)
        if prior is not None and prior["status"] == "dead":
            result.skipped["refused or gone earlier"] = result.skipped.get("refused or gone earlier", 0) + 1
            return
        if prior is not None and prior["status"] == "failed" and (prior["next_attempt_at"] or 0) > now:
            result.skipped["waiting to retry"] = result.skipped.get("waiting to retry", 0) + 1
            return
        result.writes.append(write)

    # a customer on several helpdesks: its CDI and reasons go on its open tickets in each of them
    for acc, source, column, value in [(a, *t) for a in result.flagged for t in a.targets()]:
        if source not in configured:
            continue
        tickets = store.query(
            f"SELECT id, tags, custom_fields FROM tickets WHERE source = ? AND {column} = ? "  # noqa: S608
            f"AND status IN ({','.join('?' * len(OPEN_STATUSES))}) AND coalesce(is_spam,0)=0 "
            "AND coalesce(is_merged,0)=0 ORDER BY id", [source, value, *OPEN_STATUSES])
        field_name = field_keys.get(source)
        field_value = f"{acc.cdi} | {acc.why}"[:255]
        for ticket in tickets:
            wanted.add((source, ticket["id"]))
            tags = json.loads(ticket["tags"] or "[]")
            if tag not in tags:
                consider(PlannedWrite(f"{source}:{ticket['id']}:tag:{tag}", source, ticket["id"],
                                      "add_tag", tag, acc.why, acc.account))
            else:
                result.skipped["already tagged"] = result.skipped.get("already tagged", 0) + 1
            if field_name:
                fields = json.loads(ticket["custom_fields"] or "{}")
                current = fields.get(field_name) if isinstance(fields, dict) else None
                current_cdi = str(current).split(" |", 1)[0] if current is not None else None
                if current_cdi != str(acc.cdi):
                    consider(PlannedWrite(
                        f"{source}:{ticket['id']}:field:{field_name}:{_digest(field_value)}", source,
                        ticket["id"], "set_field", f"{field_name}={field_value}", acc.why, acc.account))
    if settings.distress.remove_when_recovered:
        for source, target in own_tags(store, tag):
            if (source, target) in wanted or source not in configured:
                continue
            tags = store.scalar("SELECT tags FROM tickets WHERE source=? AND id=?", [source, target])
            if tags and tag in json.loads(tags):
                consider(PlannedWrite(f"{source}:{target}:untag:{tag}:{int(now) // 86400}",
                                      source, target, "remove_tag", tag, "account recovered"))
    return result


def own_tags(store: Store, tag: str) -> list[tuple[str, str]]:
    """(source, ticket) pairs where deskpulse's own latest applied write of ``tag`` is an add.

    Only such a tag's presence is explained by deskpulse, so only it may be removed on recovery. Once
    deskpulse has removed its tag, an agent who puts it back owns it: the old ``done`` add must not count
    again. Writes are ordered by when they were applied (``done_at``); an add and a removal applied in the
    same second read as "removed" (the tag is then left alone: never clobber on doubt). Failed or pending
    removals do not count, so a removal that did not happen is retried.
    """
    latest: dict[tuple[str, str], tuple[int, bool]] = {}  # (done_at, is_removal): True sorts last, wins a tie
    rows = store.query(
        "SELECT source, target, done_at, json_extract(payload, '$.action') AS action FROM outbox "
        "WHERE kind='ticket' AND status='done' AND json_extract(payload, '$.value') = ? "
        "AND json_extract(payload, '$.action') IN ('add_tag', 'remove_tag')", [tag])
    for row in rows:
        pair = (row["source"], row["target"])
        mark = (int(row["done_at"] or 0), row["action"] == "remove_tag")
        latest[pair] = max(latest.get(pair, mark), mark)
    return sorted(pair for pair, (_, removed) in latest.items() if not removed)


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
        except Stopped:
            # the daemon is stopping: the write may or may not have landed; tag and field writes are idempotent,
            # so it is simply due again (not counted as an attempt) and the stop goes on up
            _record(store, write, "failed", error="stopped before the vendor answered; due again next run", now=t,
                    next_attempt_at=t)
            raise
        except FatalAPIError as exc:
            report.failed += 1
            report.errors.append(str(exc))
            _record(store, write, "failed", error=str(exc)[:500], attempts_inc=1, now=t,
                    next_attempt_at=t + RETRY_BASE_S)
            dead_sources.add(write.source)
            continue
        except APIError as exc:  # incl. BadResponseError: one bad answer fails this write, the rest go on
            attempts = prior_attempts + 1
            status = "dead" if attempts >= MAX_ATTEMPTS else "failed"
            report.failed += 1
            report.errors.append(str(exc))
            _record(store, write, status, error=str(exc)[:500], attempts_inc=1, now=t,
                    next_attempt_at=t + RETRY_BASE_S * 2 ** (attempts - 1))
            continue
        except Exception as exc:  # noqa: BLE001 - a connector bug must fail one write, not strand the outbox
            log.exception("write-back: %s on %s failed unexpectedly", write.action, write.key)
            error = f"source {write.source}: internal error {type(exc).__name__} writing ticket {write.ticket_id} " \
                    "(see the log)"
            report.failed += 1
            report.errors.append(error)
            _record(store, write, "failed", error=error, attempts_inc=1, now=t,
                    next_attempt_at=t + RETRY_BASE_S * 2 ** prior_attempts)
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
    _supersede(store, planned, int(now()))
    return report


def _supersede(store: Store, planned: Plan, now: int) -> None:
    """Failed writes the plan no longer wants (the account recovered, the ticket closed, a removal retried
    under the next day's key) become ``superseded``: never retried, no longer listed as failures by status."""
    if planned.wanted_keys is None:
        return
    stale = [(now, r["key"]) for r in store.query("SELECT key FROM outbox WHERE kind='ticket' AND status='failed'")
             if r["key"] not in planned.wanted_keys]
    if stale:
        with store.transaction():
            store.conn.executemany("UPDATE outbox SET status='superseded', next_attempt_at=NULL, updated_at=? "
                                   "WHERE key=? AND status='failed'", stale)


def describe_now(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M UTC")


def run_writeback(store: Store, settings: Settings, *, do_apply: bool, limit: int | None = None,
                  clock: Callable[[], float] = time.time) -> tuple[Plan, ApplyReport | None]:
    """Plan (and with ``do_apply`` write) against a CDI at least as fresh as the newest sync.

    What ``deskpulse writeback`` and the demo run: the connectors of the sources written to are opened once
    (:class:`sync.connector_pool.ConnectorPool`) and closed at the end; ``store`` stays the caller's.
    """
    pool = ConnectorPool(settings)
    try:
        now = clock()
        basis = ensure_fresh_cdi(store, settings, now=now)
        planned = plan(store, settings, now=now, connectors=pool)
        planned.cdi = basis
        if not do_apply:
            return planned, None
        return planned, apply(store, settings, planned, pool, limit=limit, now=clock)
    finally:
        pool.close()
