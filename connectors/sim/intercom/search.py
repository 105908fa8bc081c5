"""Intercom's search semantics for the simulator: the query language, ordering and keyset cursors.

Documented behaviour reproduced (API-NOTES 3.2): filters ``{field, operator,
value}`` combined in ``AND``/``OR`` groups, at most 2 levels deep and 15
filters per group; date fields take only ``=``, ``<``, ``>``, and both ``>``
and ``<`` are *inclusive* ("Greater (or equal) than"); date values may be
strings of digits (``inclusive=False`` switches to the strict reading, to prove
a connector tolerates both). ``pages.next.starting_after`` is an opaque keyset cursor
(base64 of ``[sort value, id, page]``, like Intercom's ``WzE3...``), so a record
updated mid-pagination moves behind the cursor instead of shifting others.

Order: ``sort`` on ``updated_at``/``created_at`` is honoured when the simulator
is told to; otherwise (or without ``sort``) results come in id order, the
"order not guaranteed" reading a connector must survive.

Dates by day (contacts only): OAS 2.11 ``/contacts/search`` "Searching for
Timestamp Fields": timestamps "are matched by calendar day" in the workspace's
timezone; ``=`` matches the whole day, ``>`` "matches from the start of the
*next* day, not from the instant you passed", ``<`` everything before the start
of that day; sorting still uses the full value. Hevo's Intercom source docs
(API-NOTES 6.1) read ``>`` as "from midnight of T's day": ``DateRule.by_day``
serves either reading (``"next_day"``, the spec's, or ``"same_day"``), so a
connector can be shown to survive both. Conversations compare per second.

Index lag (API-NOTES 6.1; OAS 2.11 ``/contacts/search`` "Contact Creation
Delay": a record "may not appear in the response. This delay can take a few
minutes"): with ``lag_s`` a change reaches the search index ``lag_s`` seconds
(of the simulator's clock) after it was made. Until then search matches and
serves the record as the index last had it (a shallow copy taken before the
change; a new record not at all); retrieve (GET) always serves the current one.

Cost: with ``updated_at`` ordering the candidates come straight from a sorted
``(updated_at, id)`` index by bisection, so a page costs O(log n + page);
other orders sort the matches once per (query, data version) and cache them.
"""

from __future__ import annotations

import base64
import binascii
import copy
import heapq
import itertools
import json
import math
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_FILTERS = 15
MAX_DEPTH = 2
DATE_OPS = frozenset({"=", "<", ">"})
ALL_OPS = frozenset({"=", "!=", "IN", "NIN", ">", "<", "~", "!~", "^", "$"})


class SearchError(ValueError):
    """An invalid search request: the simulator answers 400 with ``code``."""

    def __init__(self, message: str, code: str = "parameter_invalid") -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Compiled:
    pred: Callable[[Any], bool]
    lo: int | None = None  # inclusive bounds on updated_at implied by an AND of filters
    hi: int | None = None
    pure_range: bool = True  # the query is nothing but those bounds: totals come from the index


DAY = 86400


@dataclass(frozen=True)
class DateRule:
    """How one search space compares date fields (see the module docstring).

    ``inclusive``: per-second ``>``/``<`` include the bound (the 2.11 table's "Greater (or equal) than");
    ``by_day``: None (per second), ``"next_day"`` (OAS 2.11 contacts) or ``"same_day"`` (Hevo's reading);
    ``utc_offset_s``: the workspace timezone whose midnights are the day boundaries.
    """

    inclusive: bool = True
    by_day: str | None = None
    utc_offset_s: int = 0

    def day_start(self, value: int) -> int:
        return (value + self.utc_offset_s) // DAY * DAY - self.utc_offset_s

    def bounds(self, op: str, v: int) -> tuple[int | None, int | None]:
        """The inclusive [lo, hi] range of stored values that ``field op v`` matches."""
        if self.by_day is None:
            if op == ">":
                return (v if self.inclusive else v + 1), None
            if op == "<":
                return None, (v if self.inclusive else v - 1)
            return v, v
        day = self.day_start(v)
        if op == ">":
            return (day + DAY if self.by_day == "next_day" else day), None
        if op == "<":
            return None, day - 1
        return day, day + DAY - 1


def _date(value: Any) -> int:
    if isinstance(value, bool):
        raise SearchError(f"invalid date value {value!r}")
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise SearchError(f"invalid date value {value!r}")


def _scalar(value: Any) -> Any:
    return value if isinstance(value, (bool, int, float)) or value is None else str(value)


