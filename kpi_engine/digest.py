"""The weekly Slack digest: KPIs in, Block Kit out (pure, no I/O).

What a Head of Support reads in thirty seconds: the week, each headline KPI
with its week-over-week change judged better/worse (lower is better for times
and backlog), an 8-week sparkline, the accounts that turned red or whose
distress rose most, and the oldest open tickets.

Why the budget logic: Slack rejects a whole message over its Block Kit limits
(50 blocks, 3,000 characters per section, 150 per header, 10 fields of 2,000,
and an undocumented ~13.2k cumulative size that answers ``msg_blocks_too_long``).
A digest for 40 sources and 200 red accounts must still post, so lists are
capped and shrunk with "…and N more" until the message fits, never cut off.
The limits are restated here because ``kpi_engine`` may not import the Slack
simulator that enforces them; tests run compose() output through the simulator.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from kpi_engine.digest_format import (
    Better,
    Unit,
    clip,
    escape,
    fmt_count,
    fmt_duration,
    fmt_value,
    sparkline,
    strip_mrkdwn,
    week_change,
)
from kpi_engine.digest_input import (
    DigestAccount,
    DigestInput,
    DigestTicket,
    digest_input_from_kpis,
    iso_week_bounds,
)

__all__ = [
    "DigestAccount", "DigestInput", "DigestTicket", "compose", "digest_input_from_kpis", "iso_week_bounds",
    "payload_size", "render_terminal",
]

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
CHAR_BUDGET = 12_000            # compact-JSON size of the blocks; Slack's cumulative limit is ~13.2k
MAX_LINE = 600                  # one account/ticket line, so a single odd record cannot starve the others

BAND_EMOJI = {"red": "🔴", "yellow": "🟡", "green": "🟢"}


@dataclass(frozen=True, slots=True)
class KpiSpec:
    """How one headline KPI is labelled, formatted and judged."""

    key: str
    label: str
    unit: Unit
    better: Better


BACKLOG = "📚 Backlog"
GROUPS: tuple[tuple[str, tuple[KpiSpec, ...]], ...] = (
    ("📥 Volume & speed", (
        KpiSpec("tickets_created", "Tickets created", "count", None),
        KpiSpec("first_response_time_median_s", "First response (median)", "duration", "lower"),
        KpiSpec("full_resolution_time_median_s", "Resolution (median)", "duration", "lower"),
    )),
    ("⭐ Quality", (
        KpiSpec("csat_pct", "CSAT", "pct", "higher"),
        KpiSpec("fcr_pct", "First-contact resolution", "pct", "higher"),
        KpiSpec("sla_adherence_pct", "SLA adherence", "pct", "higher"),
    )),
    (BACKLOG, (
        KpiSpec("backlog_size", "Open backlog", "count", "lower"),
        KpiSpec("backlog_age.pct_gt_7d", "Open > 7 days", "pct", "lower"),
    )),
)
BACKLOG_BUCKETS = (("0_24h", "<24h"), ("24_48h", "1–2d"), ("48h_7d", "2–7d"), ("gt_7d", ">7d"))


@dataclass(frozen=True, slots=True)
class _Caps:
    """How many list items to show; shrunk step by step until the message fits."""

    accounts: int = 10
    tickets: int = 5
    sources: int = 8
    notes: int = 5
    reasons: int = 3


def payload_size(blocks: Sequence[dict[str, Any]]) -> int:
    """The cumulative size Slack's ``msg_blocks_too_long`` guards, measured as compact JSON (containers count)."""
    return len(json.dumps(list(blocks), ensure_ascii=False, separators=(",", ":")))


# -- small block builders -----------------------------------------------------------------------------
def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _section(text: str, fields: Sequence[str] = ()) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": _mrkdwn(_truncate(text, MAX_SECTION_TEXT))}
    if fields:
        block["fields"] = [_mrkdwn(_truncate(f, MAX_FIELD_TEXT)) for f in fields[:MAX_FIELDS]]
    return block


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(_truncate(text, MAX_SECTION_TEXT))]}


