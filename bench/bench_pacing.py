"""Pacing benchmark: does HttpClient use a vendor's rate limit fully without running into 429s?

Run on demand: ``python bench/bench_pacing.py`` (about 30 s with the defaults).

Each scenario starts its own tiny simulator on 127.0.0.1 that admits R
requests per window W (scaled down: 120 per 6 s), answers 429 beyond it
(with ``Retry-After`` for Zendesk style, ``X-RateLimit-Reset`` only for
Intercom style) and sends the vendor's rate-limit headers on every response.
An HttpClient configured the way a connector would configure it (a matching
``Budget``, or only the vendor's header parser rescaled to W) then calls it
in a loop for N windows. The scenarios run side by side.

It prints figures; it asserts nothing about timings. Goal: achieved >= 0.95 R
per window, and no 429 after the first window.
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
import threading
import time
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors.http import Budget, HttpClient  # noqa: E402
from connectors.intercom.ratelimit import intercom_rate_headers  # noqa: E402
from connectors.ratelimit import RateHeaderParser  # noqa: E402
from connectors.sim.base import SimRequest, SimResponse, SimServer, Simulator  # noqa: E402
from connectors.zendesk.ratelimit import zendesk_rate_headers  # noqa: E402

PATH = "/api/v2/incremental/tickets/cursor.json"


class RateLimitedSim(Simulator):
    """A vendor that admits ``limit`` requests per ``window`` seconds, fixed (epoch-aligned) or sliding."""

    kind = "pacing-bench"

    def __init__(self, *, limit: int, window: float, style: str, mode: str) -> None:
        super().__init__()
        self.limit, self.window, self.style, self.mode = limit, window, style, mode
        self.accepted: list[float] = []
        self.rejected: list[float] = []
        self.route("GET", r"/api/v2/.*", lambda req: SimResponse.json({"tickets": [], "end_of_stream": False}))

    def _used_and_reset(self, now: float) -> tuple[int, float]:
        if self.mode == "fixed":
            start = math.floor(now / self.window) * self.window
            return len(self.accepted) - bisect_left(self.accepted, start), start + self.window
        first = bisect_right(self.accepted, now - self.window)
        used = len(self.accepted) - first
        return used, (self.accepted[first] + self.window if used else now)

    def _headers(self, remaining: int, reset: float) -> dict[str, str]:
        if self.style == "intercom":
            return {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(remaining),
                    "X-RateLimit-Reset": str(math.ceil(reset))}
        return {"X-Rate-Limit": str(self.limit), "X-Rate-Limit-Remaining": str(remaining)}

    def rate_limit(self, req: SimRequest) -> tuple[SimResponse | None, dict[str, str]]:
        with self.lock:
            now = self.clock()
            used, reset = self._used_and_reset(now)
            if used >= self.limit:
                self.rejected.append(now)
                resp = self.error(429, "rate limited")
                resp.headers.update(self._headers(0, reset))
                if self.style != "intercom":  # Intercom documents no Retry-After: clients wait for the reset
                    resp.headers["Retry-After"] = str(max(1, math.ceil(reset - now)))
                return resp, {}
            self.accepted.append(now)
            return None, self._headers(self.limit - used - 1, reset)


@dataclass
class Scenario:
    name: str
    style: str
    mode: str
    use_budget: bool
    use_headers: bool
    threads: int = 1


SCENARIOS = [
    Scenario("budget only, fixed windows", "zendesk", "fixed", True, False),
    Scenario("budget only, 4 threads", "zendesk", "fixed", True, False, threads=4),
    Scenario("zendesk headers, fixed windows", "zendesk", "fixed", False, True),
    Scenario("zendesk headers, sliding window", "zendesk", "sliding", False, True),
    Scenario("budget + zendesk headers", "zendesk", "sliding", True, True),
    Scenario("intercom headers (reset)", "intercom", "fixed", False, True),
]


@dataclass
class Result:
    scenario: Scenario
    per_window: float
    windows: list[int]
    late_429: int
    total_429: int
    sent: int


def run(scenario: Scenario, rate: int, window: float, n_windows: int) -> Result:
    sim = RateLimitedSim(limit=rate, window=window, style=scenario.style, mode=scenario.mode)
    server = SimServer(sim)
    # Without TCP_NODELAY the base server's separate header/body writes meet delayed ACKs on a keep-alive
    # connection: ~44 ms per request, which would make this a latency benchmark rather than a pacing one.
    server.httpd.RequestHandlerClass.disable_nagle_algorithm = True  # type: ignore[attr-defined]
    server.start()
    parser: RateHeaderParser | None = None
    if scenario.use_headers:
        base = intercom_rate_headers if scenario.style == "intercom" else zendesk_rate_headers
        parser = functools.partial(base, window_s=window)
    budgets = [Budget("bench", r"^/api/v2/", rate, window)] if scenario.use_budget else []
    client = HttpClient(source="bench", base_url=server.url, rate_headers=parser, budgets=budgets,
                        max_retry_wait=2 * window, timeout=(2.0, 5.0))
    start = time.time()
    end = start + n_windows * window

    def loop() -> None:
        while time.time() < end:
            client.get_json(PATH)

    workers = [threading.Thread(target=loop) for _ in range(scenario.threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    server.stop()
    client.close()
    t0 = sim.accepted[0] if sim.accepted else start
    first_end = t0 + window
    # Fixed windows are counted as the server counts them (epoch-aligned); a sliding one from the first request.
    lo = math.ceil(t0 / window) * window if scenario.mode == "fixed" else first_end
    count = max(1, int((t0 + n_windows * window - lo) // window))
    windows = [sum(1 for t in sim.accepted if lo + k * window <= t < lo + (k + 1) * window) for k in range(count)]
    return Result(scenario, sum(windows) / count, windows, sum(1 for t in sim.rejected if t >= first_end),
                  len(sim.rejected), client.requests_sent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=120, help="requests admitted per window (R)")
    parser.add_argument("--window", type=float, default=6.0, help="window length in seconds (W)")
    parser.add_argument("--windows", type=int, default=4, help="windows per scenario (the first is warm-up)")
    parser.add_argument("--only", default="", help="run only scenarios whose name contains this")
    args = parser.parse_args()
    chosen = [s for s in SCENARIOS if args.only in s.name]
    print(f"R = {args.rate} requests per {args.window:g} s window, {args.windows} windows per scenario, "
          f"{len(chosen)} scenarios side by side ...", flush=True)
    results: list[Result | None] = [None] * len(chosen)

    def target(i: int, scenario: Scenario) -> None:
        results[i] = run(scenario, args.rate, args.window, args.windows)

    threads = [threading.Thread(target=target, args=(i, s)) for i, s in enumerate(chosen)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"{'scenario':34} {'achieved/window':>15} {'vs R':>6} {'per full window after the 1st':>30} "
          f"{'429 after 1st':>13} {'429 total':>9} {'sent':>6}")
    for result in results:
        if result is None:
            continue
        ratio = result.per_window / args.rate
        print(f"{result.scenario.name:34} {result.per_window:15.1f} {ratio:6.1%} {str(result.windows):>30} "
              f"{result.late_429:13d} {result.total_429:9d} {result.sent:6d}")


if __name__ == "__main__":
    main()
