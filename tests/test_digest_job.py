"""The weekly digest job: built from the store, posted once per ISO week, errors recorded not swallowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import Settings
from connectors.sim.base import SimServer
from connectors.sim.slack import SlackSim
from connectors.sim.world import generate_world
from connectors.slack import SlackError
from kpi_engine.distress import refresh
from sync.daemon import Daemon
from sync.digest_job import build_payload, last_complete_week, post_once
from sync.pipeline import Pipeline
from sync.store import Store
from tests.world_loader import load_world

WEBHOOK = "/services/T1/B1/digest-test-secret"


@pytest.fixture(scope="module")
def world():
    return generate_world(seed=9, tickets=800)


@pytest.fixture
def store(tmp_path: Path, world) -> Store:
    s = Store(tmp_path / "d.db")
    load_world(s, world, source="zd")
    refresh(s.conn, settings=Settings().distress, as_of=world.now, history_days=8)
    yield s
    s.close()


@pytest.fixture
def slack():
    sim = SlackSim(webhook_path=WEBHOOK)
    with SimServer(sim) as server:
        yield sim, server.url + WEBHOOK


def settings_for(url: str, db: Path | None = None) -> Settings:
    extra = {"store": {"path": db}} if db else {}
    return Settings(slack={"webhook_url": url}, kpi={"timezone": "Europe/Berlin"}, **extra)


def test_last_complete_week_is_the_previous_iso_week() -> None:
    # Monday 2026-11-23 08:00 UTC in Berlin is week 48; the digest covers week 47.
    assert last_complete_week(1795420800, "Europe/Berlin") == "2026-W47"


def test_payload_has_the_weeks_numbers_and_oldest_tickets(store: Store, world) -> None:
    week = last_complete_week(world.now, "UTC")
    payload = build_payload(store, Settings(), week, now=world.now)
    text = payload["text"]
    assert week in text or week.split("-W")[1] in text
    assert len(payload["blocks"]) <= 50
    oldest = store.scalar("SELECT id FROM tickets WHERE status IN ('new','open','pending','on_hold') "
                          "AND NOT is_spam AND NOT is_merged ORDER BY created_at LIMIT 1")  # merged: not open work
    assert any(f"#{oldest}" in str(block) for block in payload["blocks"])


def test_posting_twice_posts_once(store: Store, slack, world) -> None:
    sim, url = slack
    s = settings_for(url)
    week = last_complete_week(world.now, s.kpi.timezone)
    assert post_once(store, s, week, now=world.now) == "posted"
    assert post_once(store, s, week, now=world.now + 60) == "already posted"
    assert len(sim.messages) == 1
    row = store.query("SELECT status, attempts FROM outbox WHERE key = ?", [f"digest:{week}"])[0]
    assert row == {"status": "done", "attempts": 1}
    dump = "\n".join(str(r) for r in store.query("SELECT * FROM outbox"))
    assert "digest-test-secret" not in dump


def test_a_refused_post_is_recorded_and_retried_next_time(store: Store, slack, world) -> None:
    sim, url = slack
    s = settings_for(url + "-wrong")  # an unknown webhook: Slack answers 404 no_service
    week = last_complete_week(world.now, s.kpi.timezone)
    with pytest.raises(SlackError) as info:
        post_once(store, s, week, now=world.now)
    assert "digest-test-secret" not in str(info.value)
    row = store.query("SELECT status, last_error FROM outbox WHERE key = ?", [f"digest:{week}"])[0]
    assert row["status"] == "failed" and "no_service" in row["last_error"]
    assert post_once(store, settings_for(url), week, now=world.now) == "posted"
    assert len(sim.messages) == 1


def test_daemon_restarted_on_digest_day_posts_once(tmp_path: Path, store: Store, slack, world) -> None:
    sim, url = slack
    s = settings_for(url, db=store.path)
    for _ in range(2):  # the digest job of a daemon, then of its restarted successor, the same Monday
        d = Daemon(s, store.path, pipeline=Pipeline(s, store.path, clock=lambda: world.now), clock=lambda: world.now)
        d.digest_job()
    assert len(sim.messages) == 1