def _divider() -> dict[str, Any]:
    return {"type": "divider"}


def _truncate(text: str, limit: int) -> str:
    """Like :func:`clip` but keeps line breaks: a last-resort guard, the caps normally keep text far below it."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _pack(heading: str, lines: Sequence[str]) -> list[dict[str, Any]]:
    """Lines → as few sections as the 3,000-character limit allows (the heading opens the first)."""
    blocks: list[dict[str, Any]] = []
    current = heading
    for line in lines:
        if len(current) + 1 + len(line) > MAX_SECTION_TEXT:
            blocks.append(_section(current))
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    blocks.append(_section(current))
    return blocks


# -- content -------------------------------------------------------------------------------------------
def _period(since: date, until: date) -> str:
    """``16–22 Nov 2026``; ``until`` is exclusive, so the last day shown is the day before."""
    last = until - timedelta(days=1) if until > since else since
    if (since.year, since.month) == (last.year, last.month):
        return f"{since.day}–{last.day} {last:%b %Y}" if since != last else f"{last.day} {last:%b %Y}"
    if since.year == last.year:
        return f"{since.day} {since:%b} – {last.day} {last:%b %Y}"
    return f"{since.day} {since:%b %Y} – {last.day} {last:%b %Y}"


def _more(count: int, noun: str) -> str:
    return f"…and {fmt_count(count)} more {noun}"


def _sources_line(sources: Sequence[str], cap: int) -> str:
    if not sources:
        return ""
    shown = ", ".join(escape(clip(s, 40)) for s in sources[:cap])
    rest = f" {_more(len(sources) - cap, '')}".rstrip() if len(sources) > cap else ""
    noun = "source" if len(sources) == 1 else "sources"
    return f" · {len(sources)} {noun}: {shown}{rest}"


def _kpi_field(spec: KpiSpec, inp: DigestInput) -> str:
    current = inp.headline.get(spec.key)
    change = week_change(current, inp.previous.get(spec.key), spec.unit, spec.better)
    text = f"{escape(spec.label)}\n*{fmt_value(current, spec.unit)}*  {change.slack()}"
    trend = inp.trend.get(spec.key) or []
    if any(v is not None for v in trend):
        text += f"\n`{sparkline(trend)}`"
    return text


def _kpi_blocks(inp: DigestInput) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for title, specs in GROUPS:
        fields = [_kpi_field(spec, inp) for spec in specs]
        text = f"*{title}*"
        if title == BACKLOG:
            buckets = [(label, inp.headline.get(f"backlog_age.{key}")) for key, label in BACKLOG_BUCKETS]
            if any(v is not None for _, v in buckets):
                text += "\nBy age: " + " · ".join(f"{escape(label)} {fmt_count(v)}" for label, v in buckets)
        blocks.append(_section(text, fields))
    blocks.append(_context("Trend: last 8 weeks, oldest → newest · 🟢 better / 🔴 worse than last week"))
    return blocks


def _attention(accounts: Sequence[DigestAccount]) -> list[DigestAccount]:
    """Accounts that turned red (by CDI), then those whose CDI rose (by rise): the news, not the steady state."""
    picked = [a for a in accounts if a.turned_red or (a.change_7d or 0) > 0]
    return sorted(picked, key=lambda a: (not a.turned_red, -((a.cdi or 0) if a.turned_red else (a.change_7d or 0)),
                                         -(a.cdi or 0), a.name))


def _account_line(acc: DigestAccount, caps: _Caps, multi_source: bool) -> str:
    emoji = BAND_EMOJI.get(acc.band, "⚪")
    cdi = "CDI —" if acc.cdi is None else f"CDI {acc.cdi:.0f}"
    if acc.change_7d:
        cdi += f" ({'▲' if acc.change_7d > 0 else '▼'} {abs(acc.change_7d):.0f} in 7d)"
    # Slack has no escape for "*": one inside the name would end the bold early, so it becomes "∗".
    parts = [f"{emoji} *{escape(clip(acc.name, 60)).replace('*', '∗')}*", cdi]
    if acc.turned_red:
        parts.append("*turned red*")
    if multi_source and acc.source:
        parts.append(escape(clip(acc.source, 40)))
    line = " · ".join(parts)
    reasons = [escape(clip(r, 60)) for r in acc.reasons[: caps.reasons]]
    if reasons:
        line += "\n      ↳ " + ", ".join(reasons)
    return _truncate(line, MAX_LINE)


def _account_blocks(inp: DigestInput, caps: _Caps) -> list[dict[str, Any]]:
    picked = _attention(inp.accounts)
    red = sum(a.turned_red for a in picked)
    heading = "*🚨 Accounts needing attention*"
    counts = [f"{red} turned red"] if red else []
    if len(picked) > red:
        counts.append(f"{len(picked) - red} rising")
    if inp.headline.get("cdi_red") is not None:
        counts.append(f"now 🔴 {fmt_count(inp.headline['cdi_red'])} red")
        if inp.headline.get("cdi_yellow") is not None:
            counts[-1] += f", 🟡 {fmt_count(inp.headline['cdi_yellow'])} yellow"
    if counts:
        heading += " — " + " · ".join(counts)
    if not picked:
        return _pack(heading, ["No account turned red or rose in distress this week."])
    multi = len({a.source for a in inp.accounts}) > 1
    lines = [_account_line(a, caps, multi) for a in picked[: caps.accounts]]
    hidden = picked[caps.accounts:]
    if hidden:
        hidden_red = sum(a.turned_red for a in hidden)
        lines.append(_more(len(hidden), "accounts") + (f" ({hidden_red} turned red)" if hidden_red else ""))
    return _pack(heading, lines)


def _ticket_link(ticket: DigestTicket) -> str:
    label = f"#{escape(clip(ticket.id, 30))}"
    url = ticket.url or ""
    if url.startswith(("http://", "https://")) and not any(c in url for c in "|<> "):
        return f"<{url.replace('&', '&amp;')}|{label}>"
    return label


def _ticket_blocks(inp: DigestInput, caps: _Caps) -> list[dict[str, Any]]:
    tickets = sorted(inp.oldest_open, key=lambda t: -t.age_s)
    heading = "*⏳ Oldest open tickets*"
    if not tickets:
        return _pack(heading, ["No open tickets."])
    multi = len({t.source for t in tickets}) > 1 or len(inp.sources) > 1
    lines = []
    for t in tickets[: caps.tickets]:
        parts = [f"• {_ticket_link(t)} {escape(clip(t.subject, 70)) or '(no subject)'}", f"*{fmt_duration(t.age_s)}*"]
        if t.priority:
            parts.append(escape(clip(t.priority, 20)))
        if multi and t.source:
            parts.append(escape(clip(t.source, 40)))
        lines.append(_truncate(" · ".join(parts), MAX_LINE))
    if len(tickets) > caps.tickets:
        lines.append(_more(len(tickets) - caps.tickets, "open tickets"))
    return _pack(heading, lines)


def _notes_block(inp: DigestInput, caps: _Caps) -> list[dict[str, Any]]:
    if not inp.notes or caps.notes <= 0:
        return []
    lines = [f"ℹ️ {escape(clip(n, 300))}" for n in inp.notes[: caps.notes]]
    if len(inp.notes) > caps.notes:
        lines.append(_more(len(inp.notes) - caps.notes, "notes"))
    return [_context("\n".join(lines))]


def _fallback_text(inp: DigestInput) -> str:
    """The notification / screen-reader text: every headline KPI with its verdict in words, no emoji."""
    parts = []
    for _, specs in GROUPS:
        for spec in specs:
            current = inp.headline.get(spec.key)
            change = week_change(current, inp.previous.get(spec.key), spec.unit, spec.better)
            parts.append(f"{spec.label} {fmt_value(current, spec.unit)} ({change.plain()})")
    red = sum(a.turned_red for a in inp.accounts)
    tail = f" {red} account{'s' if red != 1 else ''} turned red." if red else ""
    return f"Support weekly digest {inp.week} ({_period(inp.since, inp.until)}): {'; '.join(parts)}.{tail}"


def _report_link(inp: DigestInput) -> list[dict[str, Any]]:
    """A link to the week's HTML report (charts, SLA per account, the CDI), when one is published."""
    url = inp.report_url or ""
    if not url.startswith(("http://", "https://")) or any(c in url for c in "|<> "):
        return []
    return [_section(f"<{url.replace('&', '&amp;')}|Open the full report> (charts, SLA per account, distress)")]


