"""Percentiles like numpy's default (linear interpolation), selection across sorted lists, safe ratios."""

from __future__ import annotations

from unittest import mock

from hypothesis import given
from hypothesis import strategies as st

from kpi_engine import stats
from kpi_engine.partials import Dist, Parts
from kpi_engine.stats import change_pct, pct, percentile, percentile_of_lists, ratio


def test_percentile_matches_numpy_examples() -> None:
    # numpy.percentile([10, 7, 4, 3, 2, 1], 50) == 3.5; numpy.percentile([1, 2, 3, 4], 90) == 3.7
    assert percentile(sorted([10, 7, 4, 3, 2, 1]), 50) == 3.5
    assert percentile([1, 2, 3, 4], 90) == 3.7
    assert percentile([1, 2, 3, 4], 0) == 1.0
    assert percentile([1, 2, 3, 4], 100) == 4.0
    assert percentile([42], 90) == 42.0
    assert percentile([], 50) is None


@given(st.lists(st.lists(st.integers(-10**9, 10**9), max_size=30), max_size=6),
       st.sampled_from([0, 10, 50, 90, 99, 100]), st.sampled_from([0, 20_000]))
def test_percentile_of_lists_equals_percentile_of_the_union(lists: list[list[int]], q: int, merge_below: int) -> None:
    """Both strategies: selection across the sorted lists (merge_below 0) and merging small ones."""
    union = sorted(v for lst in lists for v in lst)
    with mock.patch.object(stats, "MERGE_BELOW", merge_below), mock.patch.object(stats, "MAX_SELECT_LISTS", 64):
        assert percentile_of_lists([sorted(lst) for lst in lists], q) == percentile(union, q)


def test_empty_denominators_give_none() -> None:
    assert pct(3, 0) is None and pct(None, 3) is None and pct(1, 4) == 25.0
    assert ratio(3, 0) is None and ratio(6, 4) == 1.5
    assert change_pct(5, 0) is None and change_pct(5, None) is None and change_pct(6, 4) == 50.0


def test_parts_merge_by_kind() -> None:
    parts = Parts()
    parts.add("a", "n", 2)
    parts.add("b", "n", 3)
    parts.add("a", "s", {"x"})
    parts.add("b", "s", {"x", "y"})
    parts.add("a", "d", Dist([5, 1]))
    parts.add("b", "d", Dist([3]))
    parts.add("b", "m", {"2026-01": 2})
    parts.add("a", "m", {"2026-01": 1, "2026-02": 4})
    total = parts.total()
    assert total["n"] == 5 and total["s"] == {"x", "y"} and total["m"] == {"2026-01": 3, "2026-02": 4}
    assert total["d"].percentile(50) == 3.0 and total["d"].mean() == 3.0
    assert parts.by_key["a"]["d"].count == 2  # merging for the total leaves the per-key values intact
