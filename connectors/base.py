"""The contract between connectors and the sync engine.

A connector exposes streams; a stream yields :class:`Page` objects. Each page
carries normalized rows for one or more store tables and the cursor that
resumes *after* it. The engine commits a page's rows and its cursor in one
transaction, which is the whole of the "nothing lost, nothing duplicated,
resumable at any instant" guarantee: streams must therefore only emit a cursor
that is safe once every row before it is stored.

Rows are plain dicts whose keys are store columns (see ``sync/store.py``),
without ``source`` (the engine adds it); timestamps are int unix seconds UTC;
JSON columns hold Python lists/dicts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar


def time_bookmark(newest_stored: int | None, run_start: int, lookback_s: int) -> int:
    """The next start of a time-based stream: ``min(newest stored, run start) - lookback``.

    A bookmark set to the run's start alone (a signpost) loses records that an eventually consistent
    search index or a skewed clock makes visible later with an older timestamp (API-NOTES 6.1, 6.4;
    the Singer SDK's replication-key rule). The overlap is re-read and absorbed by upserts.
    """
    newest = run_start if newest_stored is None else min(int(newest_stored), int(run_start))
    return max(0, newest - int(lookback_s))


@dataclass(slots=True)
class Quarantined:
    """A record that failed to parse: kept with its error so nothing is silently dropped."""

    stream: str
    record_id: str | None
    error: str
    raw: Any


@dataclass(slots=True)
class Page:
    """One committed unit of a sync: rows per table, quarantined records, and the cursor after them."""

    records: dict[str, list[dict[str, Any]]]
    cursor: Any
    quarantine: list[Quarantined] = field(default_factory=list)
    done: bool = False

    def count(self) -> int:
        return sum(len(rows) for rows in self.records.values())


class Stream(ABC):
    """One resumable feed of records (tickets, users, ...)."""

    name: str = ""  # a class attribute for fixed streams, set per instance by generic ones

    @abstractmethod
    def pages(self, cursor: Any | None) -> Iterator[Page]:
        """Yield pages starting after ``cursor`` (None: from the beginning of history)."""


@dataclass(slots=True)
class WriteRequest:
    """A desired change on one ticket, as planned by ``sync/writeback.py``."""

    ticket_id: str
    add_tags: list[str] = field(default_factory=list)
    remove_tags: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class WriteResult:
    """What the vendor did with a write: ``applied`` (ok), ``gone`` (404) or ``refused`` (4xx)."""

    outcome: str
    detail: str = ""
    tags: list[str] | None = None


class Connector(ABC):
    """A helpdesk connector: streams to read, and write calls for predicted-distress write-back."""

    kind: ClassVar[str] = ""

    @abstractmethod
    def streams(self) -> list[Stream]:
        """Streams in the order they should run (parents before children)."""

    def stream(self, name: str) -> Stream:
        """One stream by name (tests and tools run a single stream)."""
        for stream in self.streams():
            if stream.name == name:
                return stream
        raise KeyError(name)

    def write(self, request: WriteRequest) -> WriteResult:
        """Apply one ticket write. Connectors that support write-back override this."""
        raise NotImplementedError(f"{self.kind} connector does not support write-back")

    def resolve_field(self, name: str) -> str | None:
        """The key under which the store keeps the custom field configured as ``name`` (None: no such field).

        Write-back plans by comparing a ticket's stored ``custom_fields`` with the wanted value, so it must
        look under the store's key, not the configured spelling: a mismatch rewrites every ticket every
        run. The default is the name itself (the vendor's key is what users configure); connectors that
        accept other spellings (Freshdesk without ``cf_``, a Zendesk field by title) override this.
        """
        return name

    def close(self) -> None:
        """Release the HTTP session."""
