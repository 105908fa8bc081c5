"""Small parsing helpers every connector uses to map vendor payloads to store rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connectors.errors import ParseError


def to_epoch(value: Any) -> int | None:
    """ISO 8601 (``Z`` or offset) or unix seconds to int unix seconds UTC; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ParseError(f"not a timestamp: {value!r}")
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ParseError(f"not a timestamp: {value!r}") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return int(parsed.timestamp())
    raise ParseError(f"not a timestamp: {value!r}")


def to_iso(epoch: int | None) -> str | None:
    """Unix seconds to ``2024-01-01T00:00:00Z``."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def id_str(value: Any) -> str | None:
    """Vendor ids are ints or strings; the store keeps them as text."""
    if value is None or value == "":
        return None
    return str(value)


def to_number(value: Any) -> float | None:
    """Customer-value fields are often text (``"120000"``, ``"1,200.50"``): a float, or None when not numeric."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).replace(",", "").strip())
    except ValueError:
        return None


def require(record: dict[str, Any], key: str) -> Any:
    """A field the record cannot be stored without; missing means quarantine."""
    value = record.get(key)
    if value is None:
        raise ParseError(f"missing required field '{key}'")
    return value
