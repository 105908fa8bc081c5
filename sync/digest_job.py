"""The weekly digest job: gather the week's KPIs, trends, distressed accounts and oldest tickets; post once.

Posting is idempotent per ISO week through the outbox (key ``digest:<week>``):
a second run, or a daemon restarted on Monday morning, finds the week ``done``
and does nothing. The only window for a duplicate is a crash between Slack's
answer and the commit that records it.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from config.errors import ConfigError, UsageError
from config.settings import Settings
from kpi_engine.digest import DigestAccount, DigestTicket, compose, digest_input_from_kpis
from kpi_engine.digest_input import iso_week_bounds
from sync.store import Store

log = logging.getLogger("deskpulse.digest")
TREND_WEEKS = 8


def last_complete_week(now: float, tz: str) -> str:
    """The ISO week before the one containing ``now`` (in the reporting timezone): what a Monday digest covers."""
    local = datetime.fromtimestamp(now, ZoneInfo(tz)).date() - timedelta(days=7)
    year, week, _ = local.isocalendar()
    return f"{year}-W{week:02d}"


def _shift_week(week: str, weeks: int) -> str:
    monday, _ = iso_week_bounds(week)
    year, num, _ = (monday + timedelta(weeks=weeks)).isocalendar()
    return f"{year}-W{num:02d}"


def _epoch(day: date, tz: str) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).timestamp())


def week_kpis(store: Store, settings: Settings, week: str, *, now: float) -> dict[str, Any]:
    """KPIs of one ISO week: from the snapshot table when stored, else computed (and stored if complete)."""
    from kpi_engine import snapshots

    return snapshots.snapshot_week(store.conn, kpi=settings.kpi, sla=settings.sla, costs=settings.costs,
                                   week=week, now=int(now))


def digest_accounts(store: Store, limit: int = 50) -> list[DigestAccount]:
    latest = store.scalar("SELECT max(day) FROM cdi_history")
    if latest is None:
        return []
    week_ago = (date.fromisoformat(latest) - timedelta(days=7)).isoformat()
    rows = store.query(
        "SELECT h.*, p.cdi AS cdi_before, p.band AS band_before, "
        "coalesce(o.name, pe.name, h.organization_id, h.requester_id) AS name "
        "FROM cdi_history h LEFT JOIN cdi_history p ON p.account = h.account AND p.day = ? "
        "LEFT JOIN organizations o ON o.source = h.source AND o.id = h.organization_id "
        "LEFT JOIN people pe ON pe.source = h.source AND pe.id = h.requester_id "
        "WHERE h.day = ? ORDER BY h.cdi DESC LIMIT ?", [week_ago, latest, limit * 4])
    out = []
    for row in rows:
        change = None if row["cdi_before"] is None else row["cdi"] - row["cdi_before"]
        comp = json.loads(row["components"] or "{}")
        reasons = comp.get("reasons") or comp.get("top_reasons") or []
        out.append(DigestAccount(name=str(row["name"]), source=row["source"], cdi=row["cdi"], band=row["band"],
                                 change_7d=change, reasons=list(reasons)[:3],
                                 turned_red=row["band"] == "red" and row["band_before"] not in (None, "red")))
    return out


def oldest_open(store: Store, *, as_of: int, limit: int = 10) -> list[DigestTicket]:
    rows = store.query(
        "SELECT source, id, subject, created_at, priority FROM tickets WHERE status IN "
        "('new','open','pending','on_hold') AND coalesce(is_spam,0)=0 AND coalesce(is_merged,0)=0 "
        "AND created_at <= ? ORDER BY created_at LIMIT ?", [as_of, limit])
    return [DigestTicket(source=r["source"], id=r["id"], subject=r["subject"] or "(no subject)",
                         age_s=float(as_of - r["created_at"]), priority=r["priority"]) for r in rows]


def build_payload(store: Store, settings: Settings, week: str, *, now: float | None = None) -> dict[str, Any]:
    """The Block Kit payload for ``week`` (pure read of the store plus KPI snapshots)."""
    now = time.time() if now is None else now
    try:
        since, until = iso_week_bounds(week)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    tz = settings.kpi.timezone
    this = week_kpis(store, settings, week, now=now)
    trend = [week_kpis(store, settings, _shift_week(week, -i), now=now) for i in range(TREND_WEEKS - 1, 0, -1)]
    last = trend[-1] if trend else None
    as_of = min(int(now), _epoch(until, tz))
    sources = [r["source"] for r in store.query("SELECT DISTINCT source FROM tickets ORDER BY source")]
    notes = []
    if not sources:
        notes.append("The store is empty: run 'deskpulse sync' first.")
    inp = digest_input_from_kpis(week, this, last, [*trend, this], digest_accounts(store),
                                 oldest_open(store, as_of=as_of), sources=sources, timezone=tz, since=since,
                                 until=until, notes=notes)
    return compose(inp)


def post_once(store: Store, settings: Settings, week: str, *, now: float | None = None,
              client: Any = None) -> str:
    """Post the digest for ``week`` unless the outbox says it was posted. Returns 'posted' or 'already posted'."""
    from connectors.slack import SlackClient

    now = time.time() if now is None else now
    key = f"digest:{week}"
    if store.scalar("SELECT status FROM outbox WHERE key = ?", [key]) == "done":
        return "already posted"
    if client is None and settings.slack.webhook_url is None and settings.slack.bot_token is None:
        raise ConfigError("no Slack destination configured: set [slack] webhook_url (or bot_token + channel), "
                          "e.g. through DESKPULSE_SLACK__WEBHOOK_URL")
    payload = build_payload(store, settings, week, now=now)
    t = int(now)
    with store.transaction():
        store.conn.execute(
            "INSERT INTO outbox (key, source, kind, target, payload, status, attempts, created_at, updated_at) "
            "VALUES (?, 'slack', 'digest', ?, ?, 'pending', 0, ?, ?) ON CONFLICT(key) DO UPDATE SET "
            "status='pending', payload=excluded.payload, updated_at=excluded.updated_at",
            [key, week, json.dumps({"text": payload["text"][:500]}), t, t])
    own = client is None
    client = client or SlackClient(settings.slack)
    try:
        result = client.post(payload)
    except Exception as exc:
        with store.transaction():
            store.conn.execute("UPDATE outbox SET status='failed', attempts=attempts+1, last_error=?, updated_at=? "
                               "WHERE key=?", [str(exc)[:500], t, key])
        raise
    finally:
        if own:
            client.close()
    with store.transaction():
        store.conn.execute("UPDATE outbox SET status='done', attempts=attempts+1, done_at=?, updated_at=?, "
                           "last_error=NULL, target=? WHERE key=?",
                           [t, t, f"{week} {getattr(result, 'channel', '') or ''}".strip(), key])
    log.info("digest for %s posted", week)
    return "posted"


def now_utc() -> datetime:
    return datetime.now(UTC)
