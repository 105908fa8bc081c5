"""SIGTERM during the digest's Retry-After wait: the daemon stops at once, and the digest is neither lost nor
re-sent blindly (Slack had answered 429, so nothing landed: it is due again at the next run)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.errors import Stopped
from connectors.sim.base import Fault, SimServer
from connectors.sim.slack import SlackSim
from sync.digest_job import post_due
from sync.store import Store
from tests.test_digest_once import DAY, MON, TOKEN, W47, _row, _seeded, _settings


@pytest.fixture
def slack() -> Iterator[tuple[SlackSim, str]]:
    sim = SlackSim(bot_token=TOKEN, channels=("#support",))
    with SimServer(sim) as server:
        yield sim, server.url


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = _seeded(tmp_path / "d.db")
    yield s
    s.close()


def test_a_stop_during_slacks_retry_after_ends_the_post_and_leaves_it_due(
        slack: tuple[SlackSim, str], store: Store) -> None:
    sim, url = slack
    settings = _settings(url)
    sim.inject(Fault("429", retry_after=100, path="/api/chat.postMessage"))
    stop = threading.Event()
    raised: list[BaseException] = []

    def post() -> None:
        try:
            post_due(store, settings, now=MON + 60, stop=stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            raised.append(exc)

    worker = threading.Thread(target=post)
    worker.start()
    while sim.statuses.get(429, 0) == 0 and worker.is_alive():  # Slack has answered 429: the wait begins
        worker.join(0.05)
    stop.set()
    worker.join(60)  # a hang guard only: without the stop the wait would last Retry-After's 100 s
    assert not worker.is_alive(), "the Retry-After wait did not end with the stop"
    assert len(raised) == 1 and isinstance(raised[0], Stopped) and not raised[0].in_flight
    row = _row(store)
    assert row["status"] == "failed" and row["next_attempt_at"] == MON + 60 and row["attempts"] == 0
    assert "stopped before posting" in row["last_error"]
    assert sim.messages == []
    # the next run (the restarted daemon's catch-up) posts it once, with no --force and no history check
    assert post_due(store, settings, now=MON + 120) != "already posted"
    assert _row(store)["status"] == "done" and len(sim.messages) == 1
    assert post_due(store, settings, now=MON + DAY) == "already posted"
    assert W47 in _row(store)["key"]
