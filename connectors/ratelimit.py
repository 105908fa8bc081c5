"""Pacing: documented per-endpoint budgets, account-wide budgets and vendor rate-limit headers.

Why pace at all when 429s are retried? A 429 costs a round trip and, on
Zendesk's incremental exports, a Retry-After of about a minute and a half; a
long sync that keeps hitting the wall runs far slower than one that never
does. So the client keeps the vendor's count itself:

* :class:`Budget` / :class:`SlidingWindow`: at most ``max_requests`` in any
  ``per_seconds`` span. A slot is reserved when a request is sent and dated
  when its response *arrives*: the vendor counted the request somewhere in
  between, so spacing from the arrival is exact whatever the latency, and it
  is never more conservative than that (a burst of ``max_requests`` is fine).
* :class:`HeaderPacer`: follows the vendor's own ``remaining`` count. It does
  nothing while plenty remains; when few remain it spreads them over the time
  left (reset known: Intercom) or at the sustainable ``window/limit`` rate
  (Zendesk and Freshdesk send no reset), and at zero it waits for the reset,
  or for our own oldest counted request to leave the window.

Vendor header parsing is a :data:`RateHeaderParser` the connector picks; each vendor's lives with the
vendor (``connectors.zendesk.ratelimit.zendesk_rate_headers``, ``connectors.freshdesk.ratelimit...``,
``connectors.intercom.ratelimit...``; ``functools.partial(..., window_s=6)`` rescales one for a simulator
or benchmark), built from :class:`RateLimitInfo` and :func:`int_header`.
"""

from __future__ import annotations

import math
import re
import threading
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

import requests

_EPS = 1e-6


@dataclass
class RateLimitInfo:
    """What a response's rate-limit headers say about the account's current window."""

    limit: int | None
    remaining: int | None
    reset_at: float | None
    window_s: float = 60.0
    reset_in: float | None = None  # relative reset (seconds from receipt) when the vendor gives that instead
    cost: int = 1  # units the last request consumed (Freshdesk: 1 + 2 per include); the next is assumed alike


@dataclass
class Budget:
    """A per-endpoint budget the vendor documents, e.g. Zendesk incremental exports: 10 requests/min."""

    name: str
    path_pattern: str
    max_requests: int
    per_seconds: float


RateHeaderParser = Callable[[requests.Response], RateLimitInfo | None]


def int_header(resp: requests.Response, *names: str) -> int | None:
    """First parseable integer among ``names`` (tolerates "700, 700" from proxies that duplicate headers)."""
    for name in names:
        raw = resp.headers.get(name)
        if raw is None:
            continue
        match = re.match(r"\s*(-?\d+)", raw)
        if match:
            return int(match.group(1))
    return None


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP date; None if absent or garbage."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; an offset-less parse means the same
            return None
        seconds = when.timestamp() - now
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


@dataclass(eq=False)
class _Slot:
    at: float = math.inf  # arrival of the response; +inf while the request is in flight


class SlidingWindow:
    """At most ``max_requests`` requests in any ``per_seconds`` span (not thread-safe: the Pacer locks)."""

    def __init__(self, name: str, max_requests: int, per_seconds: float, path_pattern: str | None = None) -> None:
        if max_requests < 1 or per_seconds <= 0:
            raise ValueError(f"budget {name}: needs max_requests >= 1 and per_seconds > 0")
        self.name = name
        self.max_requests = max_requests
        self.per_seconds = per_seconds
        self.pattern = re.compile(path_pattern) if path_pattern is not None else None
        self._slots: list[_Slot] = []

    @classmethod
    def from_budget(cls, budget: Budget) -> SlidingWindow:
        return cls(budget.name, budget.max_requests, budget.per_seconds, budget.path_pattern)

    def matches(self, path: str) -> bool:
        return self.pattern is None or bool(self.pattern.search(path))

    def wait(self, now: float) -> float | None:
        """0 when a slot is free; else seconds until one frees; None when every slot is still in flight."""
        horizon = now - self.per_seconds + _EPS
        self._slots = [slot for slot in self._slots if slot.at > horizon]
        if len(self._slots) < self.max_requests:
            return 0.0
        done = [slot.at for slot in self._slots if slot.at != math.inf]
        return min(done) + self.per_seconds - now if done else None

    def reserve(self) -> _Slot:
        slot = _Slot()
        self._slots.append(slot)
        return slot


