"""Small, exact statistics: percentiles like numpy's default, safe ratios, and value lists from SQL.

Why not numpy: it is not a dependency, and the catalog needs only order
statistics. Values arrive from SQL as one ``group_concat`` string per group
(one Python object per group instead of one per row), are sorted once, and the
overall percentile of several groups is found by selection across their sorted
lists, so a ``--by month`` run sorts every value once, not twice.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_right
from collections.abc import Sequence
from itertools import chain


def parse_values(text: str | None) -> list[int]:
    """A ``group_concat`` of integers -> sorted list (empty for NULL)."""
    if not text:
        return []
    values: list[int] = json.loads(f"[{text}]")  # the C parser: faster than int() per split item
    values.sort()
    return values


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """numpy.percentile(values, q) with its default linear interpolation; None when empty."""
    n = len(sorted_values)
    if n == 0:
        return None
    pos = (n - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    low = sorted_values[lo]
    return float(low + (sorted_values[hi] - low) * frac)


def kth_of_sorted(lists: Sequence[Sequence[int]], k: int) -> int:
    """The k-th smallest (0-based) integer of the union of several sorted lists, without merging them."""
    lists = [lst for lst in lists if lst]
    lo = min(lst[0] for lst in lists)
    hi = max(lst[-1] for lst in lists)
    while lo < hi:  # smallest x with count(<= x) > k
        mid = (lo + hi) // 2
        if sum(bisect_right(lst, mid) for lst in lists) > k:
            hi = mid
        else:
            lo = mid + 1
    return lo


#: below this many values in all, a percentile of several lists merges them instead of selecting across them
MERGE_BELOW = 20_000
#: selection bisects every list at each step: across thousands of lists (the total of a fine breakdown) merge
MAX_SELECT_LISTS = 64


def percentile_of_lists(lists: Sequence[Sequence[int]], q: float) -> float | None:
    """Percentile of the union of sorted integer lists (same interpolation as :func:`percentile`)."""
    nonempty = [lst for lst in lists if lst]
    if len(nonempty) == 1:
        return percentile(nonempty[0], q)
    n = sum(len(lst) for lst in nonempty)
    if n == 0:
        return None
    if n <= MERGE_BELOW or len(nonempty) > MAX_SELECT_LISTS:  # merging costs less than selection here
        return percentile(sorted(chain.from_iterable(nonempty)), q)
    pos = (n - 1) * q / 100.0
    lo = math.floor(pos)
    low = kth_of_sorted(nonempty, lo)
    frac = pos - lo
    if frac == 0 or lo + 1 >= n:
        return float(low)
    return float(low + (kth_of_sorted(nonempty, lo + 1) - low) * frac)


def mean(total: float | None, count: float | None) -> float | None:
    """total / count, or None for an empty denominator."""
    if not count or total is None:
        return None
    return total / count


def pct(part: float | None, whole: float | None) -> float | None:
    """part / whole x 100, or None for an empty denominator (never 0, never NaN)."""
    if not whole or part is None:
        return None
    return 100.0 * part / whole


def ratio(num: float | None, den: float | None) -> float | None:
    if not den or num is None:
        return None
    return num / den


def change_pct(current: float | None, base: float | None) -> float | None:
    """(current - base) / base x 100; None when the base is 0 or unknown."""
    if current is None or not base:
        return None
    return 100.0 * (current - base) / base


def rounded(value: float | None, digits: int = 2) -> float | None:
    """Stable JSON: floats rounded, None kept."""
    return None if value is None else round(value, digits)
