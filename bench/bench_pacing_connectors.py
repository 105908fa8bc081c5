"""Pacing benchmark with the REAL connectors against their simulators' documented rate limits.

Run on demand: ``python bench/bench_pacing_connectors.py`` (about 30 s with the defaults).

``bench_pacing.py`` checks :class:`HttpClient` against a synthetic limiter; this one
checks what users get: each connector, configured exactly as ``build_http`` configures
it, syncing one stream from its own simulator with the vendor's limit switched on:

* Zendesk: incremental exports, ``export_limit_per_minute=R`` (sliding 60 s window,
  429 + ``Retry-After``) with a matching ``export_requests_per_minute=R`` budget and
  ``per_page=10`` so the tickets export takes many pages.
* Freshdesk: ``calls_per_minute=R`` credits (1 per call + 2 per ``include``; fixed
  window from the first call), paced from ``X-RateLimit-Total/-Remaining``.
* Intercom: ``limit_per_window=R`` per 10 s window (epoch-aligned), paced from
  ``X-RateLimit-Limit/-Remaining/-Reset``; 429 has no ``Retry-After``.

Time is scaled without editing anything: simulator and HttpClient share a clock that
runs ``k`` times faster than the wall clock, and the client's ``sleep`` sleeps ``1/k``
of what it is asked. All windows, Retry-After values and reset times stay in vendor
seconds, so the connector sees exactly the documented contract, just faster.

Reported per connector: units (requests, or Freshdesk credits) the simulator accepted
per window after the first window, as a fraction of the limit, and the 429s. Goal:
>= 0.95 of the limit, no 429 storm. It prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors.base import Stream  # noqa: E402
from connectors.freshdesk.settings import FreshdeskSource  # noqa: E402
from connectors.intercom.settings import IntercomSource  # noqa: E402
from connectors.sim.base import SimRequest, SimResponse, SimServer, Simulator  # noqa: E402
from connectors.sim.world import generate_world  # noqa: E402
from connectors.zendesk.settings import ZendeskSource  # noqa: E402
from sync.simulators import SIM_EMAIL, SIM_FRESHDESK_KEY, SIM_TOKEN  # noqa: E402


class ScaledClock:
    """Vendor time running ``k`` times faster than the wall clock; shared by simulator and client."""

    def __init__(self, k: float) -> None:
        self.k = k
        self.origin = time.time()

    def now(self) -> float:
        return self.origin + (time.time() - self.origin) * self.k

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.k)


@dataclass
class Recorder:
    """What the simulator's limiter decided for each counted request: (vendor time, status, units)."""

    records: list[tuple[float, int, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wrap(self, sim: Simulator, clock: Callable[[], float], counted: Callable[[SimRequest], bool],
             units: Callable[[SimRequest], int]) -> None:
        original = sim.rate_limit

        def rate_limit(req: SimRequest) -> tuple[SimResponse | None, dict[str, str]]:
            limited, headers = original(req)
            if counted(req):
                with self.lock:
                    self.records.append((clock(), 429 if limited is not None else 200, units(req)))
            return limited, headers

        sim.rate_limit = rate_limit  # type: ignore[method-assign]


@dataclass
class Scenario:
    name: str
    unit: str
    limit: int
    window_s: float
    k: float
    clock: ScaledClock
    sim: Simulator
    stream: Callable[[], Stream]
    recorder: Recorder
    aligned: bool = False  # the vendor's windows are epoch-aligned (Intercom): measure from a window start
    errors: list[str] = field(default_factory=list)
    pages: int = 0
    sent: Callable[[], int] = lambda: 0


def _drain(scenario: Scenario, deadline: float) -> None:
    """Read the stream page by page until vendor time passes ``deadline``; start over when it is exhausted."""
    while scenario.clock.now() < deadline:
        try:
            pages: Iterator[Any] = scenario.stream().pages(None)
            for _ in pages:
                scenario.pages += 1
                if scenario.clock.now() >= deadline:
                    break
        except Exception as exc:  # noqa: BLE001 - a gave-up 429 storm is a figure here, not a crash
            scenario.errors.append(f"{type(exc).__name__}: {str(exc)[:120]}")


def zendesk(world: Any, limit: int, k: float) -> Scenario:
    from connectors.sim.zendesk import ZendeskSim
    from connectors.zendesk import ZendeskConnector, build_http

    clock = ScaledClock(k)
    sim = ZendeskSim(world, email=SIM_EMAIL, token=SIM_TOKEN, export_limit_per_minute=limit,
                     account_limit_per_minute=10**6, clock=clock.now)
    rec = Recorder()
    rec.wrap(sim, clock.now, lambda req: req.path.startswith("/api/v2/incremental/"), lambda req: 1)
    server = SimServer(sim).start()
    source = ZendeskSource.model_validate({"name": "pz", "kind": "zendesk", "base_url": server.url, "email": SIM_EMAIL,
                                           "api_token": SIM_TOKEN, "per_page": 10,
                                           "export_requests_per_minute": limit})
    http = build_http(source, clock=clock.now, sleep=clock.sleep)
    conn = ZendeskConnector(source, http=http, clock=clock.now)
    return Scenario("zendesk exports", "req", limit, 60.0, k, clock, sim, lambda: conn.stream("tickets"), rec,
                    sent=lambda: http.requests_sent)


def freshdesk(world: Any, limit: int, k: float) -> Scenario:
    from connectors.freshdesk import FreshdeskConnector, build_http
    from connectors.sim.freshdesk import FreshdeskSim

    clock = ScaledClock(k)
    sim = FreshdeskSim(world, api_key=SIM_FRESHDESK_KEY, calls_per_minute=limit, clock=clock.now)
    rec = Recorder()
    rec.wrap(sim, clock.now, lambda req: True, FreshdeskSim._credits)
    server = SimServer(sim).start()
    source = FreshdeskSource.model_validate({"name": "pf", "kind": "freshdesk", "base_url": server.url,
                                             "api_key": SIM_FRESHDESK_KEY})
    http = build_http(source, clock=clock.now, sleep=clock.sleep)
    conn = FreshdeskConnector(source, http=http, clock=clock.now, per_page=30)
    tickets = next(s for s in conn.streams() if s.name == "tickets")
    return Scenario("freshdesk tickets", "credit", limit, 60.0, k, clock, sim, lambda: tickets, rec,
                    sent=lambda: http.requests_sent)


def intercom(world: Any, limit: int, k: float) -> Scenario:
    from connectors.intercom import IntercomConnector, build_http
    from connectors.sim.intercom import IntercomSim

    clock = ScaledClock(k)
    sim = IntercomSim(world, token=SIM_TOKEN, limit_per_window=limit, clock=clock.now, window_s=10.0)
    rec = Recorder()
    rec.wrap(sim, clock.now, lambda req: True, lambda req: 1)
    server = SimServer(sim).start()
    source = IntercomSource.model_validate({"name": "pi", "kind": "intercom", "base_url": server.url,
                                            "access_token": SIM_TOKEN, "admin_id": "1"})
    http = build_http(source, clock=clock.now, sleep=clock.sleep, window_s=10.0)
    conn = IntercomConnector(source, http=http, clock=clock.now)
    conversations = next(s for s in conn.streams() if s.name == "conversations")
    return Scenario("intercom conversations", "req", limit, 10.0, k, clock, sim, lambda: conversations, rec,
                    aligned=True, sent=lambda: http.requests_sent)


def measure(scenario: Scenario, windows: int) -> dict[str, Any]:
    start = scenario.clock.now()
    deadline = start + windows * scenario.window_s
    _drain(scenario, deadline)
    recs = sorted(r for r in scenario.recorder.records if r[0] < deadline)
    ok = [r for r in recs if r[1] == 200]
    first = ok[0][0] if ok else start
    if scenario.aligned:
        first = first // scenario.window_s * scenario.window_s
    steady_from = first + scenario.window_s
    steady = [r for r in recs if r[0] >= steady_from]
    complete = int((deadline - first) // scenario.window_s)  # whole windows only: a fixed-window vendor
    buckets = [0] * complete                                  # admits a burst at each window start
    for t, _, n in ok:
        i = int((t - first) // scenario.window_s)
        if 0 <= i < complete:
            buckets[i] += n
    after = buckets[1:]
    per_window = sum(after) / len(after) if after else 0.0
    return {"per_window": per_window, "ratio": per_window / scenario.limit,
            "r429_first": sum(1 for r in recs if r[1] == 429 and r[0] < steady_from),
            "r429_after": sum(1 for r in steady if r[1] == 429),
            "times_429": [round(r[0] - first, 2) for r in recs if r[1] == 429][:5],
            "requests": len(recs), "buckets": buckets, "wall": (deadline - start) / scenario.k}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=5, help="windows per connector (the first is warm-up)")
    parser.add_argument("--window-real", type=float, default=2.0, help="wall seconds one vendor window takes")
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--zendesk", type=int, default=60, help="export requests per minute")
    parser.add_argument("--freshdesk", type=int, default=240, help="credits per minute")
    parser.add_argument("--intercom", type=int, default=100, help="requests per 10 s window")
    parser.add_argument("--only", default="", help="comma-separated subset: zendesk,freshdesk,intercom")
    parser.add_argument("-v", action="store_true", help="log pacing waits and retries")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.v else logging.ERROR, format="%(asctime)s %(name)s %(message)s")

    world = generate_world(seed=7, tickets=args.tickets)
    import copy

    builders = [(zendesk, args.zendesk, 60.0), (freshdesk, args.freshdesk, 60.0), (intercom, args.intercom, 10.0)]
    rows = []
    for build, limit, window in builders:
        if args.only and build.__name__ not in args.only.split(","):
            continue
        scenario = build(copy.deepcopy(world), limit, window / args.window_real)
        result = measure(scenario, args.windows)
        rows.append((scenario, result))
        print(f"{scenario.name}: done in {result['wall']:.1f}s wall, {scenario.pages} pages, "
              f"{scenario.sent()} client requests, errors {len(scenario.errors)}", flush=True)

    print(f"\n{'connector':<24}{'limit/window':>14}{'achieved':>10}{'ratio':>7}{'429 1st win':>12}"
          f"{'429 after':>10}  per-window units (1st = warm-up)")
    for scenario, res in rows:
        limit = f"{scenario.limit} {scenario.unit}/{scenario.window_s:g}s"
        print(f"{scenario.name:<24}{limit:>14}{res['per_window']:>10.1f}{res['ratio']:>7.2f}{res['r429_first']:>12}"
              f"{res['r429_after']:>10}  {res['buckets']}")
    for scenario, res in rows:
        if res["times_429"]:
            print(f"  {scenario.name}: first 429s at vendor seconds {res['times_429']} after the first window start")
        for err in scenario.errors[:3]:
            print(f"  {scenario.name} error: {err}")
    print("\nGoal: ratio >= 0.95 and no 429 storm after the first window.")


if __name__ == "__main__":
    main()
