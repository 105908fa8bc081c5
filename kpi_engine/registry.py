"""The KPI catalog: every KPI declared once (JSON name, family, unit, definition), and the families.

``deskpulse kpi --list``, the README table and the output key order are all
generated from :data:`CATALOG`, so a definition cannot drift from what is
computed: a test checks that :func:`kpi_engine.engine.compute` returns exactly
these names, each from the family its entry names. The wording follows KPIS.md.

A KPI's ``family`` names the :class:`kpi_engine.family.Family` (one module) that collects and finalizes
it; :data:`FAMILIES` lists them for the engine.

To add a KPI: (1) its entry below (``_k(name, family, unit, definition)``, in output order); (2) in that
family's module, a partial in ``collect`` (one more aggregate in the family's pass over ``_kpi_period_facts``,
added with ``ws.parts.add(key, partial_name, value)``; counts add, :class:`kpi_engine.partials.Dist` for
percentiles, :class:`kpi_engine.partials.IdSet` for distinct counts) and its value in ``finalize``;
(3) a test. Engine, shards and breakdowns need nothing. Only a KPI needing a per-ticket value that is not
stored yet also touches the facts: the value in :mod:`kpi_engine.facts` (if it comes from messages or events)
and ``fact_store.FACT_VALUES``, a new step in :mod:`kpi_engine.schema` listed in ``sync/store.py``
``MIGRATIONS``, and a ``fact_store.FACTS_VERSION`` bump.
"""

from __future__ import annotations

from dataclasses import dataclass

from kpi_engine import backlog, effort, quality, resolution, responsiveness, sla, volume
from kpi_engine.effort import AHT_NULL_REASON
from kpi_engine.family import Family


@dataclass(frozen=True)
class Kpi:
    name: str
    family: str
    unit: str  # seconds | percent | count | ratio | score | money | list | object
    definition: str


BUSINESS = " The _business variant measures the same intervals in configured business hours (null without a schedule)."
_C: list[Kpi] = []


def _k(name: str, family: str, unit: str, definition: str) -> None:
    _C.append(Kpi(name, family, unit, definition))


def _durations(name: str, family: str, stats: tuple[str, ...], definition: str) -> None:
    for stat in stats:
        label = {"median": "Median", "p90": "90th percentile", "mean": "Mean"}[stat]
        _k(f"{name}_{stat}_s", family, "seconds", f"{label}: {definition}")
    for stat in stats:
        label = {"median": "Median", "p90": "90th percentile", "mean": "Mean"}[stat]
        _k(f"{name}_{stat}_s_business", family, "seconds", f"{label}, business hours: {definition}")


_k("tickets_created", "volume", "count", "Tickets created in the period.")
_k("monthly_ticket_volume", "volume", "list",
   "List of {month, tickets, mom_change_pct, yoy_change_pct, is_partial} for each calendar month in the period "
   "(reporting timezone). MoM % = (V_m - V_m-1)/V_m-1 x 100 against the full previous month; YoY % against "
   "month m-12; null when the base is 0 or outside the synced history. is_partial: the period or today cuts "
   "the month.")
_k("average_ticket_severity", "volume", "score",
   "Mean severity (1-3, from the configurable severity map; none -> 1) of tickets created in the period.")
_k("tickets_per_customer", "volume", "ratio",
   "Tickets created (with a requester) / distinct requesters who created them.")
_k("tickets_per_organization", "volume", "ratio",
   "Tickets created by an organization's requesters / distinct organizations among them.")
_k("escalation_rate_pct", "volume", "percent",
   "Tickets created in the period that were escalated / tickets created x 100. Escalated: priority raised to the "
   "top configured severity (a priority change from a lower one; a ticket created urgent is not escalated), moved "
   "to (or sitting in) a configured escalation group, or given a configured tag.")
_k("tickets_solved", "resolution", "count",
   "Tickets (solved or closed now) whose latest transition to solved/closed falls in the period.")
_durations("first_response_time", "responsiveness", ("median", "p90", "mean"),
           "per ticket, first agent reply (public, by an agent, not the description) - ticket created, for tickets "
           "whose first reply falls in the period. If an agent created the ticket with a public first comment, that "
           "comment does not count (the next agent reply does). Tickets with no reply yet are left out and counted "
           "in tickets_awaiting_first_reply.")
_k("tickets_awaiting_first_reply", "backlog", "count",
   "Tickets at as_of (= --until) that have neither an agent reply nor a solve yet.")
_durations("average_response_time", "responsiveness", ("median", "mean"),
           "over every agent reply in the period that answers at least one unanswered customer message: reply time - "
           "the earliest unanswered customer message before it. Response-weighted; the first such interval is the "
           "first response time. A customer message at the same second as a reply waits for the next reply.")
_durations("full_resolution_time", "resolution", ("median", "p90", "mean"),
           "latest solve - created, for tickets solved in the period.")
_durations("first_resolution_time", "resolution", ("median", "mean"),
           "first transition to solved/closed (status history) - created, for tickets solved in the period; the "
           "vendor's own first-resolution time (e.g. Zendesk first_resolution_time_in_minutes) where the source "
           "gives no status history.")
for _name, _set in (("requester_wait_time", "{new, open, on_hold}"), ("agent_wait_time", "{pending}"),
                    ("on_hold_time", "{on_hold}")):
    _k(f"{_name}_mean_s", "resolution", "seconds",
       f"Mean time in statuses {_set} from status history, for tickets solved in the period (tickets without "
       "status history are left out).")
    _k(f"{_name}_mean_s_business", "resolution", "seconds",
       f"Mean business-hours time in statuses {_set} from status history, for tickets solved in the period.")
_k("fcr_pct", "resolution", "percent",
   "Tickets solved in the period with no reopen, exactly one agent reply and no customer message after it / "
   "tickets solved x 100.")
