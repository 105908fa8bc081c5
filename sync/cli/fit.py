"""Fitting the CLI's tables to the terminal: short CDI reasons and the width tiers every table uses.

Rich wraps a cell that does not fit, column by column, so at 80 columns one account of the distress table
used to take eight lines. Instead each table picks its layout from ``console.width`` (Rich reads ``COLUMNS``):
narrow terminals get fewer, condensed columns and short reasons (each row at most two lines), wide ones keep
every column. Scripts should not parse tables at all: every command that prints one has ``--format json``.
"""

from __future__ import annotations

import re

from rich.console import Console

from kpi_engine.distress_rank import LABELS

#: below this many columns a table switches to its narrow layout (80 and 90 columns are narrow)
NARROW = 100
#: from this many columns the long reason words fit beside every other column of the distress table
WIDE = 150

#: the short word for each CDI component, as in "tone 89p, open 96p, 30d 78p"
SHORT_LABELS: dict[str, str] = {
    "tickets_30d": "30d", "open_tickets": "open", "avg_open_age_s": "age", "avg_time_to_close_s": "close",
    "tickets_per_tenure_month": "tenure", "negative_tone_30d": "tone", "reopens_30d": "reopens",
    "sla_breaches_30d": "SLA", "low_csat_30d": "CSAT",
}

_LONG_TO_SHORT = {LABELS[key]: short for key, short in SHORT_LABELS.items() if key in LABELS}
# longest label first, so "tickets per tenure month" is not read as "tickets" + rest
_LABEL_RE = "|".join(re.escape(label) for label in sorted(_LONG_TO_SHORT, key=len, reverse=True))
_REASON = re.compile(rf"(?P<label>{_LABEL_RE}) (?P<n>\d+)(?:(?:st|nd|rd|th) pct|(?P<ref>% of ref))")
_RISE = re.compile(r"\+(\d+) in 7 days")


def is_narrow(console: Console) -> bool:
    """Whether the console is narrower than :data:`NARROW` columns (the condensed layouts)."""
    return console.width < NARROW


def is_wide(console: Console) -> bool:
    """Whether the console has :data:`WIDE` columns or more (long reason words)."""
    return console.width >= WIDE


def short_reason(text: str) -> str:
    """``negative tone 89th pct`` -> ``tone 89p``; ``open tickets 80% of ref`` -> ``open 80%``.

    Works on any text holding reasons (a write-back ``why`` line too); text it does not recognise (a reason from
    a newer engine, a helpdesk name) is left as it is. ``+12 in 7 days`` becomes ``+12/7d``.
    """
    def repl(match: re.Match[str]) -> str:
        unit = "%" if match.group("ref") else "p"
        return f"{_LONG_TO_SHORT[match.group('label')]} {match.group('n')}{unit}"

    return _RISE.sub(r"+\1/7d", _REASON.sub(repl, text))


def reasons_text(reasons: list[str], *, short: bool) -> str:
    """The reasons of one account joined for a table cell, short or as the engine words them."""
    return ", ".join(short_reason(r) if short else r for r in reasons)
