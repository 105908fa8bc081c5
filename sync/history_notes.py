"""``deskpulse status`` lines about history a helpdesk API cannot show (Freshdesk's archive).

Freshdesk archives closed, inactive tickets (120 days by default, Freshworks KB article 212901) and its
API lists no archived ticket: one can be read by id, none can be found (API-NOTES 6.3). deskpulse keeps
what it synced before a ticket was archived (nothing is deleted when a ticket leaves the listings), but
what Freshdesk had archived before the first sync is out of reach. The first sync is the
``history_partial_before`` marker of the source's ``tickets`` cursor (:func:`kpi_engine.volume.partial_history`).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from config.settings import Settings
from kpi_engine.volume import partial_history


def archive_lines(settings: Settings, conn: sqlite3.Connection) -> list[str]:
    """One line per configured Freshdesk source."""
    firsts = partial_history(conn)
    lines = []
    for source in settings.sources:
        if source.kind != "freshdesk":
            continue
        first = firsts.get(source.name)
        when = datetime.fromtimestamp(first, UTC).strftime("%Y-%m-%d") if first is not None else "the first sync"
        lines.append(f"{source.name}: closed tickets archived by Freshdesk before the first sync are not visible "
                     f"via the API; history before {when} may be partial")
    return lines
