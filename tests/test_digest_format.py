"""Humanized units, judged week-over-week changes, sparklines and mrkdwn stripping for the digest."""

from __future__ import annotations

import pytest

from kpi_engine.digest_format import (
    SPARK_CHARS,
    clip,
    escape,
    fmt_count,
    fmt_duration,
    fmt_pct,
    sparkline,
    strip_mrkdwn,
    week_change,
)


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (45, "45s"), (59.6, "1m"), (60, "1m"), (14 * 60 + 59, "14m"), (3600, "1h"),
    (2 * 3600 + 14 * 60 + 30, "2h 14m"), (86400, "1d"), (3 * 86400 + 4 * 3600 + 59 * 60, "3d 4h"),
    (None, "—"),
])
def test_duration_keeps_the_two_most_significant_units(seconds: float | None, text: str) -> None:
    assert fmt_duration(seconds) == text


@pytest.mark.parametrize(("value", "text"), [(1204, "1,204"), (1204.0, "1,204"), (0, "0"), (2.5, "2.5"),
                                             (1_000_000, "1,000,000"), (None, "—")])
def test_count_has_thousands_separators(value: float | None, text: str) -> None:
    assert fmt_count(value) == text


@pytest.mark.parametrize(("value", "text"), [(93.4, "93%"), (93.5, "94%"), (92.5, "93%"), (100, "100%"), (4.25, "4.2%"),
                                             (4.0, "4%"), (0, "0%"), (None, "—")])
def test_pct_rounds_to_whole_points_above_ten(value: float | None, text: str) -> None:
    assert fmt_pct(value) == text


def test_lower_is_better_for_times() -> None:
    faster = week_change(8040, 9120, "duration", "lower")
    assert (faster.arrow, faster.amount, faster.verdict) == ("▼", "18m", "better")
    assert faster.slack() == "🟢 ▼ 18m better"
    slower = week_change(9120, 8040, "duration", "lower")
    assert (slower.arrow, slower.verdict) == ("▲", "worse")
    assert "🔴" in slower.slack()


def test_higher_is_better_for_percentages_measured_in_points() -> None:
    change = week_change(93.4, 91.0, "pct", "higher")
    assert (change.arrow, change.amount, change.verdict) == ("▲", "2.4 pts", "better")
    assert week_change(88.0, 91.0, "pct", "higher").verdict == "worse"


def test_counts_change_relatively_and_neutral_kpis_are_not_judged() -> None:
    change = week_change(1204, 1075, "count", None)
    assert (change.arrow, change.amount, change.verdict, change.emoji) == ("▲", "12%", "up", "")
    assert "better" not in change.slack() and "worse" not in change.slack()
    from_zero = week_change(5, 0, "count", "lower")
    assert (from_zero.amount, from_zero.verdict) == ("5", "worse")


def test_changes_that_round_away_are_unchanged_and_missing_weeks_are_said() -> None:
    assert week_change(88.21, 88.2, "pct", "higher").verdict == "unchanged"
    assert week_change(1000, 1000, "count", None).slack() == "⚪ unchanged"
    assert week_change(None, 5, "count", None).verdict == "no data"
    assert week_change(5, None, "pct", "higher").slack() == "no data last week"
    assert week_change(8040, 9120, "duration", "lower").plain() == "▼ 18m, better"


def test_sparkline_scales_min_to_max_and_shows_gaps_as_spaces() -> None:
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == SPARK_CHARS
    assert sparkline([8, 7, 6, 5, 4, 3, 2, 1]) == SPARK_CHARS[::-1]
    line = sparkline([10, None, 20, None, 30, 40, 50, 60])
    assert len(line) == 8 and line[1] == line[3] == " "
    assert line[0] == "▁" and line[-1] == "█"


def test_sparkline_of_flat_or_empty_series() -> None:
    flat = sparkline([5, 5, 5, 5])
    assert len(set(flat)) == 1 and flat[0] not in ("▁", "█")
    assert sparkline([None, None, None]) == "   "
    assert sparkline([]) == ""


def test_escape_and_clip() -> None:
    assert escape("A&B <C>") == "A&amp;B &lt;C&gt;"
    assert clip("a  b\nc", 10) == "a b c"
    clipped = clip("x" * 100, 10)
    assert len(clipped) == 10 and clipped.endswith("…")


def test_strip_mrkdwn_removes_markers_links_and_escapes_but_keeps_code_spacing() -> None:
    text = "*Bold* and _it_ ~st~ <https://x.example/t/1|#1> `▁ ▂` my_snake_case 2*3*4 &lt;24h &amp; more"
    assert strip_mrkdwn(text) == "Bold and it st #1 ▁ ▂ my_snake_case 2*3*4 <24h & more"
