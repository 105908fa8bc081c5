"""What a KPI family module declares: how it collects its partials and how it turns them into KPI values.

Why one shape: the engine, the shard workers and the breakdowns treat every family alike (they loop over
:data:`kpi_engine.registry.FAMILIES`), so a KPI lives in two places only: its catalog entry
(:mod:`kpi_engine.registry`, whose ``family`` names the :class:`Family`) and its family module, which holds
both the SQL that measures it (``collect``: mergeable partials per breakdown key, from the stored facts)
and the arithmetic that finishes it (``finalize``: partials -> values).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from config.settings import CostSettings
from kpi_engine.periods import Period

if TYPE_CHECKING:
    from kpi_engine.workspace import Workspace


@dataclass(frozen=True)
class Finish:
    """What ``finalize`` may need besides the partial of one row (the overall figures or one breakdown key).

    ``view``: the period or time bucket the values are for (None for a ticket-dimension row);
    ``month_part``: the partial holding the whole calendar months (the bases of monthly volume's MoM/YoY);
    ``cdi``: the CDI band counts of the overall figures (None in breakdown rows).
    """

    business: bool
    costs: CostSettings
    view: Period | None
    period: Period
    month_part: dict[str, Any]
    history_start: int | None
    now: int
    partial_before: dict[str, int] | None = None
    cdi: dict[str, int | None] | None = None
    kpis: frozenset[str] | None = None  # the KPIs asked for (None: all); the others' values are dropped

    def wants(self, kpi: str) -> bool:
        """Whether ``kpi`` was asked for: a family may skip finishing a value nobody reads."""
        return self.kpis is None or kpi in self.kpis


@dataclass(frozen=True)
class Family:
    """A family of KPIs: ``name`` is the ``family`` of their catalog entries.

    ``collect(ws)`` adds the family's partials to ``ws.parts`` (reading the period's facts ``_kpi_period_facts``
    and its own tables); it runs per shard, so partials must merge (:mod:`kpi_engine.partials`).
    ``finalize(part, finish)`` returns exactly the family's KPI values for one row.
    ``needs_tickets``: False when it also runs with no ticket source at all (survey responses).
    """

    name: str
    collect: Callable[[Workspace], None]
    finalize: Callable[[dict[str, Any], Finish], dict[str, Any]]
    needs_tickets: bool = True


def collect_nothing(ws: Workspace) -> None:
    """For a family whose values come from elsewhere (the CDI history) or ride on another family's pass."""