@dataclass
class HeaderPacer:
    """Proactive pacing from the vendor's rate-limit headers (state only; the Pacer locks and sleeps)."""

    low_fraction: float = 0.1
    info: RateLimitInfo | None = None
    observed_at: float = 0.0
    reset_at: float | None = None
    spent: int = 0  # units sent since ``info`` that it may not count
    counted: list[float] = field(default_factory=list)  # arrivals of ours that ``info`` counts (no-reset vendors)
    counted_costs: list[int] = field(default_factory=list)  # each counted arrival's own cost (Freshdesk credits)
    last_send: float | None = None
    arrivals: deque[tuple[float, int]] = field(default_factory=deque)

    def clear(self) -> None:
        self.info, self.reset_at, self.spent, self.counted, self.counted_costs = None, None, 0, [], []

    def sent(self, now: float) -> None:
        self.spent += self.info.cost if self.info is not None else 1
        self.last_send = now

    def observe(self, info: RateLimitInfo | None, now: float, in_flight: int) -> None:
        """Record a response's arrival and, when it carries a count, adopt it as the current truth."""
        self.arrivals.append((now, info.cost if info is not None else 1))
        window = info.window_s if info is not None else 60.0
        while self.arrivals and self.arrivals[0][0] <= now - max(window, 60.0):
            self.arrivals.popleft()
        if info is None or info.remaining is None:
            return
        self.info, self.observed_at, self.spent = info, now, in_flight * info.cost
        self.reset_at = info.reset_at if info.reset_at is not None else (
            now + info.reset_in if info.reset_in is not None else None)
        if self.reset_at is None:
            # The vendor's count covers our newest arrivals whose own costs add up to what it says is used
            # (a 7-credit listing and a 1-credit call differ: never assume every call cost what the last did).
            recent = [a for a in self.arrivals if a[0] > now - info.window_s]
            used = sum(c for _, c in recent) if info.limit is None else max(0, info.limit - info.remaining)
            picked: list[tuple[float, int]] = []
            total = 0
            for arrival in reversed(recent):
                if total >= used:
                    break
                picked.append(arrival)
                total += arrival[1]
            picked.reverse()
            self.counted = [t for t, _ in picked]
            self.counted_costs = [c for _, c in picked]

    def delay(self, now: float) -> float:
        """Seconds to hold the next request; 0 while plenty remains."""
        info = self.info
        if info is None or info.remaining is None:
            return 0.0
        low = max(1, math.ceil(info.limit * self.low_fraction)) if info.limit else 1
        if self.reset_at is not None:
            if now >= self.reset_at:
                self.clear()  # a new window began; the next response brings its count
                return 0.0
            left = info.remaining - self.spent
            if left < info.cost:
                return self.reset_at - now
            if left <= low and self.last_send is not None:
                calls = left // info.cost
                return max(0.0, self.last_send + (self.reset_at - self.last_send) / (calls + 1) - now)
            return 0.0
        window = info.window_s
        if now - self.observed_at >= window:
            self.clear()
            return 0.0
        freed = bisect_right(self.counted, now - window + _EPS)
        left = info.remaining - self.spent + sum(self.counted_costs[:freed])
        step = (window / info.limit if info.limit else window / 60.0) * info.cost
        if left < info.cost:
            if freed < len(self.counted):
                return max(0.0, self.counted[freed] + window - now)
            return max(0.0, max(self.last_send or self.observed_at, self.observed_at) + step - now)
        if left <= low and self.last_send is not None:
            return max(0.0, self.last_send + step - now)
        return 0.0


@dataclass
class Ticket:
    """What one admitted request holds until its response arrives."""

    slots: list[_Slot]


class Pacer:
    """Admits requests under every budget and the header count; thread-safe, with injectable sleep/clock."""

    def __init__(self, *, budgets: Sequence[Budget] = (), requests_per_minute: int | None = None,
                 clock: Callable[[], float], sleep: Callable[[float], None],
                 on_wait: Callable[[float, str, str], None] | None = None, low_fraction: float = 0.1) -> None:
        self.windows = [SlidingWindow.from_budget(b) for b in budgets]
        if requests_per_minute is not None:
            self.windows.append(SlidingWindow("requests_per_minute", requests_per_minute, 60.0))
        self.headers = HeaderPacer(low_fraction=low_fraction)
        self._clock, self._sleep, self._on_wait = clock, sleep, on_wait
        self._cond = threading.Condition()
        self._in_flight = 0
        self._hold_until = -math.inf

    def _wait_locked(self, path: str, now: float) -> tuple[float | None, str]:
        waits: list[tuple[float | None, str]] = [(self._hold_until - now, "Retry-After"),
                                                 (self.headers.delay(now), "rate-limit headers")]
        waits += [(w.wait(now), f"budget {w.name}") for w in self.windows if w.matches(path)]
        pending = [reason for wait, reason in waits if wait is None]
        if pending:
            return None, pending[0]
        return max(((wait or 0.0, reason) for wait, reason in waits), key=lambda item: item[0])

    def acquire(self, path: str) -> Ticket:
        """Block (through the injected ``sleep``) until ``path`` may be requested; reserve its slots."""
        while True:
            with self._cond:
                now = self._clock()
                wait, reason = self._wait_locked(path, now)
                if wait is None:  # every slot of a budget is in flight: wait for a response, in real time
                    self._cond.wait(timeout=0.05)
                    continue
                if wait <= _EPS:
                    self._in_flight += 1
                    self.headers.sent(now)
                    return Ticket([w.reserve() for w in self.windows if w.matches(path)])
            if self._on_wait is not None:
                self._on_wait(wait, reason, path)
            self._sleep(wait)

    def release(self, ticket: Ticket, info: RateLimitInfo | None, *, hold_for: float | None = None) -> None:
        """The response arrived: date the slots, adopt its header count, honour a Retry-After for everyone."""
        with self._cond:
            now = self._clock()
            for slot in ticket.slots:
                slot.at = now
            self._in_flight -= 1
            if hold_for is not None:
                self._hold_until = max(self._hold_until, now + hold_for)
                self.headers.observe(None, now, self._in_flight)
                self.headers.clear()  # the server told us exactly when to come back; its count is moot
            else:
                self.headers.observe(info, now, self._in_flight)
            self._cond.notify_all()