def _filter(node: dict[str, Any], getters: dict[str, Callable[[Any], Any]], dates: frozenset[str],
            rule: DateRule) -> Compiled:
    field, op, raw = node.get("field"), node.get("operator"), node.get("value")
    if field not in getters:
        raise SearchError(f"field '{field}' is not searchable", "field_not_found" if field else "parameter_not_found")
    if op not in ALL_OPS:
        raise SearchError(f"operator '{op}' is not supported")
    get = getters[str(field)]
    if field in dates:
        if op not in DATE_OPS:
            raise SearchError(f"operator '{op}' is not allowed on date field '{field}'")
        low, high = rule.bounds(str(op), _date(raw))
        upd = field == "updated_at"

        def within(r: Any) -> bool:
            x = get(r)
            return x is not None and (low is None or x >= low) and (high is None or x <= high)

        return Compiled(within, lo=low if upd else None, hi=high if upd else None, pure_range=upd)
    if op in ("IN", "NIN"):
        if not isinstance(raw, list):
            raise SearchError(f"operator {op} needs a list value")
        values = {_scalar(x) for x in raw}
        return Compiled((lambda r: _scalar(get(r)) in values) if op == "IN" else
                        (lambda r: _scalar(get(r)) not in values), pure_range=False)
    value = _scalar(raw)
    table: dict[str, Callable[[Any], bool]] = {
        "=": lambda r: _scalar(get(r)) == value,
        "!=": lambda r: _scalar(get(r)) != value,
        ">": lambda r: (x := get(r)) is not None and x >= value,
        "<": lambda r: (x := get(r)) is not None and x <= value,
        "~": lambda r: str(value) in str(get(r) or ""),
        "!~": lambda r: str(value) not in str(get(r) or ""),
        "^": lambda r: str(get(r) or "").startswith(str(value)),
        "$": lambda r: str(get(r) or "").endswith(str(value)),
    }
    return Compiled(table[op], pure_range=False)


def compile_query(node: Any, getters: dict[str, Callable[[Any], Any]], dates: frozenset[str],
                  depth: int = 1, rule: DateRule = DateRule()) -> Compiled:
    """A search ``query`` object -> a predicate plus the updated_at range it implies."""
    if node is None:
        return Compiled(lambda r: True)
    if not isinstance(node, dict):
        raise SearchError("query must be an object")
    if "field" in node:
        return _filter(node, getters, dates, rule)
    op, children = node.get("operator"), node.get("value")
    if op not in ("AND", "OR") or not isinstance(children, list) or not children:
        raise SearchError("a query group needs operator AND/OR and a non-empty list of filters")
    if depth > MAX_DEPTH:
        raise SearchError(f"queries may nest at most {MAX_DEPTH} levels")
    if len(children) > MAX_FILTERS:
        raise SearchError(f"at most {MAX_FILTERS} filters per {op} group")
    parts = [compile_query(child, getters, dates, depth + 1, rule) for child in children]
    preds = [p.pred for p in parts]
    if op == "OR":  # bounded when every alternative is (e.g. updated_at > T OR updated_at = T)
        ors_lo = [p.lo for p in parts]
        ors_hi = [p.hi for p in parts]
        return Compiled(lambda r: any(p(r) for p in preds),
                        lo=None if None in ors_lo else min(x for x in ors_lo if x is not None),
                        hi=None if None in ors_hi else max(x for x in ors_hi if x is not None), pure_range=False)
    los = [p.lo for p in parts if p.lo is not None]
    his = [p.hi for p in parts if p.hi is not None]
    return Compiled(lambda r: all(p(r) for p in preds), lo=max(los) if los else None,
                    hi=min(his) if his else None, pure_range=all(p.pure_range for p in parts))


def encode_cursor(key: Any, rid: int, page: int) -> str:
    return base64.b64encode(json.dumps([key, rid, page], separators=(",", ":")).encode()).decode()


def decode_cursor(token: Any) -> tuple[Any, int, int]:
    try:
        key, rid, page = json.loads(base64.b64decode(str(token), validate=True))
        return key, int(rid), int(page)
    except (ValueError, TypeError, binascii.Error):
        raise SearchError("starting_after is not a valid cursor") from None


