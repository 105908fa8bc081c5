"""The weekly digest, exactly once and never silently lost: the outbox claim across connections, unknown
outcomes resolved through the channel history (never re-sent blindly), retries with back-off within the
week, the daemon's catch-up, and incomplete weeks that never stand in for the complete digest."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config.errors import UsageError
from config.settings import Settings
from connectors.sim.base import Fault, SimServer
from connectors.sim.slack import SlackSim
from connectors.slack import SlackClient, SlackError
from sync.daemon import Daemon
from sync.digest_job import (
    LEASE_S,
    SETTLE_S,
    DigestOutcomeUnknownError,
    current_digest_week,
    digest_status,
    due_at,
    marker_for,
    post_due,
    post_once,
)
from sync.pipeline import Pipeline
from sync.store import Store

TOKEN = "xoxb-digest-once"
HOOK = "/services/T1/B1/digest-once-secret"
W47 = "2026-W47"                 # Mon 16 - Sun 22 Nov 2026
MON = 1795420800                 # Mon 23 Nov 2026 08:00 UTC = 09:00 Berlin: W47's digest minute
DAY = 86400


def _settings(url: str, *, bot: bool = True, db: Path | None = None) -> Settings:
    slack = {"bot_token": TOKEN, "channel": "C0SIM0001", "api_base_url": url} if bot else {"webhook_url": url + HOOK}
    extra = {"store": {"path": db}} if db else {}
    return Settings(slack=slack, kpi={"timezone": "Europe/Berlin"}, schedule={"digest": "mon 09:00"}, **extra)


@pytest.fixture
def slack() -> Iterator[tuple[SlackSim, str]]:
    sim = SlackSim(bot_token=TOKEN, webhook_path=HOOK, channels=("#support",))
    with SimServer(sim) as server:
        yield sim, server.url


def _seeded(db: Path) -> Store:
    """A store with one synced ticket: the daemon never posts the digest of an empty store."""
    s = Store(db)
    s.upsert("tickets", [{"source": "zd", "id": "1", "subject": "s", "status": "open", "created_at": MON - 9 * DAY,
                          "updated_at": MON - 9 * DAY}], source="zd")
    return s


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = _seeded(tmp_path / "d.db")
    yield s
    s.close()


def _row(store: Store, key: str = f"digest:{W47}") -> dict[str, Any]:
    rows = store.query("SELECT * FROM outbox WHERE key = ?", [key])
    assert rows, f"no outbox row {key}"
    return {**rows[0], "info": json.loads(rows[0]["payload"] or "{}")}


def _quick_client(settings: Settings) -> SlackClient:
    """A client whose read timeout (0.2 s) is shorter than the simulator's late answer."""
    return SlackClient(settings.slack, timeout=(2.0, 0.2))


def test_due_times_follow_the_schedule_in_the_reporting_timezone(slack) -> None:
    settings = _settings(slack[1])
    assert due_at(W47, settings) == MON
    assert current_digest_week(MON - 60, settings) == "2026-W46"   # Monday 08:59: still last week's window
    assert current_digest_week(MON, settings) == W47
    assert current_digest_week(MON + 6 * DAY, settings) == W47


