"""Mergeable partial results: what families measure per breakdown key before values are final.

Why partials: the overall figures of a ``--by`` run, and the figures of several shards
of one run, are merges of the per-key figures. Counts and sums add; percentile inputs
stay as sorted lists and are selected across (:func:`kpi_engine.stats.percentile_of_lists`);
distinct-count inputs are sets and unite. So every value is measured once.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Callable, Iterable
from itertools import chain
from typing import Any

from kpi_engine.stats import MAX_SELECT_LISTS, MERGE_BELOW, parse_values, percentile_of_lists


class Dist:
    """A distribution: sorted integer lists (merged lazily), with count and sum for the mean."""

    __slots__ = ("lists", "count", "total")

    def __init__(self, values: Iterable[int] | None = None) -> None:
        self.lists: list[array[int]] = []
        self.count = 0
        self.total = 0
        if values is not None:
            ordered = values if isinstance(values, list) else list(values)
            ordered.sort()
            self.add_sorted(ordered)

    @classmethod
    def from_concat(cls, text: str | None) -> Dist:
        dist = cls()
        dist.add_sorted(parse_values(text))
        return dist

    def add_sorted(self, values: list[int]) -> None:
        """Keep a sorted run as a compact C array (8 bytes a value instead of ~36 for a list of ints)."""
        if values:
            self.lists.append(array("q", values))
            self.count += len(values)
            self.total += sum(values)

    def merge(self, other: Dist) -> None:
        self.lists.extend(other.lists)
        self.count += other.count
        self.total += other.total

    def percentile(self, q: float) -> float | None:
        if len(self.lists) > 1 and (self.count <= MERGE_BELOW or len(self.lists) > MAX_SELECT_LISTS):
            # merged once here, not again for every percentile asked (median, then p90)
            self.lists = [array("q", sorted(chain.from_iterable(self.lists)))]
        return percentile_of_lists(self.lists, q)

    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def __getstate__(self) -> tuple[list[array[int]], int, int]:
        return self.lists, self.count, self.total

    def __setstate__(self, state: tuple[list[array[int]], int, int]) -> None:
        self.lists, self.count, self.total = state


class IdSet:
    """A set of integer ids (``kpi_id_numbers``) as sorted unique C arrays, united lazily; only its size is read.

    Why not a Python set of the id strings: a two-year breakdown holds a million requester ids per
    process (over 100 bytes each as str-in-set, 8 here) and ships them between processes.
    """

    __slots__ = ("lists",)

    def __init__(self) -> None:
        self.lists: list[array[int]] = []

    @classmethod
    def from_concat(cls, text: str | None) -> IdSet:
        out = cls()
        if text:
            out.lists.append(array("q", sorted(set(json.loads(f"[{text}]")))))
        return out

    def merge(self, other: IdSet) -> None:
        self.lists.extend(other.lists)

    def __len__(self) -> int:
        """Distinct ids over all lists: a C-level set union (a Python-level k-way merge took 10x longer)."""
        if len(self.lists) == 1:
            return len(self.lists[0])
        return len(set().union(*self.lists))

    def __getstate__(self) -> list[array[int]]:
        return self.lists

    def __setstate__(self, state: list[array[int]]) -> None:
        self.lists = state


def merge_value(a: Any, b: Any) -> Any:
    """Merge two partial values of the same kind."""
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, Dist | IdSet):
        a.merge(b)
        return a
    if isinstance(a, set):
        return a | b
    if isinstance(a, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = merge_value(out.get(k), v)
        return out
    return a + b


class Parts:
    """Partial results per breakdown key (the key None means "no breakdown")."""

    def __init__(self) -> None:
        self.by_key: dict[Any, dict[str, Any]] = {}

    def add(self, key: Any, name: str, value: Any) -> None:
        part = self.by_key.setdefault(key, {})
        part[name] = merge_value(part.get(name), value)

    def merge(self, other: Parts) -> None:
        for key, part in other.by_key.items():
            for name, value in part.items():
                self.add(key, name, value)

    def total(self) -> dict[str, Any]:
        """All keys merged: the overall partial."""
        out: dict[str, Any] = {}
        for part in self.by_key.values():
            for name, value in part.items():
                out[name] = merge_value(out.get(name), _copy(value))
        return out

    def regrouped(self, new_key: Callable[[Any], Any]) -> Parts:
        """The partials merged by ``new_key(key)`` (e.g. one dimension of a combined key); this one unchanged."""
        out = Parts()
        for key, part in self.by_key.items():
            target = out.by_key.setdefault(new_key(key), {})
            for name, value in part.items():
                had = target.get(name)
                # copied once, when a value first lands in the new partial; merged into that copy after
                target[name] = _copy(value) if had is None else merge_value(had, value)
        return out


def _copy(value: Any) -> Any:
    """A merge target of its own: merging grows a Dist or IdSet in place, which must not grow a key's own."""
    if isinstance(value, Dist):
        dist_copy = Dist()
        dist_copy.merge(value)
        return dist_copy
    if isinstance(value, IdSet):
        ids_copy = IdSet()
        ids_copy.merge(value)
        return ids_copy
    return value


def num(part: dict[str, Any], name: str) -> float:
    """A count or sum from a partial; 0 when the family measured nothing for this key."""
    value = part.get(name)
    return 0 if value is None else value


def dist(part: dict[str, Any], name: str) -> Dist:
    value = part.get(name)
    return value if isinstance(value, Dist) else Dist()