class SearchSpace:
    """One searchable collection (conversations or contacts) with its sorted updated_at index."""

    def __init__(self, records: dict[int, Any], getters: dict[str, Callable[[Any], Any]],
                 dates: frozenset[str], *, inclusive: bool = True, rule: DateRule | None = None,
                 lag_s: float = 0.0, clock: Callable[[], float] | None = None) -> None:
        self.records = records
        self.rule = rule if rule is not None else DateRule(inclusive=inclusive)
        self.inclusive = self.rule.inclusive
        self.getters = getters
        self.dates = dates
        self.index: list[tuple[int, int]] = sorted((r.updated_at, rid) for rid, r in records.items())
        self.indexed: dict[int, int] = {rid: r.updated_at for rid, r in records.items()}  # rid -> its index key
        self.lag_s = lag_s
        self.clock = clock
        self._pending: list[tuple[float, int, int, int]] = []  # (due, seq, rid, updated_at): index lag
        self._snapshots: dict[int, Any] = {}  # rid -> the record as the index has it, while a change is pending
        self._seq = itertools.count()
        self.version = 0
        self._cache: dict[tuple[str, str, bool], tuple[list[Any], list[Any]]] = {}

    def __len__(self) -> int:
        return len(self.records)

    def moved(self, rid: int, old_updated: int, new_updated: int) -> None:
        """A record's updated_at changed (or a record was added): the index follows, ``lag_s`` later."""
        if self.lag_s > 0 and self.clock is not None:
            if rid not in self._snapshots and rid in self.records:  # called before the caller changes it
                self._snapshots[rid] = copy.copy(self.records[rid])
            heapq.heappush(self._pending, (self.clock() + self.lag_s, next(self._seq), rid, new_updated))
            return
        self._reindex(rid, new_updated)

    def visible(self, rid: int) -> Any:
        """The record as search sees it: the index's copy while a change is pending, else the record."""
        snapshot = self._snapshots.get(rid)
        return snapshot if snapshot is not None else self.records[rid]

    def add(self, rid: int, record: Any) -> None:
        """A new record: retrievable at once, searchable once the index has it (``lag_s``)."""
        self.records[rid] = record
        self.moved(rid, record.updated_at, record.updated_at)

    def _reindex(self, rid: int, updated: int) -> None:
        old = self.indexed.get(rid)
        if old is not None:
            i = bisect_left(self.index, (old, rid))
            if i < len(self.index) and self.index[i] == (old, rid):
                del self.index[i]
        insort(self.index, (updated, rid))
        self.indexed[rid] = updated
        self.version += 1
        self._cache.clear()

    def settle(self) -> None:
        """Apply every index update whose lag has passed (called before each search)."""
        now = self.clock() if self.clock is not None else math.inf
        while self._pending and self._pending[0][0] <= now:
            _, _, rid, updated = heapq.heappop(self._pending)
            if rid in self.records:
                self._reindex(rid, updated)
            if rid in self._snapshots and any(entry[2] == rid for entry in self._pending):  # more to come
                self._snapshots[rid].updated_at = updated
            else:
                self._snapshots.pop(rid, None)

    def search(self, query: Any, *, per_page: int, after: str | None, sort_field: str | None,
               descending: bool) -> tuple[list[Any], int, str | None, int]:
        """(records of the page, total_count, next cursor or None, page number)."""
        compiled = compile_query(query, self.getters, self.dates, rule=self.rule)
        self.settle()
        cursor = decode_cursor(after) if after else None
        page = cursor[2] + 1 if cursor else 1
        if sort_field == "updated_at":
            return self._by_index(compiled, per_page, cursor, descending, page)
        return self._by_list(query, compiled, per_page, cursor, sort_field, descending, page)

    def _by_index(self, q: Compiled, per_page: int, cursor: tuple[Any, int, int] | None, desc: bool,
                  page: int) -> tuple[list[Any], int, str | None, int]:
        start = 0 if q.lo is None else bisect_left(self.index, (q.lo, -math.inf))
        end = len(self.index) if q.hi is None else bisect_right(self.index, (q.hi, math.inf))
        total = max(0, end - start) if q.pure_range else sum(
            1 for _, rid in self.index[start:end] if q.pred(self.visible(rid)))
        lo_i, hi_i = start, end
        if cursor is not None:
            key = (int(cursor[0]) // 1000, cursor[1])
            if desc:
                hi_i = min(hi_i, bisect_left(self.index, key))
            else:
                lo_i = max(lo_i, bisect_right(self.index, key))
        positions = range(hi_i - 1, lo_i - 1, -1) if desc else range(lo_i, hi_i)
        found: list[int] = []
        more = False
        for i in positions:
            rid = self.index[i][1]
            if q.pred(self.visible(rid)):
                if len(found) == per_page:
                    more = True
                    break
                found.append(i)
        records = [self.visible(self.index[i][1]) for i in found]
        nxt = None
        if more and found:
            last = self.index[found[-1]]
            nxt = encode_cursor(last[0] * 1000, last[1], page)
        return records, total, nxt, page

    def _by_list(self, query: Any, q: Compiled, per_page: int, cursor: tuple[Any, int, int] | None,
                 sort_field: str | None, desc: bool, page: int) -> tuple[list[Any], int, str | None, int]:
        cache_key = (json.dumps(query, sort_keys=True, default=str), sort_field or "id", desc)
        cached = self._cache.get(cache_key)
        if cached is None:
            get = self.getters.get(sort_field) if sort_field else None
            candidates = self.index
            if q.lo is not None or q.hi is not None:
                start = 0 if q.lo is None else bisect_left(self.index, (q.lo, -math.inf))
                end = len(self.index) if q.hi is None else bisect_right(self.index, (q.hi, math.inf))
                candidates = self.index[start:end]
            keys = sorted(((get(self.visible(rid)) if get else 0, rid) for _, rid in candidates
                           if q.pred(self.visible(rid))), reverse=desc)
            cached = (keys, [(-k, -r) for k, r in keys] if desc else keys)
            self._cache[cache_key] = cached
        keys, ascending = cached
        start = 0
        if cursor is not None:
            key = (cursor[0], cursor[1])
            start = bisect_right(ascending, (-key[0], -key[1]) if desc else key)
        chunk = keys[start:start + per_page]
        nxt = encode_cursor(chunk[-1][0], chunk[-1][1], page) if start + per_page < len(keys) and chunk else None
        return [self.visible(rid) for _, rid in chunk], len(keys), nxt, page
