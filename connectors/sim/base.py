"""What every vendor simulator shares: request/response types, routing, faults, counters, serving.

One implementation per vendor, mountable two ways (STYLE.md #7): on a real
loopback HTTP server (``serve``: demo, integration tests, benchmarks) or as a
``responses`` callback (``responses_callback``: fast unit tests). Never two
fakes of the same API.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(slots=True)
class SimRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        if not self.body:
            return None
        return json.loads(self.body.decode("utf-8"))

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lname:
                return value
        return None


@dataclass(slots=True)
class SimResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    trickle: float = 0.0  # loopback server only: seconds between body bytes (a "trickle" fault)

    @classmethod
    def json(cls, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> SimResponse:
        hdrs = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        return cls(status, json.dumps(payload, separators=(",", ":")).encode("utf-8"), hdrs)

    @classmethod
    def text(cls, body: str, status: int = 200, headers: dict[str, str] | None = None) -> SimResponse:
        hdrs = {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}
        return cls(status, body.encode("utf-8"), hdrs)


@dataclass(slots=True)
class Fault:
    """An injected failure: the next ``count`` requests whose path matches answer with it.

    kind: ``"429"`` (with ``retry_after``), ``"5xx"`` (``status``), ``"slow"`` (sleep ``delay`` then serve),
    ``"malformed"`` (the simulator corrupts ``count`` records in the next page it serves), ``"drop"``
    (close the connection without answering; loopback server only), ``"trickle"`` (serve the answer one body
    byte every ``delay`` seconds: every read returns in time, the response never ends in time; loopback only).
    """

    kind: str
    count: int = 1
    path: str = ""
    status: int = 503
    retry_after: float | None = 1.0
    delay: float = 0.0


Handler = Callable[..., SimResponse]


class Simulator:
    """Base of every vendor simulator: routing, auth check hook, faults, counters, clock."""

    kind = ""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.faults: list[Fault] = []
        self.served: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.lock = threading.RLock()
        self.base_url = "http://127.0.0.1"

    # -- routing ------------------------------------------------------------------------------------
    def route(self, method: str, pattern: str, handler: Handler) -> None:
        """Register ``handler(req, **groups)`` for ``method`` and a path regex (anchored both ends)."""
        self.routes.append((method.upper(), re.compile(f"^{pattern}$"), handler))

    def inject(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def take_fault(self, path: str, kinds: tuple[str, ...] | None = None) -> Fault | None:
        """Consume one matching fault, if any (thread-safe)."""
        with self.lock:
            for fault in self.faults:
                if fault.count > 0 and path.startswith(fault.path) and (kinds is None or fault.kind in kinds):
                    fault.count -= 1
                    if fault.count == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def authorize(self, req: SimRequest) -> SimResponse | None:
        """Return an error response when the request's credentials are wrong; vendors override."""
        return None

    def rate_limit(self, req: SimRequest) -> tuple[SimResponse | None, dict[str, str]]:
        """Return (429 response or None, headers to add to every response); vendors override."""
        return None, {}

    def error(self, status: int, message: str) -> SimResponse:
        """The vendor's error envelope; vendors override."""
        return SimResponse.json({"error": message}, status)

    def handle(self, req: SimRequest) -> SimResponse:
        """Route one request through auth, rate limits, faults and the vendor handler."""
        with self.lock:
            self.served[f"{req.method} {req.path}"] += 1
        denied = self.authorize(req)
        if denied is not None:
            return self._count(denied)
        limited, rl_headers = self.rate_limit(req)
        if limited is not None:
            return self._count(limited)
        fault = self.take_fault(req.path, ("429", "5xx", "slow", "drop", "trickle"))
        if fault is not None:
            if fault.kind == "429":
                hdrs = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
                resp = self.error(429, "rate limited")
                resp.headers.update(hdrs | rl_headers)
                return self._count(resp)
            if fault.kind == "5xx":
                return self._count(self.error(fault.status, "server error"))
            if fault.kind == "drop":
                raise ConnectionAbortedError("simulated dropped connection")
            if fault.kind == "slow":
                time.sleep(fault.delay)
        for method, pattern, handler in self.routes:
            match = pattern.match(req.path)
            if match and method == req.method:
                resp = handler(req, **match.groupdict())
                resp.headers.update(rl_headers)
                if fault is not None and fault.kind == "trickle":
                    resp.trickle = fault.delay
                return self._count(resp)
        return self._count(self.error(404, f"no route for {req.method} {req.path}"))

    def _count(self, resp: SimResponse) -> SimResponse:
        with self.lock:
            self.statuses[resp.status] += 1
        return resp

    def requests_made(self, prefix: str = "") -> int:
        """How many requests were served whose ``"METHOD /path"`` key contains ``prefix``."""
        with self.lock:
            return sum(n for key, n in self.served.items() if prefix in key)


# -- serving ------------------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    sim: Simulator
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else every kept-alive loopback request waits ~40 ms for delayed ACKs

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = SimRequest(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                         dict(self.headers.items()), body)
        try:
            resp = self.sim.handle(req)
        except ConnectionAbortedError:
            self.close_connection = True
            return
        self.send_response(resp.status)
        for key, value in resp.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if resp.trickle <= 0:
            self.wfile.write(resp.body)
            return
        try:
            for i in range(len(resp.body)):
                self.wfile.write(resp.body[i:i + 1])
                self.wfile.flush()
                time.sleep(resp.trickle)
        except OSError:  # the client gave up (its request deadline): stop trickling
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silence the default stderr access log."""


class SimServer:
    """A simulator on a loopback port, served from a background thread."""

    def __init__(self, sim: Simulator, port: int = 0, host: str = "127.0.0.1") -> None:
        handler = type("BoundHandler", (_Handler,), {"sim": sim})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.sim = sim
        self.port = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"
        sim.base_url = self.url
        self.thread = threading.Thread(target=self.httpd.serve_forever, name=f"sim-{sim.kind}", daemon=True)

    def start(self) -> SimServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(sim: Simulator, port: int = 0) -> SimServer:
    """Start ``sim`` on 127.0.0.1 (port 0: a free one) and return the running server."""
    return SimServer(sim, port).start()


def responses_callback(sim: Simulator) -> Callable[[Any], tuple[int, dict[str, str], bytes]]:
    """Adapter for ``responses.add_callback``: the same simulator, no sockets."""

    def callback(request: Any) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(request.url)
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        req = SimRequest(request.method, parts.path, parse_qs(parts.query, keep_blank_values=True),
                         dict(request.headers), body)
        resp = sim.handle(req)
        return resp.status, resp.headers, resp.body

    return callback