def _build(inp: DigestInput, caps: _Caps) -> list[dict[str, Any]]:
    title = clip(f"Support weekly digest · {inp.week}", MAX_HEADER_TEXT)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title, "emoji": True}},
        _context(f"{_period(inp.since, inp.until)} ({escape(inp.timezone)}){_sources_line(inp.sources, caps.sources)}"),
        *_report_link(inp),
        *_kpi_blocks(inp),
        _divider(),
        *_account_blocks(inp, caps),
        _divider(),
        *_ticket_blocks(inp, caps),
        *_notes_block(inp, caps),
    ]
    return blocks


_SHRINK_ORDER = (("accounts", 3), ("tickets", 3), ("sources", 3), ("notes", 0), ("reasons", 1),
                 ("accounts", 0), ("tickets", 0), ("sources", 0))


def compose(inp: DigestInput) -> dict[str, Any]:
    """Return ``{"text": fallback, "blocks": [...]}`` for ``inp``, always within Slack's Block Kit limits.

    Lists start at their caps (10 accounts, 5 tickets, 8 sources, 5 notes) and shrink one item at a time
    (accounts first: they are the longest lines) until the blocks fit the block count and size budget.
    """
    caps = _Caps()
    blocks = _build(inp, caps)
    for name, floor in _SHRINK_ORDER:
        while (len(blocks) > MAX_BLOCKS or payload_size(blocks) > CHAR_BUDGET) and getattr(caps, name) > floor:
            caps = replace(caps, **{name: getattr(caps, name) - 1})
            blocks = _build(inp, caps)
    return {"text": clip(_fallback_text(inp), 3000), "blocks": blocks}


