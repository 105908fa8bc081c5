"""Small parsing helpers every connector uses to map vendor payloads to store rows."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from html.parser import HTMLParser
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


def require(record: Mapping[str, Any], key: str) -> Any:
    """A field the record cannot be stored without; missing means quarantine."""
    value = record.get(key)
    if value is None:
        raise ParseError(f"missing required field '{key}'")
    return value


# -- text: the one HTML -> text (Freshdesk bodies without ``*_text``, Intercom bodies) ---------------------
class _TextExtractor(HTMLParser):
    """Collects text; block-level tags become line breaks so paragraphs stay apart."""

    BLOCKS = frozenset({"p", "div", "br", "li", "ul", "ol", "tr", "blockquote", "pre", "h1", "h2", "h3", "h4",
                        "h5", "h6", "table", "hr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")


def html_to_text(body: str | None) -> str | None:
    """A vendor's HTML body -> plain text; None stays None, markup-only bodies become ''.

    Block tags become line breaks, entities are decoded, runs of spaces collapse and blank lines go, so
    sentiment and the digest read the same text whichever helpdesk the message came from.
    """
    if body is None:
        return None
    if "<" not in body and "&" not in body:
        return body.strip()
    parser = _TextExtractor()
    parser.feed(body)
    parser.close()
    lines = (_SPACES.sub(" ", line).strip() for line in "".join(parser.parts).split("\n"))
    return "\n".join(line for line in lines if line)
