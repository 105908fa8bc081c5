"""No hangs in the HTTP layer: an overall deadline per request, and every wait ended by the stop handle.

Real loopback sockets (a read timeout is a socket property: ``responses`` cannot show it). No timed
assertions: each call runs in a thread joined with a generous bound, and the test asserts the outcome
(the error, that the call returned at all), never how long it took.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.errors import RetriableAPIError, Stopped
from connectors.http import HttpClient
from connectors.sim.base import Fault, SimServer
from connectors.sim.world import generate_world
from sync.simulators import build_simulator

BOUND_S = 30.0  # a generous bound on "it returned": the deadlines below are a fraction of a second


class TrickleServer:
    """A loopback HTTP server that answers every request one byte at a time, ``gap`` seconds apart.

    ``phase="body"``: the status line and headers at once, then the body trickles (each read is well
    within the read timeout, the response never ends). ``phase="headers"``: the headers themselves trickle.
    """

    def __init__(self, *, phase: str = "body", gap: float = 0.2, body: bytes = b'{"ok": true}' + b" " * 200,
                 status: str = "200 OK", extra_headers: str = "") -> None:
        self.phase, self.gap, self.body, self.status, self.extra = phase, gap, body, status, extra_headers
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted = 0
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                head = (f"HTTP/1.1 {self.status}\r\nContent-Type: application/json\r\n{self.extra}"
                        f"Content-Length: {len(self.body)}\r\n\r\n").encode()
                if self.phase == "headers":
                    conn.sendall(head[:9])
                    slow, fast = head[9:], b""
                else:
                    conn.sendall(head)
                    slow, fast = self.body, b""
                for i in range(len(slow)):
                    if self.closed.is_set():
                        return
                    conn.sendall(slow[i:i + 1])
                    time.sleep(self.gap)
                conn.sendall(fast + (self.body if self.phase == "headers" else b""))
            except OSError:
                return  # the client hung up: what a deadline does

    def close(self) -> None:
        self.closed.set()
        self.sock.close()


@pytest.fixture
def trickle() -> Iterator[Callable[..., TrickleServer]]:
    servers: list[TrickleServer] = []

    def make(**kwargs: Any) -> TrickleServer:
        servers.append(TrickleServer(**kwargs))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def run_bounded(call: Callable[[], Any]) -> BaseException | Any:
    """Run ``call`` in a thread; fail the test if it has not returned within BOUND_S. Returns its outcome."""
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(BOUND_S)
    assert not thread.is_alive(), "the request never returned: no overall deadline"
    return outcome[0]


def client(url: str, **kwargs: Any) -> HttpClient:
    options: dict[str, Any] = {"source": "acme", "base_url": url, "timeout": (5.0, 5.0), "max_retries": 1,
                               "sleep": lambda _s: None, "request_deadline": 0.5}
    return HttpClient(**{**options, **kwargs})


def test_a_trickling_body_hits_the_deadline_is_retried_then_fails_naming_source_and_endpoint(trickle) -> None:
    server = trickle(phase="body", gap=0.2)
    with client(server.url) as http:
        outcome = run_bounded(lambda: http.get_json("/api/v2/incremental/tickets/cursor.json"))
        sent = http.requests_sent
    assert isinstance(outcome, RetriableAPIError), outcome
    text = str(outcome)
    assert "acme" in text and "/api/v2/incremental/tickets/cursor.json" in text
    assert "request deadline" in text and "gave up after 2 attempts" in text
    assert sent == 2  # one retry, like a timeout


def test_trickling_headers_hit_the_deadline_too(trickle) -> None:
    server = trickle(phase="headers", gap=0.2)
    with client(server.url, max_retries=0) as http:
        outcome = run_bounded(lambda: http.get_json("/api/v2/users.json"))
    assert isinstance(outcome, RetriableAPIError), outcome
    assert "request deadline" in str(outcome) and "/api/v2/users.json" in str(outcome)


def test_a_post_that_may_have_landed_is_not_resent_after_the_deadline(trickle) -> None:
    server = trickle(phase="body", gap=0.2)
    with client(server.url, max_retries=3) as http:
        outcome = run_bounded(lambda: http.request("POST", "/api/chat.postMessage", json={}, repeatable=False))
        sent = http.requests_sent
    assert isinstance(outcome, RetriableAPIError) and "request deadline" in str(outcome)
    assert sent == 1


def test_a_fast_answer_is_unaffected_by_the_deadline(trickle) -> None:
    server = trickle(phase="body", gap=0.0)
    with client(server.url, request_deadline=30.0) as http:
        assert run_bounded(lambda: http.get_json("/x")) == {"ok": True}


def test_without_a_deadline_a_request_still_completes(trickle) -> None:
    server = trickle(phase="body", gap=0.0)
    with client(server.url, request_deadline=None) as http:
        assert run_bounded(lambda: http.get_json("/x")) == {"ok": True}


def test_the_stop_handle_ends_a_request_in_flight(trickle) -> None:
    server = trickle(phase="body", gap=0.2)
    stop = threading.Event()
    with client(server.url, request_deadline=3600.0, max_retries=5, stop=stop) as http:
        threading.Timer(0.3, stop.set).start()
        outcome = run_bounded(lambda: http.get_json("/api/v2/tickets.json"))
        sent = http.requests_sent
    assert isinstance(outcome, Stopped), outcome
    assert sent == 1  # a stop is not retried


def test_the_stop_handle_ends_a_long_retry_after_wait(trickle) -> None:
    """429 with Retry-After 86400 (capped at 300 s): the real sleep is interruptible."""
    server = trickle(phase="body", gap=0.0, status="429 Too Many Requests", extra_headers="Retry-After: 86400\r\n",
                     body=b'{"error": "rate limited"}')
    stop = threading.Event()
    http = HttpClient(source="acme", base_url=server.url, max_retries=3, max_retry_wait=300.0)  # real time.sleep
    http.watch_stop(stop)
    try:
        threading.Timer(0.3, stop.set).start()
        outcome = run_bounded(lambda: http.get_json("/api/v2/tickets.json"))
    finally:
        http.close()
    assert isinstance(outcome, Stopped), outcome
    assert server.accepted == 1


def test_the_stop_handle_ends_a_pacing_wait(trickle) -> None:
    server = trickle(phase="body", gap=0.0)
    stop = threading.Event()
    http = HttpClient(source="acme", base_url=server.url, requests_per_minute=1, stop=stop)  # real time.sleep
    try:
        assert http.get_json("/a") == {"ok": True}
        threading.Timer(0.3, stop.set).start()
        outcome = run_bounded(lambda: http.get_json("/b"))  # the budget holds this one for ~60 s
    finally:
        http.close()
    assert isinstance(outcome, Stopped), outcome


def test_nothing_is_sent_once_stop_is_set(trickle) -> None:
    server = trickle(phase="body", gap=0.0)
    stop = threading.Event()
    stop.set()
    with client(server.url, stop=stop) as http:
        with pytest.raises(Stopped):
            http.get_json("/a")
        assert http.requests_sent == 0


def test_simulator_trickle_fault_fails_the_stream_with_a_clear_line(tmp_path) -> None:
    """End to end: the Zendesk simulator trickles the ticket export; the sync engine reports that one stream."""
    from config.settings import Settings
    from sync.engine import SyncEngine
    from sync.store import Store

    sim, source = build_simulator("zendesk", generate_world(seed=3, tickets=40), speedup=1000)
    sim.inject(Fault("trickle", count=2, path="/api/v2/incremental/tickets", delay=0.2))
    with SimServer(sim) as server:
        settings = Settings.model_validate({"sources": [{**source, "name": "zd", "base_url": server.url,
                                                         "request_deadline": 0.5, "max_retries": 1}]})
        with Store(tmp_path / "d.db") as store:
            engine = SyncEngine(store, settings)
            report = run_bounded(lambda: engine.sync_source(settings.sources[0], streams=["tickets"]))
    assert not isinstance(report, BaseException), report
    [stream] = report.streams
    assert stream.error is not None
    assert "zd" in stream.error and "/api/v2/incremental/tickets" in stream.error
    assert "request deadline" in stream.error
