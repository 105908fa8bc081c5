"""Humanized numbers, week-over-week changes and sparklines for the weekly digest.

Why a module of its own: the digest is read in thirty seconds, so every number
must already be in the unit a Head of Support thinks in ("2h 14m", "93%",
"1,204"), and every change must say at a glance whether it is good news. These
helpers are pure string functions, shared by the Block Kit composer and the
terminal preview, and tested on their own.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Unit = Literal["count", "duration", "pct"]
Better = Literal["higher", "lower"] | None

MISSING = "—"
SPARK_CHARS = "▁▂▃▄▅▆▇█"
UP, DOWN = "▲", "▼"
GOOD, BAD, NEUTRAL = "🟢", "🔴", "⚪"
_ELLIPSIS = "…"


def fmt_count(value: float | None) -> str:
    """``1204`` → ``"1,204"``; non-integers keep one decimal (``2.5``)."""
    if value is None:
        return MISSING
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def fmt_duration(seconds: float | None) -> str:
    """Seconds → the two most significant units: ``"45s"``, ``"14m"``, ``"2h 14m"``, ``"3d 4h"``.

    Two units are enough to compare week over week; minutes-and-seconds of a
    three-day resolution time are noise.
    """
    if seconds is None:
        return MISSING
    total = int(round(abs(seconds)))
    sign = "-" if seconds < 0 and total else ""
    if total < 60:
        return f"{sign}{total}s"
    if total < 3600:
        return f"{sign}{total // 60}m"
    if total < 86400:
        hours, minutes = divmod(total // 60, 60)
        return f"{sign}{hours}h {minutes}m" if minutes else f"{sign}{hours}h"
    days, hours = divmod(total // 3600, 24)
    return f"{sign}{days}d {hours}h" if hours else f"{sign}{days}d"


def _one_decimal(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def fmt_pct(value: float | None) -> str:
    """``93.4`` → ``"93%"``; below 10 one decimal is kept (``"4.3%"``) because there it matters."""
    if value is None:
        return MISSING
    if abs(value) >= 10:  # half-up, not Python's half-to-even: 92.5% reads as 93%, like every dashboard
        return f"{math.copysign(math.floor(abs(value) + 0.5), value):.0f}%"
    return f"{_one_decimal(value)}%"


def fmt_value(value: float | None, unit: Unit) -> str:
    """Format ``value`` in its unit."""
    if unit == "duration":
        return fmt_duration(value)
    if unit == "pct":
        return fmt_pct(value)
    return fmt_count(value)


@dataclass(frozen=True, slots=True)
class Change:
    """A week-over-week change, already judged: ``verdict`` is better/worse/unchanged/neutral/unknown."""

    arrow: str        # ▲, ▼ or "" (unchanged / unknown)
    amount: str       # "18m", "12%", "2.1 pts"; "" when unknown
    verdict: str      # "better", "worse", "unchanged", "up", "down", "no data"
    emoji: str        # 🟢 🔴 ⚪ or ""

    def slack(self) -> str:
        """``"🟢 ▼ 18m better"``: emoji for the eye, the word for colour-blind readers and the fallback."""
        if self.verdict == "no data":
            return "no data last week"
        if self.verdict == "unchanged":
            return f"{NEUTRAL} unchanged"
        parts = [self.emoji, self.arrow, self.amount]
        if self.verdict in ("better", "worse"):
            parts.append(self.verdict)
        return " ".join(p for p in parts if p)

    def plain(self) -> str:
        """The same without emoji, for the notification text."""
        if self.verdict in ("no data", "unchanged"):
            return self.verdict
        text = f"{self.arrow} {self.amount}"
        return f"{text}, {self.verdict}" if self.verdict in ("better", "worse") else text


def week_change(current: float | None, previous: float | None, unit: Unit, better: Better) -> Change:
    """Judge ``current`` against ``previous``.

    Durations move by an absolute amount ("▼ 18m"), percentages by points
    ("▲ 2.1 pts"), counts by a relative percentage ("▲ 12%", or an absolute
    count when last week was zero). A change that rounds to nothing in the
    displayed precision is "unchanged", so the digest never shows "▲ 0%".
    """
    if current is None or previous is None:
        return Change("", "", "no data", "")
    delta = current - previous
    if unit == "duration":
        amount = fmt_duration(abs(delta))
        zero = amount == "0s"
    elif unit == "pct":
        amount = f"{_one_decimal(abs(delta))} pts"
        zero = _one_decimal(abs(delta)) == "0"
    elif previous:
        rel = abs(delta) / abs(previous) * 100
        amount = f"{rel:.0f}%" if rel >= 10 else f"{_one_decimal(rel)}%"
        zero = amount == "0%"
    else:
        amount = fmt_count(abs(delta))
        zero = delta == 0
    if zero:
        return Change("", amount, "unchanged", NEUTRAL)
    arrow = UP if delta > 0 else DOWN
    if better is None:
        return Change(arrow, amount, "up" if delta > 0 else "down", "")
    good = (delta > 0) == (better == "higher")
    return Change(arrow, amount, "better" if good else "worse", GOOD if good else BAD)


def sparkline(values: Sequence[float | None]) -> str:
    """Eight weekly values → ``"▁▂▄▅▃▆▇█"``; a missing week is a space, a flat series sits mid-height.

    Scaled min–max over the known values, so the shape (not the absolute level)
    is what the eye reads; the number next to it gives the level.
    """
    known = [v for v in values if v is not None and not math.isnan(v)]
    if not known:
        return " " * len(values)
    low, high = min(known), max(known)
    top = len(SPARK_CHARS) - 1
    out = []
    for value in values:
        if value is None or math.isnan(value):
            out.append(" ")
        elif high == low:
            out.append(SPARK_CHARS[top // 2])
        else:
            out.append(SPARK_CHARS[round((value - low) / (high - low) * top)])
    return "".join(out)


def escape(text: str) -> str:
    """Escape the three characters Slack mrkdwn reserves (``&``, ``<``, ``>``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """Undo :func:`escape` (for the terminal preview)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def clip(text: str, limit: int) -> str:
    """Shorten ``text`` to ``limit`` characters with an ellipsis; collapse whitespace so one item stays one line."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: max(limit - 1, 0)].rstrip() + _ELLIPSIS


_LINK = re.compile(r"<([^<>|]+)\|([^<>]+)>")
_BARE_LINK = re.compile(r"<([^<>|]+)>")
_CODE = re.compile(r"`([^`\n]*)`")


def _strip_marker(text: str, marker: str) -> str:
    m = re.escape(marker)
    return re.sub(rf"(?<![\w{m}]){m}(?=\S)([^{m}\n]*?\S){m}(?![\w{m}])", r"\1", text)


def strip_mrkdwn(text: str) -> str:
    """Slack mrkdwn → plain text: links become their label, ``*bold*``/``_it_``/``~st~``/`` `code` `` lose markers."""
    text = _LINK.sub(r"\2", text)
    text = _BARE_LINK.sub(r"\1", text)
    # Protect code spans (sparklines may hold spaces and must keep their width) before stripping markers.
    codes: list[str] = []

    def _stash(match: re.Match[str]) -> str:
        codes.append(match.group(1))
        return f"\x00{len(codes) - 1}\x00"

    text = _CODE.sub(_stash, text)
    for marker in ("*", "_", "~"):
        text = _strip_marker(text, marker)
    text = re.sub(r"\x00(\d+)\x00", lambda m: codes[int(m.group(1))], text)
    return unescape(text)
