"""Human-readable KPI values for tables and digests: "2h 14m", "93.1%", "1,204", "$12.40", "▲ 4.2%"."""

from __future__ import annotations

from typing import Any

from kpi_engine.registry import BY_NAME

NULL = "—"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return NULL
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    minutes, s = divmod(s, 60)
    if minutes < 60:
        return f"{minutes}m {s:02d}s" if s else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


def arrow(change: float | None) -> str:
    """▲/▼ with the signed percentage, or an empty string when there is no base."""
    if change is None:
        return ""
    mark = "▲" if change > 0 else "▼" if change < 0 else "="
    return f"{mark} {abs(change):.1f}%"


def humanize(name: str, value: Any, currency: str = "USD") -> str:
    """A KPI value formatted by its unit from the registry."""
    if value is None:
        return NULL
    kpi = BY_NAME.get(name)
    unit = kpi.unit if kpi else ""
    if unit == "seconds":
        return duration(value)
    if unit == "percent":
        return f"{value:.1f}%"
    if unit == "count":
        return f"{int(value):,}"
    if unit in ("ratio", "score"):
        return f"{value:,.2f}"
    if unit == "money":
        symbol = {"USD": "$", "EUR": "€", "GBP": "£"}.get(currency)
        return f"{symbol}{value:,.2f}" if symbol else f"{value:,.2f} {currency}"
    if name == "backlog_age" and isinstance(value, dict):
        return (f"<24h {value['0_24h']} · 24-48h {value['24_48h']} · 48h-7d {value['48h_7d']} · "
                f">7d {value['gt_7d']}")
    if name == "monthly_ticket_volume" and isinstance(value, list):
        return " · ".join(f"{m['month']}: {m['tickets']:,}{'*' if m['is_partial'] else ''} {arrow(m['mom_change_pct'])}"
                          .strip() for m in value) or NULL
    return str(value)
