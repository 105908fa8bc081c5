"""Business time: how many seconds of an interval fall inside the configured support hours.

One :class:`Schedule` per ``[kpi]`` section: a timezone, weekly hours per weekday
(``"09:00-17:00"``, several spans comma-separated) and holidays as local dates.

Why a cumulative function instead of walking each interval day by day: the KPI
catalog measures millions of intervals. ``B(t)`` = business seconds from a fixed
anchor up to instant ``t``; any interval is then ``B(end) - B(start)``, O(1)
after the days involved were computed once. Days are computed per UTC day (so
``t // 86400`` finds the row) in blocks of a year and cached on the schedule.
The same per-UTC-day rows are loaded into a TEMP table so SQL can compute
``B(t)`` with one integer-key join instead of a Python call per row.

DST: business instants on a local date are the instants whose *wall-clock*
time on that date lies inside a span. They are found per constant-offset piece
of time, so a span crossing a DST change has its real length (09:00-17:00 is
7 h on a spring-forward day only if the change falls inside it), times that do
not exist are never business, and a repeated wall-clock hour counts twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from config.settings import WEEKDAYS, KpiSettings, parse_hours

logger = logging.getLogger("deskpulse.kpi.business_hours")

DAY = 86400
_BLOCK_DAYS = 366
_SAMPLE = 6 * 3600  # offset changes are never closer together than this
_EPOCH = date(1970, 1, 1)


def _span_seconds(text: str) -> tuple[int, int]:
    start, end = parse_hours(text)
    end_s = DAY if end == time(23, 59, 59, 999999) else end.hour * 3600 + end.minute * 60
    return start.hour * 3600 + start.minute * 60, end_s


def _merge(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sort and merge overlapping or touching spans."""
    out: list[list[int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


class Schedule:
    """Weekly support hours in one timezone, minus holidays; answers business-seconds questions."""

    def __init__(self, timezone: str, weekly: Mapping[int, Iterable[tuple[int, int]]],
                 holidays: Iterable[date] = ()) -> None:
        self.timezone = timezone
        self.tz = ZoneInfo(timezone)
        self.weekly: tuple[tuple[tuple[int, int], ...], ...] = tuple(
            tuple(_merge(weekly.get(day, ()))) for day in range(7))
        self.holidays = frozenset(holidays)
        self._u0 = 0  # first cached UTC day index
        self._cum: list[int] = []  # business seconds before the start of UTC day u0 + i (relative anchor)
        self._spans: list[tuple[int, ...]] = []  # flattened (a, b, a, b, ...) business spans inside that UTC day

    @classmethod
    def from_settings(cls, kpi: KpiSettings) -> Schedule | None:
        """The configured schedule, or None when no business hours are configured (business KPIs are null)."""
        if not kpi.business_hours:
            return None
        weekly = {WEEKDAYS.index(day): [_span_seconds(part) for part in text.split(",")]
                  for day, text in kpi.business_hours.items()}
        return cls(kpi.timezone, weekly, kpi.holidays)

    # -- offsets ------------------------------------------------------------------------------------
    def _offset(self, t: int) -> int:
        off = datetime.fromtimestamp(t, self.tz).utcoffset()
        return int(off.total_seconds()) if off is not None else 0

    def _pieces(self, t0: int, t1: int) -> list[tuple[int, int, int]]:
        """[t0, t1) split into (start, end, utc offset) pieces of constant offset."""
        pieces: list[tuple[int, int, int]] = []
        start, off = t0, self._offset(t0)
        probe = t0
        while probe < t1:
            nxt = min(probe + _SAMPLE, t1)
            off_next = self._offset(nxt) if nxt < t1 else off
            if off_next != off:
                lo, hi = probe, nxt  # offset at lo == off, at hi != off
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if self._offset(mid) == off:
                        lo = mid
                    else:
                        hi = mid
                pieces.append((start, hi, off))
                start, off = hi, self._offset(hi)
            probe = nxt
        pieces.append((start, t1, off))
        return pieces

    # -- spans --------------------------------------------------------------------------------------
    def spans(self, t0: int, t1: int) -> list[tuple[int, int]]:
        """Absolute business spans (epoch seconds) intersecting [t0, t1), merged and sorted."""
        out: list[tuple[int, int]] = []
        for p0, p1, off in self._pieces(t0, t1):
            first_day = (p0 + off) // DAY
            last_day = (p1 + off - 1) // DAY
            for day in range(first_day, last_day + 1):
                if self.holidays and _EPOCH + timedelta(days=day) in self.holidays:
                    continue
                base = day * DAY - off
                for s, e in self.weekly[(day + 3) % 7]:
                    a, b = max(base + s, p0), min(base + e, p1)
                    if a < b:
                        out.append((a, b))
        return _merge(out)

    def _ensure(self, u_lo: int, u_hi: int) -> None:
        """Cache UTC days u_lo..u_hi (inclusive), extending the cached range by whole blocks."""
        if self._cum and self._u0 <= u_lo and u_hi < self._u0 + len(self._cum):
            return
        if not self._cum:
            self._u0 = u_lo
            self._cum, self._spans = self._block(u_lo, u_lo + max(_BLOCK_DAYS, u_hi - u_lo + 1), 0)
        while u_lo < self._u0:
            start = min(u_lo, self._u0 - _BLOCK_DAYS)
            cum, spans = self._block(start, self._u0, 0)
            total = sum(spans[-1][i + 1] - spans[-1][i] for i in range(0, len(spans[-1]), 2)) + cum[-1]
            shift = self._cum[0] - total
            self._cum = [c + shift for c in cum] + self._cum
            self._spans = spans + self._spans
            self._u0 = start
        while u_hi >= self._u0 + len(self._cum):
            begin = self._u0 + len(self._cum)
            last = self._spans[-1]
            base = self._cum[-1] + sum(last[i + 1] - last[i] for i in range(0, len(last), 2))
            cum, spans = self._block(begin, max(u_hi + 1, begin + _BLOCK_DAYS), base)
            self._cum += cum
            self._spans += spans

    def _block(self, u_start: int, u_end: int, base: int) -> tuple[list[int], list[tuple[int, ...]]]:
        """Per UTC day in [u_start, u_end): cumulative seconds before it (from ``base``) and its spans."""
        per_day: list[list[int]] = [[] for _ in range(u_end - u_start)]
        for a, b in self.spans(u_start * DAY, u_end * DAY):
            while a < b:
                u = a // DAY
                end = min(b, (u + 1) * DAY)
                per_day[u - u_start] += (a, end)
                a = end
        cum: list[int] = []
        running = base
        for flat in per_day:
            cum.append(running)
            running += sum(flat[i + 1] - flat[i] for i in range(0, len(flat), 2))
        return cum, [tuple(flat) for flat in per_day]

    # -- queries ------------------------------------------------------------------------------------
    def cumulative(self, t: int) -> int:
        """B(t): business seconds from the cache anchor up to instant t (only differences are meaningful)."""
        u = t // DAY
        i = u - self._u0
        if not self._cum or i < 0 or i >= len(self._cum):
            self._ensure(u, u)
            i = u - self._u0
        total = self._cum[i]
        flat = self._spans[i]
        for j in range(0, len(flat), 2):
            a = flat[j]
            if t <= a:
                break
            b = flat[j + 1]
            total += (t if t < b else b) - a
        return total

    def business_seconds(self, start: int, end: int) -> int:
        """Business seconds in [start, end); 0 for empty or negative intervals."""
        if end <= start:
            return 0
        return self.cumulative(end) - self.cumulative(start)

    def day_rows(self, t0: int, t1: int) -> tuple[int, list[tuple[int, ...]]]:
        """(K, rows) covering [t0, t1]: rows ``(u, cum, a1, b1, ..., aK, bK)`` padded with empty spans.

        What the SQL ``B(t)`` join reads: ``cum + sum(max(0, min(t, b) - a))`` over the row's spans.
        """
        u_lo, u_hi = t0 // DAY, t1 // DAY
        self._ensure(u_lo, u_hi)
        lo, hi = u_lo - self._u0, u_hi - self._u0
        width = max([len(self._spans[i]) // 2 for i in range(lo, hi + 1)] + [1])
        rows = []
        for i in range(lo, hi + 1):
            u = self._u0 + i
            flat = self._spans[i]
            pad = (u * DAY, u * DAY) * (width - len(flat) // 2)
            rows.append((u, self._cum[i], *flat, *pad))
        return width, rows


