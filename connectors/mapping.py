"""Map or quarantine: the one place a vendor record becomes store rows or a quarantined record.

Every vendor stream maps records the same way (DESIGN.md sync contract 6): a record that does not
parse is kept in ``quarantine`` with its error and raw payload, and the rest of the page goes on.
``MAPPING_ERRORS`` is what a mapper may raise for a malformed record; anything else (a bug, a
stop signal, an HTTP error from a nested fetch) propagates. The error text is ``"<Type>: <message>"``
for every vendor, so ``deskpulse status`` and the quarantine table read alike whichever helpdesk it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from connectors.base import Quarantined
from connectors.errors import ParseError
from connectors.normalize import id_str

Rows = dict[str, list[dict[str, Any]]]

#: What a mapper raises for a record of the wrong shape (a missing key, a bad timestamp, a wrong type...).
MAPPING_ERRORS: tuple[type[Exception], ...] = (ParseError, KeyError, TypeError, ValueError, AttributeError,
                                               AssertionError)


def quarantined(stream: str, record: Any, exc: BaseException, record_id: str | None = None) -> Quarantined:
    """The quarantine entry for ``record`` that failed with ``exc`` (its id read from the record if it has one)."""
    if record_id is None and isinstance(record, Mapping):
        try:
            record_id = id_str(record.get("id"))
        except MAPPING_ERRORS:
            record_id = None
    return Quarantined(stream, record_id, f"{type(exc).__name__}: {exc}", record)


def not_an_object(record: Any) -> ParseError:
    """The error for a list item that is not a JSON object."""
    return ParseError(f"expected an object, got {type(record).__name__}")


def map_records(stream: str, items: Iterable[Any], to_rows: Callable[[dict[str, Any]], Rows],
                tables: Iterable[str] = (), *, into: Rows | None = None,
                bad: list[Quarantined] | None = None) -> tuple[Rows, list[Quarantined]]:
    """Map each record with ``to_rows``; one that fails goes to quarantine while the rest still go through.

    ``tables`` are present in the result even when empty (a page that maps nothing still names what it
    would have written). ``into``/``bad`` let a stream add to rows it is already building.
    """
    rows: Rows = {} if into is None else into
    for table in tables:
        rows.setdefault(table, [])
    bad = [] if bad is None else bad
    for item in items:
        try:
            if not isinstance(item, dict):
                raise not_an_object(item)
            mapped = to_rows(item)
        except MAPPING_ERRORS as exc:
            bad.append(quarantined(stream, item, exc))
            continue
        for table, table_rows in mapped.items():
            got = rows.get(table)
            if got is None:
                rows[table] = got = []
            got.extend(table_rows)
    return rows, bad


def merge_rows(into: Rows, rows: Rows) -> Rows:
    """Append ``rows`` to ``into`` table by table (a page built from several mapped parts)."""
    for table, items in rows.items():
        into.setdefault(table, []).extend(items)
    return into
