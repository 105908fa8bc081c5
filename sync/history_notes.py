"""``deskpulse status`` lines about history a helpdesk API cannot show.

A connector plugin declares such a gap as ``ConnectorPlugin.history_note`` (Freshdesk's: closed tickets it
archived before the first sync can no longer be listed, so that history may be partial); this module only
fills in each configured source's name and the date of its first sync, the ``history_partial_before`` marker
of the source's ``tickets`` cursor (:func:`kpi_engine.volume.partial_history`). No vendor is named here.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from config.settings import Settings
from kpi_engine.volume import partial_history
from sync.registry import plugins


def archive_lines(settings: Settings, conn: sqlite3.Connection) -> list[str]:
    """One line per configured source whose plugin declares a history note."""
    installed = plugins()
    firsts: dict[str, int] | None = None
    lines = []
    for source in settings.sources:
        found = installed.get(source.kind)
        if found is None or found.history_note is None:
            continue
        if firsts is None:
            firsts = partial_history(conn)
        first = firsts.get(source.name)
        when = datetime.fromtimestamp(first, UTC).strftime("%Y-%m-%d") if first is not None else "the first sync"
        lines.append(found.history_note.format(source=source.name, since=when))
    return lines
