"""The fake clock the contract kit shares between a simulator and the HTTP client: time moves only when
something sleeps (a retry, a Retry-After wait, pacing) or the test moves it, so no contract test waits."""

from __future__ import annotations

import threading


class FakeTime:
    """A thread-safe clock; ``sleep`` records the wait and advances time, ``advance`` moves it by hand."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = float(now)
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def __call__(self) -> float:
        """The clock itself, for code that takes a ``clock`` callable."""
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds
