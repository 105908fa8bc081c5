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

Cost: with ``updated_at`` ordering the candidates come straight from a sorted
``(updated_at, id)`` index by bisection, so a page costs O(log n + page);
other orders sort the matches once per (query, data version) and cache them.
"""

from __future__ import annotations

import base64
import binascii
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
            inclusive: bool) -> Compiled:
    field, op, raw = node.get("field"), node.get("operator"), node.get("value")
    if field not in getters:
        raise SearchError(f"field '{field}' is not searchable", "field_not_found" if field else "parameter_not_found")
    if op not in ALL_OPS:
        raise SearchError(f"operator '{op}' is not supported")
    get = getters[str(field)]
    if field in dates:
        if op not in DATE_OPS:
            raise SearchError(f"operator '{op}' is not allowed on date field '{field}'")
        v = _date(raw)
        upd = field == "updated_at"
        if op == ">":
            low = v if inclusive else v + 1
            return Compiled(lambda r: (x := get(r)) is not None and x >= low, lo=low if upd else None,
                            pure_range=upd)
        if op == "<":
            high = v if inclusive else v - 1
            return Compiled(lambda r: (x := get(r)) is not None and x <= high, hi=high if upd else None,
                            pure_range=upd)
        return Compiled(lambda r: get(r) == v, lo=v if upd else None, hi=v if upd else None, pure_range=upd)
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
                  depth: int = 1, inclusive: bool = True) -> Compiled:
    """A search ``query`` object -> a predicate plus the updated_at range it implies."""
    if node is None:
        return Compiled(lambda r: True)
    if not isinstance(node, dict):
        raise SearchError("query must be an object")
    if "field" in node:
        return _filter(node, getters, dates, inclusive)
    op, children = node.get("operator"), node.get("value")
    if op not in ("AND", "OR") or not isinstance(children, list) or not children:
        raise SearchError("a query group needs operator AND/OR and a non-empty list of filters")
    if depth > MAX_DEPTH:
        raise SearchError(f"queries may nest at most {MAX_DEPTH} levels")
    if len(children) > MAX_FILTERS:
        raise SearchError(f"at most {MAX_FILTERS} filters per {op} group")
    parts = [compile_query(child, getters, dates, depth + 1, inclusive) for child in children]
    preds = [p.pred for p in parts]
    if op == "OR":
        return Compiled(lambda r: any(p(r) for p in preds), pure_range=False)
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
                 dates: frozenset[str], *, inclusive: bool = True) -> None:
        self.records = records
        self.inclusive = inclusive
        self.getters = getters
        self.dates = dates
        self.index: list[tuple[int, int]] = sorted((r.updated_at, rid) for rid, r in records.items())
        self.version = 0
        self._cache: dict[tuple[str, str, bool], tuple[list[Any], list[Any]]] = {}

    def __len__(self) -> int:
        return len(self.records)

    def moved(self, rid: int, old_updated: int, new_updated: int) -> None:
        """Keep the index in step after a record's updated_at changed."""
        i = bisect_left(self.index, (old_updated, rid))
        if i < len(self.index) and self.index[i] == (old_updated, rid):
            del self.index[i]
        insort(self.index, (new_updated, rid))
        self.version += 1
        self._cache.clear()

    def search(self, query: Any, *, per_page: int, after: str | None, sort_field: str | None,
               descending: bool) -> tuple[list[Any], int, str | None, int]:
        """(records of the page, total_count, next cursor or None, page number)."""
        compiled = compile_query(query, self.getters, self.dates, inclusive=self.inclusive)
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
            1 for _, rid in self.index[start:end] if q.pred(self.records[rid]))
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
            if q.pred(self.records[rid]):
                if len(found) == per_page:
                    more = True
                    break
                found.append(i)
        records = [self.records[self.index[i][1]] for i in found]
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
            keys = sorted(((get(self.records[rid]) if get else 0, rid) for _, rid in candidates
                           if q.pred(self.records[rid])), reverse=desc)
            cached = (keys, [(-k, -r) for k, r in keys] if desc else keys)
            self._cache[cache_key] = cached
        keys, ascending = cached
        start = 0
        if cursor is not None:
            key = (cursor[0], cursor[1])
            start = bisect_right(ascending, (-key[0], -key[1]) if desc else key)
        chunk = keys[start:start + per_page]
        nxt = encode_cursor(chunk[-1][0], chunk[-1][1], page) if start + per_page < len(keys) and chunk else None
        return [self.records[rid] for _, rid in chunk], len(keys), nxt, page
