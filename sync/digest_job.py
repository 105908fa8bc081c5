"""The weekly digest job: gather the week's KPIs, trends, distressed accounts and oldest tickets; post once.

Exactly once, through the outbox row ``digest:<week>`` (kind ``digest``), which is also the lock:

* **One poster.** A process *claims* the row in one ``BEGIN IMMEDIATE`` transaction (read, decide, write
  ``posting`` with its owner and a lease in ``next_attempt_at``) before it sends anything; every other
  process, on any host sharing the store, sees the live claim and does not post. A claim whose lease ran
  out means its process died mid-post: that post's outcome is *unknown*, never assumed to have failed.
* **Unknown is not failed.** No answer after sending (read timeout, dropped connection, 5xx,
  ``fatal_error``) is recorded ``unknown``. With a bot token deskpulse looks for the message in
  ``conversations.history`` (each digest carries a marker: a ``block_id`` and message ``metadata``) before
  it posts again; an incoming webhook cannot be read back, so an unknown webhook post waits for
  ``--post --force``, and ``deskpulse status`` says so.
* **Failed is retried** within the week (until the next week's digest is due), with exponential back-off
  recorded in ``attempts``/``next_attempt_at``; the daemon checks on start and on every catch-up run, so a
  daemon that was down or busy at the digest minute still posts the week (:func:`post_due`).
* **Only complete weeks.** A week that has not ended (or has not begun) is refused without ``--force``; a
  forced partial post gets its own row (kind ``digest-partial``) and never stands in for the week's digest.

What stays at-least-once: an unknown webhook post re-sent with ``--force``, and the gap between Slack
accepting a post and the commit that records it when the process dies right then (found again through the
history with a bot token; with a webhook it is the unknown case).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from config.errors import ConfigError, DeskpulseError, UsageError
from config.settings import Settings
from connectors.errors import Stopped
from kpi_engine.digest import DigestAccount, DigestTicket, compose, digest_input_from_kpis
from kpi_engine.digest_input import iso_week_bounds
from sync.store import Store

log = logging.getLogger("deskpulse.digest")
TREND_WEEKS = 8

KIND, PARTIAL_KIND = "digest", "digest-partial"
#: How long a claim holds. Longer than any one post can take (connect 10 s + read 30 s, plus at most 3 waits
#: of ≤ 120 s for a 429), so a live poster never loses its claim to a second process.
LEASE_S = 15 * 60
#: An unknown outcome is looked up in the channel history only this long after the attempt, so a message
#: Slack was still storing when the client gave up is there to be found.
SETTLE_S = 120
RETRY_BASE_S = 5 * 60           # failed posts: 5 min, 10, 20, ... capped at 6 h, within the week only
RETRY_MAX_S = 6 * 3600
EVENT_TYPE = "deskpulse_digest"
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class DigestNotPostedError(DeskpulseError):
    """The digest was not (knowingly) posted: Slack refused, or the outcome is unknown. Exit 1."""

    exit_code = 1


class DigestOutcomeUnknownError(DigestNotPostedError):
    """The post may have landed; it is recorded ``unknown`` and never re-sent blindly."""


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
        # a customer on several helpdesks: its own name and every source (kpi_engine.customers)
        name, source = comp.get("name") or row["name"], ", ".join(comp.get("sources") or []) or row["source"]
        out.append(DigestAccount(name=str(name), source=source, cdi=row["cdi"], band=row["band"],
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


def build_payload(store: Store, settings: Settings, week: str, *, now: float | None = None,
                  report_url: str | None = None) -> dict[str, Any]:
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
                                 until=until, notes=notes, report_url=report_url)
    return compose(inp)


def week_end(week: str, tz: str) -> int:
    """Epoch of the Monday 00:00 (reporting timezone) that ends ``week``: before it, the week is incomplete."""
    try:
        _, until = iso_week_bounds(week)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return _epoch(until, tz)


def due_at(week: str, settings: Settings) -> int:
    """When ``week``'s digest is due: the first ``[schedule] digest`` time (e.g. ``mon 09:00``, reporting
    timezone) at or after the week's end. Until the next week's is due, a missed or failed digest is retried."""
    day, hhmm = settings.schedule.digest.split()
    hour, minute = (int(x) for x in hhmm.split(":"))
    _, until = iso_week_bounds(week)  # a Monday
    when = until + timedelta(days=_DAYS.index(day.lower()))
    return int(datetime(when.year, when.month, when.day, hour, minute, tzinfo=ZoneInfo(settings.kpi.timezone))
               .timestamp())


def current_digest_week(now: float, settings: Settings) -> str:
    """The week whose digest should exist by ``now``: the last complete week once its digest time has
    passed, else the week before (Monday 08:00 with a 09:00 digest is still last week's retry window)."""
    week = last_complete_week(now, settings.kpi.timezone)
    return week if due_at(week, settings) <= now else _shift_week(week, -1)


def marker_for(key: str) -> str:
    """The idempotency marker a digest carries (block_id and metadata), e.g. ``deskpulse-digest-2026-W47``."""
    return "deskpulse-" + key.replace(":", "-")


def _marked(payload: dict[str, Any], marker: str) -> dict[str, Any]:
    """``payload`` with ``marker`` as the first block's ``block_id`` (history always returns blocks), so even a
    client that never sees metadata recognises the message; a block that has an id keeps it."""
    blocks = [dict(b) for b in payload.get("blocks") or []]
    for block in blocks:
        if "block_id" not in block:
            block["block_id"] = marker
            break
    return {**payload, "blocks": blocks}


def _backoff(attempts: int) -> int:
    return min(RETRY_BASE_S * 2 ** max(attempts - 1, 0), RETRY_MAX_S)


def _when(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ") if epoch else "never"


def _destination(settings: Settings) -> bool:
    return settings.slack.webhook_url is not None or settings.slack.bot_token is not None


class _Attempt:
    """One process's attempt at one outbox row: the claim, and every write-back of what happened."""

    def __init__(self, store: Store, key: str, *, kind: str, week: str, now: float, marker: str,
                 text: str, via: str) -> None:
        self.store, self.key, self.kind, self.week, self.now = store, key, kind, week, int(now)
        self.marker, self.text, self.via = marker, text, via
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.info: dict[str, Any] = {}
        self.attempts = 0

    def claim(self, *, force: bool, scheduled: bool, verifiable: bool) -> tuple[str, str]:
        """Decide and claim in one write transaction. Returns (action, reason): action is ``post`` or
        ``check`` (claimed: this process must finish the row), ``done``, ``busy`` or ``wait`` (not claimed)."""
        now = self.now
        with self.store.transaction():  # BEGIN IMMEDIATE: no other process reads-then-writes in between
            rows = self.store.query("SELECT status, attempts, next_attempt_at, payload, last_error FROM outbox "
                                    "WHERE key = ?", [self.key])
            row = rows[0] if rows else None
            info = _info(row)
            status = row["status"] if row else None
            next_at = (row["next_attempt_at"] if row else None) or 0
            self.attempts = int(row["attempts"] or 0) if row else 0
            reason = (row or {}).get("last_error") or ""
            if status == "done":
                return "done", ""
            if status == "posting":
                if next_at > now:
                    return "busy", f"being posted by {info.get('owner', 'another process')} since " \
                                   f"{_when(info.get('claimed_at'))}"
                status, reason = "unknown", (f"the process posting it ({info.get('owner', '?')}) stopped before "
                                             "recording Slack's answer")
                info["unknown_cause"] = reason
            elif status == "pending":  # written by an older deskpulse just before posting: it never finished
                status, reason = "unknown", "an earlier run stopped before recording Slack's answer"
                info.setdefault("attempt_at", next_at or now - LEASE_S)
                info["unknown_cause"] = reason
            elif status == "unknown":
                reason = info.get("unknown_cause") or reason
            if status == "unknown" and verifiable:  # look before posting again; --force only skips the wait
                if now < next_at and not force:
                    return "wait", reason
                action = "check"
            elif status == "unknown" and not force:  # a webhook cannot be read back: the operator decides
                return "wait", reason
            elif status == "failed" and scheduled and now < next_at:
                return "wait", reason
            else:
                action = "post"
            if action == "post":
                info["attempt_at"] = now
            info.update(owner=self.owner, claimed_at=now, week=self.week, kind=self.kind, marker=self.marker,
                        via=self.via, text=self.text[:500])
            self.store.conn.execute(
                "INSERT INTO outbox (key, source, kind, target, payload, status, attempts, next_attempt_at, "
                "created_at, updated_at) VALUES (?, 'slack', ?, ?, ?, 'posting', 0, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET status='posting', payload=excluded.payload, "
                "next_attempt_at=excluded.next_attempt_at, updated_at=excluded.updated_at",
                [self.key, self.kind, self.week, json.dumps(info), now + LEASE_S, now, now])
            self.info = info
            return action, reason

    def finish(self, status: str, *, error: str | None = None, next_at: int | None = None, sent: bool = False,
               ts: str | None = None, channel: str | None = None) -> None:
        """Record the outcome, if the claim is still ours (a claim taken over after its lease ran out is left
        to its new owner, who treats our post as unknown and finds it in the history)."""
        drop = ("owner", "claimed_at") if status == "unknown" else ("owner", "claimed_at", "unknown_cause")
        info = {k: v for k, v in self.info.items() if k not in drop}
        if ts:
            info["ts"] = ts
        if channel:
            info["channel"] = channel
        now = self.now
        with self.store.transaction():
            cur = self.store.conn.execute(
                "UPDATE outbox SET status=?, attempts=attempts+?, last_error=?, next_attempt_at=?, payload=?, "
                "updated_at=?, done_at=CASE WHEN ?='done' THEN ? ELSE done_at END, target=? "
                "WHERE key=? AND status='posting' AND json_extract(payload, '$.owner')=?",
                [status, 1 if sent else 0, error[:500] if error else None, next_at, json.dumps(info), now,
                 status, now, f"{self.week} {channel or ''}".strip(), self.key, self.owner])
            if cur.rowcount == 0:
                log.warning("digest %s: our claim was taken over before we recorded %s", self.week, status)


def _info(row: dict[str, Any] | None) -> dict[str, Any]:
    if not row or not row.get("payload"):
        return {}
    try:
        value = json.loads(row["payload"])
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _known_channel(store: Store) -> str | None:
    """The channel ID an earlier digest landed in (chat.postMessage answers it), for history look-ups."""
    return store.scalar("SELECT json_extract(payload, '$.channel') FROM outbox WHERE kind IN (?, ?) AND "
                        "status = 'done' AND json_extract(payload, '$.channel') IS NOT NULL "
                        "ORDER BY done_at DESC LIMIT 1", [KIND, PARTIAL_KIND])


def post_once(store: Store, settings: Settings, week: str, *, now: float | None = None, client: Any = None,
              force: bool = False, scheduled: bool = False, wait_s: float = 0.0,
              sleep: Callable[[float], None] = time.sleep, stop: threading.Event | None = None,
              report_url: str | None = None) -> str:
    """Post the digest for ``week`` unless it was posted; returns what happened in a few words.

    Raises :class:`UsageError` for a week that is not over (unless ``force``: then it is a partial post
    with its own record), :class:`DigestOutcomeUnknownError` when the post may have landed, and Slack's
    error when it was refused (recorded ``failed`` with its next retry). ``scheduled`` (the daemon) honours
    the back-off of a failed post; an operator's post retries at once. ``wait_s``: how long to wait for
    another process's claim to resolve (the CLI waits; the daemon does not).
    """
    from connectors.slack import SlackClient, SlackError, SlackOutcomeUnknownError, SlackUnavailableError

    now = time.time() if now is None else now
    tz = settings.kpi.timezone
    end = week_end(week, tz)
    complete = end <= now
    if not complete and not force:
        start = end - 7 * 86400
        what = "has not begun" if start > now else "is not over yet"
        raise UsageError(f"week {week} {what} (it ends {_when(end)}): its digest would be partial. Post the "
                         f"complete digest after it ends, or add --force to post a partial one now (it does "
                         f"not count as the week's digest)")
    key = f"digest:{week}" if complete else f"digest-partial:{week}:{int(now)}"
    kind = KIND if complete else PARTIAL_KIND
    if store.scalar("SELECT status FROM outbox WHERE key = ?", [key]) == "done":
        return "already posted"
    if client is None and not _destination(settings):
        raise ConfigError("no Slack destination configured: set [slack] webhook_url (or bot_token + channel), "
                          "e.g. through DESKPULSE_SLACK__WEBHOOK_URL")
    payload = build_payload(store, settings, week, now=now, report_url=report_url)
    marker = marker_for(key)
    own = client is None
    client = client or SlackClient(settings.slack, stop=stop)
    verifiable = bool(getattr(client, "verifiable", False))
    attempt = _Attempt(store, key, kind=kind, week=week, now=now, marker=marker, text=payload["text"],
                       via="chat.postMessage" if verifiable else "webhook")
    try:
        deadline = time.monotonic() + wait_s
        while True:
            action, reason = attempt.claim(force=force, scheduled=scheduled, verifiable=verifiable)
            if action != "busy" or time.monotonic() >= deadline:
                break
            log.warning("digest %s: %s; waiting for its answer", week, reason)
            sleep(min(2.0, max(deadline - time.monotonic(), 0.05)))
        if action == "done":
            return "already posted"
        if action == "busy":
            return f"not posted here: {reason}"
        if action == "wait":
            error = _unknown_or_waiting(week, reason, store, key, verifiable)
            if scheduled:  # the daemon asks every catch-up run: say it once per run in the log, not as a failure
                log.info("%s", error)
                return f"not posted: {error}"
            raise error
        window_end = due_at(_shift_week(week, 1), settings) if complete else 0
        if action == "check":
            since = float(attempt.info.get("attempt_at") or now - LEASE_S) - 60  # a minute for clock skew
            channel = getattr(client, "channel_id", None) or _known_channel(store)
            try:
                found = client.find_message(marker, oldest=since, channel=channel)
            except (SlackError, SlackUnavailableError) as exc:
                if force:  # the operator looked and asks for the post
                    log.warning("digest %s: the channel history could not be checked (%s); posting as --force "
                                "asks", week, exc)
                    found = None
                else:
                    attempt.finish("unknown", error=f"{reason}; the channel history could not be checked: {exc}",
                                   next_at=int(now) + _backoff(attempt.attempts + 1))
                    raise DigestOutcomeUnknownError(
                        f"digest {week}: outcome of an earlier post unknown ({reason}) and the channel history "
                        f"could not be checked: {exc}; check the channel, then post with --force if it is "
                        "missing") from None
            if found is not None:
                attempt.finish("done", ts=found.ts, channel=found.channel)
                log.info("digest %s: the earlier post had landed (ts %s)", week, found.ts)
                return "already posted (found in the channel history)"
            log.warning("digest %s: the earlier post did not land (%s); posting it now", week, reason)
            attempt.info["attempt_at"] = int(now)
        metadata = {"event_type": EVENT_TYPE, "event_payload": {"marker": marker, "week": week, "kind": kind}}
        try:
            result = client.post(_marked(payload, marker), metadata=metadata) if verifiable \
                else client.post(_marked(payload, marker))
        except SlackOutcomeUnknownError as exc:
            attempt.info["unknown_cause"] = str(exc)
            attempt.finish("unknown", error=str(exc), sent=True,
                           next_at=int(now) + SETTLE_S if verifiable else None)
            raise DigestOutcomeUnknownError(_unknown_message(week, str(exc), verifiable, int(now) + SETTLE_S)) \
                from None
        except (SlackError, SlackUnavailableError) as exc:
            attempts = attempt.attempts + 1
            next_at = int(now) + _backoff(attempts)
            retry = complete and next_at < window_end
            attempt.finish("failed", error=str(exc), sent=True, next_at=next_at if retry else None)
            then = f"next attempt after {_when(next_at)}" if retry else "not retried automatically"
            # the same error class (a refusal stays a refusal), its one line saying what happens next
            raise type(exc)(f"digest {week}: {exc}; {then}", code=exc.code, status=exc.status,
                            source="slack") from None
        except Stopped as exc:
            if exc.in_flight:  # the post may have landed: unknown, resolved like any other unknown outcome
                attempt.info["unknown_cause"] = "stopped while posting"
                attempt.finish("unknown", error="stopped while posting", sent=True,
                               next_at=int(now) + SETTLE_S if verifiable else None)
            else:  # stopped while waiting out a 429: Slack had refused it, nothing landed; due again at once
                attempt.finish("failed", error="stopped before posting (waiting out Slack's rate limit)",
                               next_at=int(now))
            raise
        except BaseException as exc:  # a bug or an interrupt after the request may have gone out
            attempt.info["unknown_cause"] = f"interrupted while posting: {type(exc).__name__}"
            attempt.finish("unknown", error=f"interrupted while posting: {type(exc).__name__}", sent=True,
                           next_at=int(now) + SETTLE_S if verifiable else None)
            raise
        attempt.finish("done", sent=True, ts=getattr(result, "ts", None), channel=getattr(result, "channel", None))
    finally:
        if own:
            client.close()
    log.info("digest for %s posted", week)
    return "posted" if complete else "posted (partial: the week is not over; its complete digest still goes out)"


def _unknown_message(week: str, cause: str, verifiable: bool, check_at: int) -> str:
    if verifiable:
        return (f"digest {week}: outcome unknown ({cause}); it is not posted again until the channel history "
                f"shows it did not land (checked from {_when(check_at)} by the daemon or the next "
                f"'deskpulse digest --post')")
    return (f"digest {week}: outcome unknown ({cause}); an incoming webhook cannot be checked: look in the "
            f"channel, and only if it is missing run 'deskpulse digest --post --week {week} --force'")


def _unknown_or_waiting(week: str, reason: str, store: Store, key: str, verifiable: bool) -> DeskpulseError:
    """The error for a row this run may not touch yet: an unresolved unknown, or a failed post backing off."""
    row = store.query("SELECT status, next_attempt_at FROM outbox WHERE key = ?", [key])[0]
    if row["status"] == "failed":
        return DigestNotPostedError(f"digest {week}: the last post failed ({reason}); next attempt after "
                                    f"{_when(row['next_attempt_at'])}")
    return DigestOutcomeUnknownError(_unknown_message(week, reason, verifiable, row["next_attempt_at"] or 0))


def post_due(store: Store, settings: Settings, *, now: float | None = None, client: Any = None,
             stop: threading.Event | None = None, before_post: Callable[[str], str | None] | None = None) -> str:
    """The daemon's digest step, run at the digest minute *and* on start and every catch-up run: post the
    current digest week (:func:`current_digest_week`) unless it is posted, claimed, backing off, or of
    unknown outcome. Idempotent, so running it often costs one SELECT."""
    now = time.time() if now is None else now
    if client is None and not _destination(settings):
        return "no Slack destination configured"
    if store.scalar("SELECT 1 FROM tickets LIMIT 1") is None:  # e.g. a first start whose first sync failed
        return "not posted: nothing synced yet (an empty digest is never posted by the daemon)"
    week = current_digest_week(now, settings)
    if store.scalar("SELECT status FROM outbox WHERE key = ?", [f"digest:{week}"]) == "done":
        return "already posted"
    with store.transaction():  # an older week's retries end when a newer digest is due (status says so)
        store.conn.execute("UPDATE outbox SET next_attempt_at = NULL WHERE kind = ? AND status = 'failed' "
                           "AND key < ? AND next_attempt_at IS NOT NULL", [KIND, f"digest:{week}"])
    report_url = before_post(week) if before_post is not None else None  # e.g. write the week's report first
    return post_once(store, settings, week, now=now, client=client, scheduled=True, stop=stop,
                     report_url=report_url)


def digest_status(store: Store, *, now: float | None = None) -> list[dict[str, Any]]:
    """What ``deskpulse status`` says about the digest: the newest week's row, and every digest row from the
    last four weeks that is not done (failed with its next retry, unknown with what resolves it, in flight)."""
    now = time.time() if now is None else now
    rows = store.query("SELECT key, kind, status, attempts, last_error, next_attempt_at, payload, updated_at, "
                       "done_at FROM outbox WHERE kind IN (?, ?) ORDER BY updated_at DESC, key DESC LIMIT 50",
                       [KIND, PARTIAL_KIND])
    out = []
    newest = next((r for r in rows if r["kind"] == KIND), None)
    for row in rows:
        if row is not newest and (row["status"] == "done" or row["updated_at"] < now - 28 * 86400):
            continue
        info = _info(row)
        status = row["status"]
        week = info.get("week") or row["key"].split(":")[1]
        label = f"{week} (partial)" if row["kind"] == PARTIAL_KIND else week
        webhook = info.get("via") == "webhook"
        if status == "posting" and (row["next_attempt_at"] or 0) <= now:
            status, row = "unknown", {**row, "last_error": "the process posting it stopped before recording "
                                                            "Slack's answer"}
        if status == "pending":
            status = "unknown"
        entry = {"key": row["key"], "week": week, "kind": row["kind"], "status": status,
                 "attempts": row["attempts"], "reason": row["last_error"], "next_attempt_at": None}
        if status == "done":
            entry["line"] = f"digest {label}: posted {_when(row['done_at'])}"
        elif status == "posting":
            entry["line"] = f"digest {label}: being posted by {info.get('owner', '?')} since " \
                            f"{_when(info.get('claimed_at'))}"
        elif status == "failed":
            entry["next_attempt_at"] = row["next_attempt_at"]
            then = f"next retry {_when(row['next_attempt_at'])}" if row["next_attempt_at"] else \
                f"not retried automatically: run 'deskpulse digest --post --week {week}'"
            entry["line"] = f"digest {label}: FAILED after {row['attempts']} attempt(s): {row['last_error']}; {then}"
        else:
            if webhook:
                then = ("an incoming webhook cannot be checked: look in the channel, and only if it is missing run "
                        f"'deskpulse digest --post --week {week} --force'")
            else:
                entry["next_attempt_at"] = row["next_attempt_at"]
                then = ("deskpulse checks the channel history before posting again "
                        f"(from {_when(row['next_attempt_at'])})")
            entry["line"] = f"digest {label}: OUTCOME UNKNOWN: {row['last_error']}; {then}"
        out.append(entry)
    return out