# -- terminal preview ----------------------------------------------------------------------------------
def _text_of(obj: Any) -> str:
    if isinstance(obj, dict):
        text = str(obj.get("text", ""))
        return strip_mrkdwn(text) if obj.get("type") == "mrkdwn" else text
    return ""


def render_terminal(payload: dict[str, Any], width: int = 72) -> str:
    """A plain-text preview of a digest payload for ``deskpulse digest`` (mrkdwn markers and links stripped)."""
    out: list[str] = []
    for block in payload.get("blocks") or []:
        kind = block.get("type")
        if kind == "header":
            title = _text_of(block.get("text"))
            out += [title, "═" * min(max(len(title), 10), width)]
        elif kind == "divider":
            out.append("─" * width)
        elif kind == "section":
            if block.get("text"):
                out.append(_text_of(block["text"]))
            for fld in block.get("fields") or []:
                out.append("  " + _text_of(fld).replace("\n", "\n  "))
        elif kind == "context":
            out.append(" · ".join(_text_of(e) for e in block.get("elements") or []))
        elif kind in ("markdown", "rich_text"):
            out.append(strip_mrkdwn(str(block.get("text", ""))))
        out.append("")
    if not out:
        return str(payload.get("text", ""))
    return "\n".join(out).rstrip() + "\n"
