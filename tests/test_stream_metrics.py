"""The HTTP layer's counts per source AND stream (issue 13 §2): requests, 429 answers and retries.

``connectors.http.counting_as(stream)`` labels the requests made meanwhile; the sync engine wraps each stream's
run in it, and a connector's thread pool carries the label only through ``in_current_context`` (an executor's
threads do not inherit the caller's context variables). Unit tests go through ``responses`` with the fake
clock; the sync tests run the Freshdesk and Intercom simulators on loopback, with their pooled fetches meeting
injected 429s; the last test scrapes a running ``deskpulse daemon``'s ``/metrics``.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import responses

import sync.registry  # noqa: F401 - hands the installed helpdesks' source models to config
from config.settings import Settings
from connectors.http import HttpClient, counting_as, http_counts, in_current_context
from connectors.sim.base import Fault, SimServer
from connectors.sim.world import generate_world
from sync import health
from sync.engine import SyncEngine
from sync.simulators import DEMO_SPEEDUP, RunningSim, build_simulator, start_simulator
from sync.store import Store
from tests.fake_time import FakeTime
from tests.test_daemon_health import RunningDaemon, value, wait_until, write_config

T0 = 1_800_000_000.0
BASE = "https://labels.example.com"
ZERO = {"requests": 0, "throttled": 0, "retries": 0}

Counts = dict[tuple[str, str], dict[str, int]]


def since(before: Counts, source: str) -> Counts:
    """What ``source`` counted since ``before``, per (source, stream), leaving out what did not move."""
    out = {}
    for key, now in http_counts().items():
        if key[0] == source:
            delta = {k: v - before.get(key, ZERO)[k] for k, v in now.items()}
            if any(delta.values()):
                out[key] = delta
    return out


def client(source: str, time: FakeTime | None = None) -> HttpClient:
    time = time or FakeTime(T0)
    return HttpClient(source=source, base_url=BASE, sleep=time.sleep, clock=time.clock)


# -- the label --------------------------------------------------------------------------------------------------
@responses.activate
def test_counting_as_labels_the_requests_made_meanwhile_and_restores_the_outer_label() -> None:
    responses.add(responses.GET, f"{BASE}/a", json={})
    responses.add(responses.GET, f"{BASE}/throttled", status=429, headers={"Retry-After": "1"})
    responses.add(responses.GET, f"{BASE}/throttled", json={})
    before = http_counts()
    http = client("lbl-nest")
    http.get_json("/a")  # outside any stream: the empty label
    with counting_as("tickets"):
        http.get_json("/throttled")  # a 429, its retry and the answer: all the stream's
        with counting_as("users"):
            http.get_json("/a")
        http.get_json("/a")  # back to the outer label
    http.get_json("/a")
    assert since(before, "lbl-nest") == {
        ("lbl-nest", ""): {"requests": 2, "throttled": 0, "retries": 0},
        ("lbl-nest", "tickets"): {"requests": 3, "throttled": 1, "retries": 1},
        ("lbl-nest", "users"): {"requests": 1, "throttled": 0, "retries": 0},
    }


@responses.activate
def test_concurrent_threads_keep_their_own_label() -> None:
    """Two sources' syncs can run at once (the contract kit, a CLI beside the daemon): a label is per thread."""
    responses.add(responses.GET, f"{BASE}/a", json={})
    before = http_counts()
    http = client("lbl-threads")
    both_labelled = threading.Barrier(2, timeout=10)

    def run(stream: str, n: int) -> None:
        with counting_as(stream):
            both_labelled.wait()  # each thread requests while the other's label is set
            for _ in range(n):
                http.get_json("/a")

    threads = [threading.Thread(target=run, args=(stream, n)) for stream, n in (("tickets", 3), ("users", 2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert since(before, "lbl-threads") == {("lbl-threads", "tickets"): {"requests": 3, "throttled": 0, "retries": 0},
                                            ("lbl-threads", "users"): {"requests": 2, "throttled": 0, "retries": 0}}


@responses.activate
def test_pooled_work_counts_under_the_stream_only_through_in_current_context() -> None:
    responses.add(responses.GET, f"{BASE}/a", json={})
    before = http_counts()
    http = client("lbl-pool")
    four_at_once = threading.Barrier(4, timeout=10)  # the tasks run in the captured context at the same time

    def task(_i: int) -> Any:
        four_at_once.wait()
        return http.get_json("/a")

    with counting_as("tickets"), ThreadPoolExecutor(4) as pool:
        assert len(list(pool.map(in_current_context(task), range(8)))) == 8
        list(pool.map(lambda _i: http.get_json("/a"), range(2)))  # unwrapped: the worker knows no stream
    assert since(before, "lbl-pool") == {("lbl-pool", "tickets"): {"requests": 8, "throttled": 0, "retries": 0},
                                         ("lbl-pool", ""): {"requests": 2, "throttled": 0, "retries": 0}}


# -- the daemon's jobs and the exposition -----------------------------------------------------------------------
class TalkingPipeline:
    """A pipeline whose every job body sends one request, the way write-back and the digest do."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    def sync(self, source: str) -> bool:
        self.http.get_json("/a")
        return True

    def refresh(self, *, writeback: bool) -> int:
        self.http.get_json("/a")
        return 0

    def digest(self) -> str:
        self.http.get_json("/a")
        return "posted"


@responses.activate
def test_the_daemon_counts_write_back_and_digest_requests_under_their_job_and_exports_both_labels() -> None:
    from prometheus_client import CollectorRegistry

    responses.add(responses.GET, f"{BASE}/a", json={})
    before = http_counts()
    timed = health.TimedPipeline(TalkingPipeline(client("lbl-jobs")), health.DaemonMetrics(CollectorRegistry()))
    assert timed.refresh(writeback=True) == 0 and timed.digest() == "posted" and timed.sync("x") is True
    one = {"requests": 1, "throttled": 0, "retries": 0}
    # a sync job's streams are labelled by the engine (below), not by the job
    assert since(before, "lbl-jobs") == {("lbl-jobs", "writeback"): one, ("lbl-jobs", "digest"): one,
                                         ("lbl-jobs", ""): one}
    exported = {(s.name, tuple(sorted(s.labels.items()))): s.value
                for f in health.StoreCollector._http() for s in f.samples}
    for stream in ("writeback", "digest", ""):
        labels = (("source", "lbl-jobs"), ("stream", stream))
        assert exported[("deskpulse_http_requests_total", labels)] == http_counts()[("lbl-jobs", stream)]["requests"]
        assert exported[("deskpulse_http_throttled_total", labels)] == 0


# -- a sync on the simulators: pooled fetches count under their stream ------------------------------------------
def sync_on_simulator(tmp_path: Path, kind: str, name: str, *faults: Fault) -> tuple[Any, Counts, dict[str, int]]:
    """One sync of a fresh simulator: the run's report, what it counted per stream, what the simulator served."""
    sim, source = build_simulator(kind, generate_world(seed=4, tickets=30), speedup=1000)
    for fault in faults:
        sim.inject(fault)
    with SimServer(sim) as server, Store(tmp_path / f"{name}.db") as store:
        settings = Settings(sources=[{**source, "name": name, "base_url": server.url}])
        before = http_counts()
        [report] = SyncEngine(store, settings).sync_all()
    return report, since(before, name), dict(sim.served)


def assert_counted_per_stream(report: Any, counts: Counts, served: dict[str, int], *, met: str) -> None:
    assert report.ok, [(s.stream, s.error) for s in report.streams]
    # every request the simulator answered is counted once, under a stream that ran (none under "")
    assert {stream for _source, stream in counts} == {s.stream for s in report.streams}
    assert sum(c["requests"] for c in counts.values()) == sum(served.values())
    for (_source, stream), c in counts.items():
        assert c["requests"] > 0
        assert c["throttled"] == c["retries"] == (2 if stream == met else 0), stream


@pytest.mark.parametrize(("kind", "name", "pooled_path", "met", "pooled"), [
    # Freshdesk: only the per-ticket conversation fetches (the pool's work) live under /api/v2/tickets/
    ("freshdesk", "fd-pooled", "/api/v2/tickets/", "tickets", lambda what: what.endswith("/conversations")),
    # Intercom: GET /conversations/1, /10../19 are single fetches (the pool's work); the search is /conversations/search
    ("intercom", "ic-pooled", "/conversations/1", "conversations", lambda what: what.startswith("GET /conversations/")),
], ids=["freshdesk-conversations-under-tickets", "intercom-conversations-under-conversations"])
def test_requests_fetched_in_a_connectors_pool_count_under_their_stream(
        tmp_path: Path, kind: str, name: str, pooled_path: str, met: str, pooled: Callable[[str], bool]) -> None:
    report, counts, served = sync_on_simulator(tmp_path, kind, name,
                                               Fault("429", count=2, path=pooled_path, retry_after=0.2))
    assert_counted_per_stream(report, counts, served, met=met)
    fetched = sum(n for what, n in served.items() if pooled(what))
    assert fetched >= 30 + 2 and counts[(name, met)]["requests"] > fetched


# -- a running daemon's /metrics ---------------------------------------------------------------------------------
@pytest.fixture
def pooled_sims() -> Iterator[list[RunningSim]]:
    sims = [start_simulator("freshdesk", tickets=40, seed=5, speedup=DEMO_SPEEDUP, name="fd"),
            start_simulator("intercom", tickets=40, seed=5, speedup=DEMO_SPEEDUP, name="ic")]
    yield sims
    for sim in sims:
        sim.server.stop()


@pytest.mark.skipif(shutil.which("deskpulse") is None, reason="console script not installed")
def test_the_daemon_metrics_count_requests_429s_and_retries_per_source_and_stream(
        tmp_path: Path, pooled_sims: list[RunningSim]) -> None:
    freshdesk, intercom = pooled_sims
    freshdesk.sim.inject(Fault("429", count=2, path="/api/v2/tickets/", retry_after=0.2))
    intercom.sim.inject(Fault("429", count=2, path="/conversations/1", retry_after=0.2))
    write_config(tmp_path, [freshdesk.source, intercom.source])
    daemon = RunningDaemon(tmp_path)
    try:
        wait_until("both syncs", lambda: all(
            value(daemon.metrics(), "deskpulse_job_runs_total", job=f"sync:{name}", outcome="ok") == 1
            for name in ("fd", "ic")))
        metrics = daemon.metrics()
    finally:
        code = daemon.stop()
    assert code == 0, "".join(daemon.lines)
    with sqlite3.connect(tmp_path / "d.db") as conn:
        ran = set(conn.execute("SELECT source, stream FROM sync_state").fetchall())
    assert {s for s, _ in ran} == {"fd", "ic"} and len(ran) > 10
    requests = metrics["deskpulse_http_requests_total"]
    assert {(dict(k)["source"], dict(k)["stream"]) for k in requests} == ran  # every stream, and only streams
    met = {("fd", "tickets"), ("ic", "conversations")}
    for source, stream in ran:
        assert value(metrics, "deskpulse_http_requests_total", source=source, stream=stream) > 0
        expected = 2 if (source, stream) in met else 0
        assert value(metrics, "deskpulse_http_throttled_total", source=source, stream=stream) == expected
        assert value(metrics, "deskpulse_http_retries_total", source=source, stream=stream) == expected
    assert value(metrics, "deskpulse_http_requests_total", source="fd", stream="tickets") > 40
    assert value(metrics, "deskpulse_http_requests_total", source="ic", stream="conversations") > 40
