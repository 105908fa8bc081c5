"""Indexes and paging arithmetic behind the Zendesk simulator's incremental exports.

Why sorted integer keys and bisect: an export page must cost O(page), not
O(world), at 100k+ tickets (a full sync walks every page once, so nothing can
be amortised by caching alone). A key packs ``(timestamp, id[, k])`` into one
int, so ordering "by generated_timestamp, then id" is plain integer order, one
list holds the whole index compactly, and a write is one delete + one insort.

Cursor semantics (API-NOTES.md 1.2/5.1): the opaque cursor is base64 of
``"{ts}.0||{id}|"`` (the fixture's ``MTU3NjYxMzUzOS4wfHw0Njd8`` is
``1576613539.0||467|``) and means "strictly after (ts, id)". A resumed export
therefore loses nothing, and a later run from the persisted ``after_cursor``
sees exactly the tickets whose ``generated_timestamp`` moved past it.
"""

from __future__ import annotations

import base64
import bisect
import json
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

ID_BITS = 32
ID_MASK = (1 << ID_BITS) - 1


def encode_cursor(ts: int, ident: int) -> str:
    return base64.b64encode(f"{ts}.0||{ident}|".encode()).decode("ascii")


def decode_cursor(text: str) -> tuple[int, int] | None:
    """The (ts, id) a cursor stands for, or None when it is not one of ours."""
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True).decode("ascii")
        ts_text, sep, rest = raw.partition("||")
        if not sep or not rest.endswith("|"):
            return None
        return int(float(ts_text)), int(rest[:-1])
    except (ValueError, UnicodeDecodeError):
        return None


class KeyIndex:
    """A sorted list of ``ts << shift | low`` keys (``low`` = id, or ticket id and audit number)."""

    def __init__(self, keys: Iterable[int] = (), shift: int = ID_BITS) -> None:
        self.keys = sorted(keys)
        self.shift = shift

    def __len__(self) -> int:
        return len(self.keys)

    def key(self, ts: int, low: int) -> int:
        return (ts << self.shift) | low

    def add(self, key: int) -> None:
        bisect.insort(self.keys, key)

    def remove(self, key: int) -> None:
        i = bisect.bisect_left(self.keys, key)
        if i < len(self.keys) and self.keys[i] == key:
            del self.keys[i]

    def move(self, old: int, new: int) -> None:
        self.remove(old)
        self.add(new)

    def end(self, cutoff_ts: int) -> int:
        """Position after the last key whose timestamp is <= ``cutoff_ts`` (the one-minute exclusion)."""
        return bisect.bisect_right(self.keys, ((cutoff_ts + 1) << self.shift) - 1)

    def scan_after(self, after_key: int, cutoff_ts: int, limit: int,
                   skip: Callable[[int], bool] | None = None) -> tuple[list[int], int, bool]:
        """Keys strictly after ``after_key`` up to ``limit`` kept ones; returns (kept, last examined key, more)."""
        i = bisect.bisect_right(self.keys, after_key)
        end = self.end(cutoff_ts)
        kept: list[int] = []
        last = after_key
        keys = self.keys
        while i < end and len(kept) < limit:
            key = keys[i]
            i += 1
            last = key
            if skip is None or not skip(key):
                kept.append(key)
        more = i < end
        if more and skip is not None:  # only skipped keys left: that is the end of the stream too
            more = any(not skip(keys[n]) for n in range(i, end))
            if not more:
                last = keys[end - 1]
        return kept, last, more

    def time_slice(self, start_ts: int, cutoff_ts: int, limit: int) -> tuple[list[int], bool]:
        """Time-based export page: up to ``limit`` keys with ts >= start; returns (keys, end_of_stream).

        The next page starts at this page's ``end_time`` (its last timestamp), so items sharing that
        second are read again: duplicates, never gaps (API-NOTES.md: time-based exports may repeat
        items). When one second alone fills the page, the page runs on past that second, otherwise
        ``end_time`` would equal ``start_time`` and the export could never advance.
        """
        keys, shift = self.keys, self.shift
        i = bisect.bisect_left(keys, start_ts << shift)
        end = self.end(cutoff_ts)
        j = min(i + limit, end)
        if i < j < end and keys[j - 1] >> shift <= start_ts:
            j = bisect.bisect_right(keys, ((start_ts + 1) << shift) - 1)
            j = min(j + limit, end)
        return keys[i:j], j >= end


class RateWindow:
    """Requests in a sliding window of the simulator clock: how many are left, when the next frees up."""

    def __init__(self, limit: int | None, window_s: float = 60.0) -> None:
        self.limit, self.window_s = limit, window_s
        self.hits: deque[float] = deque()

    def _prune(self, now: float) -> None:
        while self.hits and self.hits[0] <= now - self.window_s:
            self.hits.popleft()

    def retry_after(self, now: float) -> int | None:
        """Seconds to wait when the window is full, else None."""
        if self.limit is None:
            return None
        self._prune(now)
        if len(self.hits) < self.limit:
            return None
        return max(1, int(self.hits[0] + self.window_s - now + 0.999))

    def hit(self, now: float) -> None:
        if self.limit is not None:
            self.hits.append(now)

    def remaining(self, now: float) -> int | None:
        if self.limit is None:
            return None
        self._prune(now)
        return max(0, self.limit - len(self.hits))


def splice(arrays: list[tuple[str, list[bytes]]], tail: dict[str, Any]) -> bytes:
    """A JSON object from pre-serialized array items plus ordinary keys: no re-encoding of cached records."""
    assert tail, "tail must not be empty"
    out: list[bytes] = [b"{"]
    for name, items in arrays:
        out += [json.dumps(name).encode(), b":[", b",".join(items), b"],"]
    out.append(json.dumps(tail, separators=(",", ":")).encode()[1:])
    return b"".join(out)
