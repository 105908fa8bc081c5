"""Business time: DST weeks (Berlin, New York), holidays, weekends, spans, and properties."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.settings import KpiSettings
from kpi_engine.business_hours import Schedule

H = 3600
WEEK_9_17 = {d: [(9 * H, 17 * H)] for d in range(5)}


def local(tz: str, *args: int) -> int:
    return int(datetime(*args, tzinfo=ZoneInfo(tz)).timestamp())


def sched(tz: str = "Europe/Berlin", weekly: dict | None = None, holidays: tuple = ()) -> Schedule:
    return Schedule(tz, WEEK_9_17 if weekly is None else weekly, holidays)


@pytest.mark.parametrize(("tz", "day", "length"), [
    ("Europe/Berlin", (2026, 3, 29), 23),  # spring forward: the day has 23 hours
    ("Europe/Berlin", (2026, 10, 25), 25),  # fall back: 25 hours
    ("America/New_York", (2026, 3, 8), 23),
    ("America/New_York", (2026, 11, 1), 25),
])
def test_a_whole_day_on_dst_change_days_has_its_real_length(tz: str, day: tuple, length: int) -> None:
    s = sched(tz, {d: [(0, 86400)] for d in range(7)})
    start = local(tz, *day)
    end = int((datetime(*day, tzinfo=ZoneInfo(tz)) + timedelta(days=1)).timestamp())
    assert s.business_seconds(start, end) == length * H


def test_spans_crossing_the_berlin_changes() -> None:
    s = sched(weekly={6: [(1 * H, 5 * H)]})  # Sundays 01:00-05:00 local
    # March 29: 02:00-03:00 does not exist -> 3 real hours; October 25: 02:00-03:00 happens twice -> 5 hours
    assert s.business_seconds(local("Europe/Berlin", 2026, 3, 29), local("Europe/Berlin", 2026, 3, 30)) == 3 * H
    assert s.business_seconds(local("Europe/Berlin", 2026, 10, 25), local("Europe/Berlin", 2026, 10, 26)) == 5 * H
    gap = sched(weekly={6: [(2 * H + 900, 2 * H + 2700)]})  # 02:15-02:45: never on the spring day, twice in fall
    assert gap.business_seconds(local("Europe/Berlin", 2026, 3, 29), local("Europe/Berlin", 2026, 3, 30)) == 0
    assert gap.business_seconds(local("Europe/Berlin", 2026, 10, 25),
                                local("Europe/Berlin", 2026, 10, 26)) == 2 * 1800


@pytest.mark.parametrize("tz", ["Europe/Berlin", "America/New_York"])
def test_a_dst_week_of_office_hours_is_40_hours(tz: str) -> None:
    s = sched(tz)
    monday = {"Europe/Berlin": (2026, 3, 23), "America/New_York": (2026, 3, 2)}[tz]
    for week in range(3):  # the week of the change and the two after it
        first = datetime(*monday, tzinfo=ZoneInfo(tz)) + timedelta(days=7 * week)
        start, end = int(first.timestamp()), int((first + timedelta(days=7)).timestamp())
        assert s.business_seconds(start, end) == 40 * H, week


def test_holidays_weekends_and_hours_outside() -> None:
    s = sched(holidays=(date(2026, 12, 25),))  # a Friday
    tz = "Europe/Berlin"
    # Thursday 16:00 -> Monday 10:00: Thu 1h, Fri holiday, weekend, Mon 1h
    assert s.business_seconds(local(tz, 2026, 12, 24, 16), local(tz, 2026, 12, 28, 10)) == 2 * H
    assert s.business_seconds(local(tz, 2026, 3, 2, 7), local(tz, 2026, 3, 2, 8)) == 0  # before opening
    assert s.business_seconds(local(tz, 2026, 3, 2, 7), local(tz, 2026, 3, 2, 10)) == 1 * H
    assert s.business_seconds(local(tz, 2026, 3, 2, 16), local(tz, 2026, 3, 2, 23)) == 1 * H  # past closing
    assert s.business_seconds(local(tz, 2026, 3, 7, 9), local(tz, 2026, 3, 8, 18)) == 0  # Saturday-Sunday


def test_zero_and_negative_intervals() -> None:
    s = sched()
    t = local("Europe/Berlin", 2026, 3, 2, 10)
    assert s.business_seconds(t, t) == 0
    assert s.business_seconds(t + H, t) == 0


def test_several_spans_per_day_from_settings() -> None:
    kpi = KpiSettings(timezone="UTC", business_hours={
        "mon": "09:00-12:00,13:00-17:00", "tue": "11:00-13:00,09:00-12:00", "wed": "20:00-24:00"})
    s = Schedule.from_settings(kpi)
    assert s is not None
    mon = local("UTC", 2026, 3, 2)
    assert s.business_seconds(mon + 11 * H, mon + 14 * H) == 2 * H  # lunch break excluded
    assert s.business_seconds(mon + 86400, mon + 2 * 86400) == 4 * H  # overlapping spans merge: 09-13
    assert s.business_seconds(mon + 2 * 86400, mon + 3 * 86400) == 4 * H  # 24:00 is the end of the day
    assert Schedule.from_settings(KpiSettings()) is None  # no hours configured: no business variants


def test_cache_extends_in_both_directions() -> None:
    s = sched()
    late = (local("Europe/Berlin", 2031, 1, 6, 8), local("Europe/Berlin", 2031, 1, 8, 12))
    early = (local("Europe/Berlin", 2019, 1, 7, 8), local("Europe/Berlin", 2019, 1, 9, 12))
    first = s.business_seconds(*late)
    assert s.business_seconds(*early) == 8 * H + 8 * H + 3 * H
    assert s.business_seconds(*late) == first == 19 * H
    fresh = sched()
    assert fresh.business_seconds(early[0], late[1]) == s.business_seconds(early[0], late[1])


def _reference(s: Schedule, start: int, end: int) -> int:
    """Minute by minute: a minute is business when its wall-clock start lies in a span of that local date."""
    total = 0
    for t in range(start, end, 60):
        wall = datetime.fromtimestamp(t, s.tz)
        if wall.date() in s.holidays:
            continue
        sec = wall.hour * 3600 + wall.minute * 60
        if any(a <= sec < b for a, b in s.weekly[wall.weekday()]):
            total += 60
    return total


SPRING = local("Europe/Berlin", 2026, 3, 20)
minutes = st.integers(min_value=0, max_value=60 * 24 * 30)


@settings(max_examples=40, deadline=None)
@given(a=minutes, length=st.integers(min_value=0, max_value=60 * 24 * 6))
def test_matches_a_minute_by_minute_reference(a: int, length: int) -> None:
    s = sched(weekly={0: [(9 * H, 17 * H)], 2: [(H + 1800, 4 * H)], 6: [(0, 86400)]}, holidays=(date(2026, 4, 1),))
    start = SPRING + 60 * a
    assert s.business_seconds(start, start + 60 * length) == _reference(s, start, start + 60 * length)


SHARED = sched("America/New_York", holidays=(date(2026, 11, 26),))
instants = st.integers(min_value=local("America/New_York", 2025, 1, 1), max_value=local("America/New_York", 2028, 1, 1))


@settings(max_examples=200, deadline=None)
@given(x=instants, y=instants, z=instants)
def test_additive_and_bounded(x: int, y: int, z: int) -> None:
    a, b, c = sorted((x, y, z))
    total = SHARED.business_seconds(a, c)
    assert total == SHARED.business_seconds(a, b) + SHARED.business_seconds(b, c)
    assert 0 <= total <= c - a


@settings(max_examples=100, deadline=None)
@given(t=instants)
def test_sql_day_rows_give_the_same_cumulative(t: int) -> None:
    width, rows = SHARED.day_rows(t - 86400, t + 86400)
    (row,) = [r for r in rows if r[0] == t // 86400]
    b = row[1] + sum(max(0, min(t, row[3 + 2 * i]) - row[2 + 2 * i]) for i in range(width))
    assert b == SHARED.cumulative(t)
