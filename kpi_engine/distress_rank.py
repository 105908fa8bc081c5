"""CDI scaling rules: component names, weights, reference values, percentile ranks and their wording.

Kept apart from the SQL (``distress_data``) and the orchestration (``distress``) because these
are the rules a reviewer checks against KPIS.md line by line, and the tests pin them with
hand-computed numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache

from config.errors import ConfigError

DAY = 86400
MONTH_S = 30.4375 * DAY  # an average calendar month: tenure in months = seconds / MONTH_S

# Component order is the tie-break order everywhere (reasons, JSON).
COMPONENTS: tuple[str, ...] = (
    "tickets_30d", "open_tickets", "avg_open_age_s", "avg_time_to_close_s", "tickets_per_tenure_month",
    "negative_tone_30d", "reopens_30d", "sla_breaches_30d", "low_csat_30d",
)
OPTIONAL = frozenset({"reopens_30d", "sla_breaches_30d", "low_csat_30d"})
DEFAULT_WEIGHTS: dict[str, float] = {
    "tickets_30d": 0.20, "open_tickets": 0.15, "avg_open_age_s": 0.15, "avg_time_to_close_s": 0.10,
    "tickets_per_tenure_month": 0.10, "negative_tone_30d": 0.30,
    "reopens_30d": 0.0, "sla_breaches_30d": 0.0, "low_csat_30d": 0.0,
}
# The value that maps to 1.0 in the min-max fallback (0 maps to 0). Chosen as "clearly a lot" for a
# single B2B account: ten tickets a month, five open at once, two weeks open, a week to close,
# three tickets per month of tenure, half of the messages negative.
DEFAULT_REFERENCE: dict[str, float] = {
    "tickets_30d": 10.0, "open_tickets": 5.0, "avg_open_age_s": 14.0 * DAY, "avg_time_to_close_s": 7.0 * DAY,
    "tickets_per_tenure_month": 3.0, "negative_tone_30d": 0.5,
    "reopens_30d": 3.0, "sla_breaches_30d": 3.0, "low_csat_30d": 2.0,
}
ALIASES: dict[str, str] = {
    "avg_open_age": "avg_open_age_s", "avg_time_to_close": "avg_time_to_close_s", "negative_tone": "negative_tone_30d",
    "reopens": "reopens_30d", "sla_breaches": "sla_breaches_30d", "low_csat": "low_csat_30d",
    "tickets": "tickets_30d", "tickets_per_tenure": "tickets_per_tenure_month",
}
LABELS: dict[str, str] = {
    "tickets_30d": "tickets (30d)", "open_tickets": "open tickets", "avg_open_age_s": "avg open age",
    "avg_time_to_close_s": "avg time to close", "tickets_per_tenure_month": "tickets per tenure month",
    "negative_tone_30d": "negative tone", "reopens_30d": "reopens (30d)", "sla_breaches_30d": "SLA breaches (30d)",
    "low_csat_30d": "low CSAT (30d)",
}


def canonical(name: str, what: str) -> str:
    """The component a config key names (``negative_tone`` → ``negative_tone_30d``); unknown keys are errors."""
    key = ALIASES.get(name, name)
    if key not in DEFAULT_WEIGHTS:
        known = ", ".join(COMPONENTS)
        raise ConfigError(f"invalid config: distress.{what}.{name}: unknown CDI component (known: {known})")
    return key


def resolve_weights(overrides: Mapping[str, float]) -> dict[str, float]:
    """Defaults overlaid with ``[distress] weights``; refuses negatives and an all-zero set."""
    weights = dict(DEFAULT_WEIGHTS)
    for name, value in overrides.items():
        key = canonical(name, "weights")
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"invalid config: distress.weights.{name}: must be a number >= 0")
        weights[key] = float(value)
    if sum(weights.values()) <= 0:
        raise ConfigError("invalid config: distress.weights: at least one weight must be > 0")
    return weights


def resolve_reference(overrides: Mapping[str, float]) -> dict[str, float]:
    """Defaults overlaid with ``[distress] reference``; each value must be > 0 (it maps to 1.0)."""
    reference = dict(DEFAULT_REFERENCE)
    for name, value in overrides.items():
        key = canonical(name, "reference")
        if not math.isfinite(value) or value <= 0:
            raise ConfigError(f"invalid config: distress.reference.{name}: must be a number > 0")
        reference[key] = float(value)
    return reference


def percentile_ranks(values: Mapping[str, float | None]) -> dict[str, float]:
    """Percentile rank in [0, 1] of each present value among the present values.

    ``p = (r - 1) / (n - 1)`` with ``r`` the 1-based ascending rank, ties sharing their average
    rank (so the lowest value gets 0 unless tied, the highest 1 unless tied, and n equal values
    all get 0.5; a lone value gets 0.5 too). A missing value (``None``) gets 0: an account with no
    open tickets has no open-ticket age to be distressed about.
    """
    out = {key: 0.0 for key in values}
    present = sorted((v, k) for k, v in values.items() if v is not None)
    n = len(present)
    if n == 1:
        out[present[0][1]] = 0.5
    if n <= 1:
        return out
    i = 0
    while i < n:
        j = i
        while j + 1 < n and present[j + 1][0] == present[i][0]:
            j += 1
        p = ((i + j) / 2) / (n - 1)
        for k in range(i, j + 1):
            out[present[k][1]] = p
        i = j + 1
    return out


def minmax_scale(value: float | None, reference: float) -> float:
    """Fallback scaling: 0 → 0, ``reference`` (or more) → 1, linear in between; missing → 0."""
    if value is None:
        return 0.0
    return min(1.0, max(0.0, value / reference))


def round_half_up(x: float) -> int:
    """``round()`` is banker's rounding (72.5 → 72); a score people read should round 72.5 up.

    The epsilon keeps a weighted sum that is 72.5 on paper but 72.49999999999999 in floating point
    from rounding down.
    """
    return int(math.floor(x + 0.5 + 1e-9))


def ordinal(n: int) -> str:
    if 10 <= n % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def describe(component: str, scaled: float, method: str) -> str:
    """``open tickets 95th pct`` (percentile) or ``open tickets 80% of ref`` (min-max fallback)."""
    return _words(component, round_half_up(scaled * 100), method)


@lru_cache(maxsize=4096)  # a few hundred distinct phrases, asked for three times per account
def _words(component: str, pct: int, method: str) -> str:
    if method == "minmax":
        return f"{LABELS[component]} {pct}% of ref"
    return f"{LABELS[component]} {ordinal(pct)} pct"


def top_reasons(scaled: Mapping[str, float], weights: Mapping[str, float], method: str, k: int = 3) -> list[str]:
    """The ``k`` components contributing most (weight × scaled value), in words; zero contributions are left out."""
    order = {name: i for i, name in enumerate(COMPONENTS)}
    contrib = [(weights.get(c, 0.0) * s, weights.get(c, 0.0), -order[c], c) for c, s in scaled.items()]
    contrib = [item for item in contrib if item[0] > 0]
    contrib.sort(reverse=True)
    return [describe(c, scaled[c], method) for _, _, _, c in contrib[:k]]


def band(cdi: int, green_max: int, yellow_max: int) -> str:
    """green ≤ green_max < yellow ≤ yellow_max < red."""
    if cdi <= green_max:
        return "green"
    if cdi <= yellow_max:
        return "yellow"
    return "red"