_k("one_touch_pct", "resolution", "percent",
   "Zendesk's rule for parity: tickets solved in the period with fewer than 2 agent replies / tickets solved x 100.")
_k("reopen_rate_pct", "resolution", "percent",
   "Tickets solved in the period that were ever reopened (solved/closed -> unsolved in the status history; the "
   "vendor's reopen count, e.g. Zendesk ticket metrics or Intercom count_reopens, where a source has no status "
   "history for the ticket) / tickets solved x 100.")
_k("reopens_total", "resolution", "count", "Reopens of the tickets solved in the period (same sources as "
   "reopen_rate_pct).")
_k("resolution_rate_pct", "resolution", "percent",
   "Tickets solved / tickets created in the period x 100. May exceed 100 (backlog burn-down); never clamped.")
_k("interactions_per_ticket", "resolution", "ratio",
   "Mean public customer + agent messages per ticket solved in the period.")
_k("agent_replies_per_ticket", "resolution", "ratio", "Mean agent replies per ticket solved in the period.")
_k("tickets_per_agent", "resolution", "ratio",
   "Tickets solved / distinct assignees of those tickets (per agent in --by agent).")
_k("csat_pct", "quality", "percent",
   "Satisfied ratings / all CSAT ratings x 100, by rating time. Satisfied: Zendesk good; Intercom 4-5; Freshdesk "
   "101-103 (or 1 on 3-point surveys); imported CSAT 4-5 of 5 (score_1_5 >= 4; every rating keeps score_raw).")
_k("nps", "quality", "score", "% promoters (9-10) - % detractors (0-6) over imported NPS responses in the period.")
_k("ces_mean", "quality", "score", "Mean CES 2.0 answer (1-7 agreement) in the period; other scales are kept apart.")
_k("ces_easy_pct", "quality", "percent", "Share of CES 2.0 answers of 5-7 in the period x 100.")
_k("backlog_size", "backlog", "count", "Unsolved tickets (new, open, pending, on_hold) at as_of (= --until).")
_k("backlog_age", "backlog", "object",
   "{0_24h, 24_48h, 48h_7d, gt_7d} counts of the backlog by age (since creation) at as_of; they add up to "
   "backlog_size; plus pct_gt_24h, pct_gt_48h, pct_gt_7d.")
_k("sla_adherence_pct", "sla", "percent",
   "Achieved / (achieved + breached) SLA targets completed in the period. Targets per severity from [sla] "
   "(first_reply, resolution; minutes; business or calendar), completed by the first reply / latest solve; with "
   "no targets configured, the vendor's own SLA outcome where the API gives it. Per organization: --by organization.")
_k("sla_adherence_first_reply_pct", "sla", "percent", "sla_adherence_pct for first-reply targets only.")
_k("sla_adherence_resolution_pct", "sla", "percent", "sla_adherence_pct for resolution targets only.")
_k("aht_mean_s", "effort", "seconds",
   "Agent handle time: tracked seconds / tickets with tracked time, for tickets solved in the period; only from "
   "real effort data (time entries). Null otherwise: " + AHT_NULL_REASON + ".")
_k("cost_per_ticket", "effort", "money",
   "Configured support cost for the period ([costs] monthly_total, pro-rated by days) / tickets created. Null with "
   "no cost configured (and in breakdowns other than month/week).")
_k("cost_per_resolved_ticket", "effort", "money", "The same cost / tickets solved in the period.")
_k("cdi_red", "distress", "count",
   "Accounts in the red Customer Distress Index band on the latest day computed (cdi_history); null before any. "
   "The accounts themselves: deskpulse distress.")
_k("cdi_yellow", "distress", "count", "Accounts in the yellow CDI band on the latest day computed.")
_k("cdi_green", "distress", "count", "Accounts in the green CDI band on the latest day computed.")

CATALOG: tuple[Kpi, ...] = tuple(_C)
#: every family, in the order they collect (the order of the values is the catalog's)
FAMILIES: tuple[Family, ...] = (volume.FAMILY, responsiveness.FAMILY, resolution.FAMILY, backlog.FAMILY, sla.FAMILY,
                                effort.FAMILY, quality.FAMILY, effort.DISTRESS)
NAMES: tuple[str, ...] = tuple(k.name for k in CATALOG)
BY_NAME: dict[str, Kpi] = {k.name: k for k in CATALOG}

#: Support KPIs deliberately not computed, with the reason (shown by --list rather than faked).
NOT_COMPUTABLE: tuple[tuple[str, str], ...] = (
    ("agent_utilisation", "needs agent schedules / logged-in time, which helpdesk APIs do not provide"),
    ("qa_score", "needs quality-assurance reviews, which are not helpdesk data"),
    ("self_service_success", "needs help-center / bot session outcomes, not in the ticket data"),
    ("retention_churn", "needs CRM data (renewals, cancellations)"),
    ("revenue_per_interaction", "needs CRM / revenue data"),
    ("phone_abandonment", "needs telephony queue data"),
)


def markdown_table() -> str:
    """The README's KPI table, generated from the catalog."""
    lines = ["| JSON name | Family | Unit | Definition |", "|---|---|---|---|"]
    for kpi in CATALOG:
        lines.append(f"| `{kpi.name}` | {kpi.family} | {kpi.unit} | {kpi.definition} |")
    lines.append("")
    lines.append("Not computable from helpdesk data:")
    lines.append("")
    for name, reason in NOT_COMPUTABLE:
        lines.append(f"- `{name}`: {reason}")
    return "\n".join(lines)


if __name__ == "__main__":  # ``python -m kpi_engine.registry`` prints the README table
    import sys

    sys.stdout.write(markdown_table() + "\n")