# -- one poster across processes -------------------------------------------------------------------------
def test_two_connections_racing_post_exactly_once(tmp_path: Path, slack, caplog: pytest.LogCaptureFixture) -> None:
    sim, url = slack
    settings = _settings(url)
    Store(tmp_path / "d.db").close()
    sim.inject(Fault("slow", count=2, path="/api/chat.postMessage", delay=1.5))  # a long post: a wide window
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def poster() -> None:
        try:
            with Store(tmp_path / "d.db") as own:           # its own sqlite connection, like another process
                barrier.wait()
                outcomes.append(post_once(own, settings, W47, now=MON + 60, wait_s=30))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    caplog.set_level(logging.WARNING, logger="deskpulse.digest")
    threads = [threading.Thread(target=poster) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted(outcomes) == ["already posted", "posted"]
    assert len(sim.messages) == 1 and sim.requests_made("chat.postMessage") == 1
    assert "waiting for its answer" in caplog.text           # the loser saw the live claim, not a done row
    with Store(tmp_path / "d.db") as s:
        assert _row(s)["status"] == "done" and _row(s)["attempts"] == 1


def test_a_dead_claimants_post_is_unknown_then_resolved_by_the_history(store: Store, slack) -> None:
    sim, url = slack
    settings = _settings(url)
    for week, landed in ((W47, True), ("2026-W46", False)):
        key = f"digest:{week}"
        store.conn.execute(
            "INSERT INTO outbox (key, source, kind, target, payload, status, attempts, next_attempt_at, created_at, "
            "updated_at) VALUES (?, 'slack', 'digest', ?, ?, 'posting', 0, ?, ?, ?)",
            [key, week, json.dumps({"owner": "otherhost:999:dead", "claimed_at": MON, "attempt_at": MON,
                                    "week": week, "via": "chat.postMessage"}), MON + LEASE_S, MON, MON])
        if landed:  # it had posted, then died before recording Slack's answer
            with SlackClient(settings.slack) as client:
                client.post({"text": "digest", "blocks": [{"type": "section", "block_id": marker_for(key),
                                                           "text": {"type": "mrkdwn", "text": "W47"}}]})
    # while the claim's lease runs, nobody else posts
    assert post_once(store, settings, W47, now=MON + 60).startswith("not posted here: being posted by otherhost")
    assert len(sim.messages) == 1
    # after it, the dead post is looked up: found, so not posted again
    assert post_once(store, settings, W47, now=MON + LEASE_S + 1) == "already posted (found in the channel history)"
    assert len(sim.messages) == 1 and _row(store)["status"] == "done" and _row(store)["info"]["ts"]
    # not found: posted once, now
    assert post_once(store, settings, "2026-W46", now=MON + LEASE_S + 1) == "posted"
    assert len(sim.messages) == 2 and sim.requests_made("conversations.history") == 2


# -- unknown outcomes ------------------------------------------------------------------------------------
def test_an_answer_after_the_read_timeout_is_unknown_and_found_in_the_history(store: Store, slack) -> None:
    sim, url = slack
    settings = _settings(url)
    sim.inject(Fault("slow", path="/api/chat.postMessage", delay=1.0))   # recorded, answered too late
    with _quick_client(settings) as client:
        with pytest.raises(DigestOutcomeUnknownError, match="outcome unknown .*not posted again until the channel"):
            post_once(store, settings, W47, now=MON, client=client)
        row = _row(store)
        assert (row["status"], row["attempts"], row["next_attempt_at"]) == ("unknown", 1, MON + SETTLE_S)
        assert "ReadTimeout" in row["last_error"]
        with pytest.raises(DigestOutcomeUnknownError):                    # too soon to look: nothing sent
            post_once(store, settings, W47, now=MON + 10, client=client)
        assert sim.requests_made("conversations.history") == 0
        outcome = post_once(store, settings, W47, now=MON + SETTLE_S + 1, client=client)
    assert outcome == "already posted (found in the channel history)"
    assert len(sim.messages) == 1 and sim.requests_made("chat.postMessage") == 1
    posted = sim.messages[0]
    assert posted["metadata"]["event_payload"]["marker"] == marker_for(f"digest:{W47}")
    assert posted["blocks"][0]["block_id"] == marker_for(f"digest:{W47}")
    row = _row(store)
    assert row["status"] == "done" and row["info"]["ts"] == sim.channel_messages("C0SIM0001")[0]["ts"]


def test_an_unknown_post_that_did_not_land_is_posted_once_after_the_check(store: Store, slack) -> None:
    sim, url = slack
    settings = _settings(url)
    sim.inject(Fault("5xx", status=503, path="/api/chat.postMessage"))   # a 5xx: stored or not, nobody knows
    with pytest.raises(DigestOutcomeUnknownError):
        post_once(store, settings, W47, now=MON)
    assert _row(store)["status"] == "unknown" and sim.messages == []
    assert post_due(store, settings, now=MON + SETTLE_S + 1) == "posted"
    assert len(sim.messages) == 1 and sim.requests_made("conversations.history") == 1
    assert _row(store)["attempts"] == 2


def test_an_unknown_webhook_post_waits_for_force(store: Store, slack) -> None:
    sim, url = slack
    settings = _settings(url, bot=False)
    sim.inject(Fault("slow", path=HOOK, delay=1.0))
    with _quick_client(settings) as client, pytest.raises(DigestOutcomeUnknownError, match="--force"):
        post_once(store, settings, W47, now=MON, client=client)
    assert len(sim.messages) == 1
    for when in (MON + 3600, MON + DAY):
        with pytest.raises(DigestOutcomeUnknownError, match="cannot be checked"):
            post_once(store, settings, W47, now=when)
        assert post_due(store, settings, now=when).startswith("not posted")   # the daemon does not guess either
    assert len(sim.messages) == 1
    [entry] = digest_status(store, now=MON + DAY)
    assert entry["status"] == "unknown" and "--force" in entry["line"] and "ReadTimeout" in entry["line"]
    assert post_once(store, settings, W47, now=MON + DAY, force=True) == "posted"   # the operator's call
    assert len(sim.messages) == 2 and _row(store)["status"] == "done"


# -- failed posts: retried within the week ---------------------------------------------------------------
def test_a_failed_post_is_retried_within_the_week_with_backoff(tmp_path: Path, slack) -> None:
    sim, url = slack
    db = tmp_path / "d.db"
    settings = _settings(url, db=db)
    _seeded(db).close()
    now = [float(MON)]
    daemon = Daemon(settings, db, pipeline=Pipeline(settings, db, clock=lambda: now[0]), clock=lambda: now[0])
    sim.archive("#support")                                   # Slack refuses: is_archived
    with pytest.raises(SlackError, match="is_archived"):
        daemon.digest_job()
    with Store(db) as s:
        row = _row(s)
        assert (row["status"], row["attempts"], row["next_attempt_at"]) == ("failed", 1, MON + 300)
        [entry] = digest_status(s, now=now[0])
    assert entry["status"] == "failed" and "is_archived" in entry["reason"] and "next retry" in entry["line"]
    now[0] = MON + 100                                        # backing off: not even a request
    daemon.digest_job()
    assert sim.requests_made("chat.postMessage") == 1
    now[0] = MON + 301                                        # still refused: the back-off doubles
    with pytest.raises(SlackError):
        daemon.digest_job()
    with Store(db) as s:
        assert (_row(s)["attempts"], _row(s)["next_attempt_at"]) == (2, MON + 301 + 600)
    sim.archived.clear()
    now[0] = MON + DAY                                        # Tuesday: the same week, not the next one
    daemon.digest_job()
    assert len(sim.messages) == 1 and W47 in sim.messages[0]["text"]
    with Store(db) as s:
        assert (_row(s)["status"], _row(s)["attempts"]) == ("done", 3)


def test_retries_end_when_the_next_weeks_digest_is_due(store: Store, slack) -> None:
    sim, url = slack
    settings = _settings(url)
    sim.archive("#support")
    with pytest.raises(SlackError):
        post_due(store, settings, now=MON)
    sim.archived.clear()
    assert post_due(store, settings, now=MON + 7 * DAY) == "posted"       # W48's digest goes out
    assert "2026-W48" in sim.messages[0]["text"] and len(sim.messages) == 1
    w47 = next(e for e in digest_status(store, now=MON + 7 * DAY) if e["week"] == W47)
    assert w47["status"] == "failed" and "not retried automatically" in w47["line"]


# -- the daemon's catch-up -------------------------------------------------------------------------------
def test_a_daemon_started_after_the_digest_minute_posts_the_week_on_start(tmp_path: Path, slack) -> None:
    sim, url = slack
    db = tmp_path / "d.db"
    settings = _settings(url, db=db)
    _seeded(db).close()
    tuesday = MON + DAY + 3600
    daemon = Daemon(settings, db, pipeline=Pipeline(settings, db, clock=lambda: tuesday), clock=lambda: tuesday)
    daemon.add_jobs(first_run_now=False)
    daemon.add_digest_catchup()
    jobs = {job.id: job for job in daemon.scheduler.get_jobs()}
    assert jobs["digest-catchup"].trigger.interval.total_seconds() == 900   # and again every sync interval
    daemon.scheduler.start()
    try:
        deadline = time.monotonic() + 20
        while not sim.messages and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        daemon.scheduler.shutdown(wait=True)
    assert len(sim.messages) == 1 and W47 in sim.messages[0]["text"]
    daemon.digest_job()                                       # every later catch-up run: a no-op
    assert len(sim.messages) == 1


# -- incomplete weeks ------------------------------------------------------------------------------------
def test_incomplete_and_future_weeks_need_force_and_a_partial_never_blocks_the_digest(store: Store, slack) -> None:
    sim, url = slack
    settings = _settings(url)
    wednesday = MON + 2 * DAY                                  # in W48
    with pytest.raises(UsageError, match="2026-W48 is not over yet .*--force"):
        post_once(store, settings, "2026-W48", now=wednesday)
    with pytest.raises(UsageError, match="2026-W49 has not begun"):
        post_once(store, settings, "2026-W49", now=wednesday)
    assert sim.requests_made() == 0
    assert post_once(store, settings, "2026-W48", now=wednesday, force=True).startswith("posted (partial")
    kinds = {r["key"]: r["kind"] for r in store.query("SELECT key, kind FROM outbox")}
    assert kinds == {f"digest-partial:2026-W48:{wednesday}": "digest-partial"}
    assert post_due(store, settings, now=MON + 7 * DAY) == "posted"          # Monday: the complete W48
    assert len(sim.messages) == 2 and _row(store, "digest:2026-W48")["status"] == "done"


def test_an_unknown_post_that_cannot_be_checked_stays_unknown_until_forced(store: Store) -> None:
    sim = SlackSim(bot_token=TOKEN, channels=("#support",), scopes=("chat:write",))   # no channels:history
    with SimServer(sim) as server:
        settings = _settings(server.url)
        sim.inject(Fault("5xx", status=503, path="/api/chat.postMessage"))
        with pytest.raises(DigestOutcomeUnknownError):
            post_once(store, settings, W47, now=MON)
        for when in (MON + SETTLE_S + 1, MON + DAY):
            with pytest.raises(DigestOutcomeUnknownError, match="missing_scope .*channels:history.*--force"):
                post_once(store, settings, W47, now=when)
        assert sim.requests_made("chat.postMessage") == 1
        row = _row(store)
        assert row["status"] == "unknown" and row["last_error"].count("could not be checked") == 1
        assert post_once(store, settings, W47, now=MON + DAY, force=True) == "posted"
    assert len(sim.messages) == 1 and _row(store)["status"] == "done"


def test_the_daemon_never_posts_the_digest_of_an_empty_store(tmp_path: Path, slack) -> None:
    sim, url = slack
    with Store(tmp_path / "empty.db") as empty:
        assert post_due(empty, _settings(url), now=MON + DAY).startswith("not posted: nothing synced yet")
    assert sim.requests_made() == 0
