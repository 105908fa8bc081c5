"""Backlog family: unsolved tickets at ``as_of`` (= ``--until``), their ages, and tickets awaiting a first reply.

Whether a ticket was unsolved at a past instant b: a ticket never reopened was
unsolved during [created, latest solve) (or since creation, if unsolved now). A
reopened ticket (status history shows solved -> unsolved) is replayed from its
status changes (``kpi_status_changes``) backwards from its current status:
unsolved(b) = unsolved now - sum of the changes at or after b (+1 solved->unsolved,
-1 unsolved->solved). For as_of at or after the last sync both reduce to the
current status.

Awaiting a first reply: during [created, min(first agent reply, first solve)).

``--by month|week`` takes each bucket's backlog at the bucket's end. Counting
every ticket at every bucket end would be tickets x buckets; instead each ticket
contributes +1/-1 at the first and last bucket end its interval covers
(difference arrays), so the whole breakdown is one pass over the tickets.
"""

from __future__ import annotations

from typing import Any

from kpi_engine.facts import _is_any
from kpi_engine.family import Family, Finish
from kpi_engine.partials import num
from kpi_engine.periods import bucket_case
from kpi_engine.stats import pct
from kpi_engine.workspace import TIME_DIMENSIONS, UNSOLVED, Workspace, sql_list

DAY = 86400
AGES = (("0_24h", DAY), ("24_48h", 2 * DAY), ("48h_7d", 7 * DAY))
UNSOLVED_NOW = _is_any("k.status", UNSOLVED)
#: stored per ticket: min(first agent reply, first solve) (kpi_engine.facts.AWAIT_END)
AWAIT_END = "k.awaiting_first_reply_until"
#: ``--by month|week``: the partial key of the backlog at ``as_of``, the overall figure (the buckets hold each
#: bucket end's backlog, which do not add up); the engine takes every ``PREFIX`` partial of the total from it
SNAPSHOT = "snapshot"
PREFIX = "bl_"
REOPENED = "COALESCE(k.history_reopens, 0) > 0"


def state(b: str) -> str:
    """1 when the ticket (alias k) was unsolved at epoch ``b``."""
    replay = (f"({UNSOLVED_NOW} - (SELECT COALESCE(SUM(x.unsolved_delta), 0) FROM kpi_status_changes x "
              f"WHERE x.ticket_rowid = k.ticket_rowid AND x.changed_at >= {b})) > 0")
    return (f"(CASE WHEN {REOPENED} THEN {replay} "
            f"ELSE ({UNSOLVED_NOW} OR (k.solved_at IS NOT NULL AND k.solved_at > {b})) END)")


def _snapshot(ws: Workspace, b: int, key: str, window: int | None = None) -> list[tuple[Any, ...]]:
    """(key, backlog, age counts..., awaiting) at epoch b, for tickets created before b (within ``window``).

    Only tickets unsolved now or solved after b can be unsolved or awaiting at b: a ticket whose
    latest solve is before b stayed solved since (its first solve is earlier still). LIMIT -1 keeps
    the per-ticket state a computed column instead of re-evaluating it in every SUM that uses it.
    """
    ages = ", ".join(f"SUM({b} - k.created_at < {limit})" for _, limit in AGES)
    columns = f"""{key} AS key, {state(str(b))} AS unsolved, ({AWAIT_END} IS NULL OR {AWAIT_END} > {b}) AS awaiting,
            k.created_at AS created_at FROM _kpi_period_facts k WHERE k.created_at < {b}"""
    if window:  # a week of tickets: through the creation index
        inner = (f"SELECT {columns} AND k.created_at >= {b - window} "
                 f"AND ({UNSOLVED_NOW} OR k.solved_at IS NULL OR k.solved_at > {b})")
    else:  # three disjoint branches, each through its own index, instead of a scan of every ticket
        inner = " UNION ALL ".join(f"SELECT {columns} AND {cond}" for cond in (
            f"k.status IN {sql_list(UNSOLVED)}", f"NOT {UNSOLVED_NOW} AND k.solved_at > {b}",
            f"NOT {UNSOLVED_NOW} AND k.solved_at IS NULL"))
    return ws.rows(f"""SELECT key, SUM(unsolved), {ages.replace('SUM(', 'SUM(unsolved AND ')}, SUM(awaiting) FROM (
            {inner} LIMIT -1) AS k GROUP BY key""")


def _add(ws: Workspace, key: Any, size: int, ages: list[int], awaiting: int) -> None:
    ws.parts.add(key, "bl_size", size)
    for (name, _), count in zip(AGES, ages, strict=True):
        ws.parts.add(key, f"bl_{name}", count)
    ws.parts.add(key, "bl_awaiting", awaiting)


def collect(ws: Workspace) -> None:
    b = ws.as_of
    if ws.by in TIME_DIMENSIONS:
        for _key, size, *rest in _snapshot(ws, b, "NULL"):
            _add(ws, SNAPSHOT, size or 0, [v or 0 for v in rest[:-1]], rest[-1] or 0)
        _by_bucket(ws)
        return
    for key, size, *rest in _snapshot(ws, b, ws.key("k.created_at")):
        _add(ws, key, size or 0, [v or 0 for v in rest[:-1]], rest[-1] or 0)


def _jidx(ws: Workspace, expr: str) -> str:
    """Number of bucket ends <= expr (the first bucket end after expr)."""
    n = len(ws.buckets)
    return (f"(CASE WHEN {expr} < {ws.period.since} THEN 0 WHEN {expr} >= {ws.period.until} THEN {n} "
            f"ELSE {bucket_case(expr, ws.buckets)} END)")


def _by_bucket(ws: Workspace) -> None:
    n = len(ws.buckets)
    if not n:
        return
    size = [0] * (n + 1)
    awaiting = [0] * (n + 1)
    # One pass over the tickets, per (created, unsolved-until, awaiting-until) bucket index:
    # never reopened: unsolved during [c, s) or [c, now); js = -2 / -1 marks a reopened ticket unsolved /
    # solved now (replayed below); awaiting a first reply: [c, min(first reply, first solve)).
    for jc, js, je, count in ws.rows(f"""SELECT {_jidx(ws, 'k.created_at')} AS jc,
            CASE WHEN {REOPENED} THEN -1 - {UNSOLVED_NOW} WHEN {UNSOLVED_NOW} OR k.solved_at IS NULL THEN {n}
                 ELSE {_jidx(ws, 'k.solved_at - 1')} END AS js,
            CASE WHEN {AWAIT_END} IS NULL THEN {n} ELSE {_jidx(ws, AWAIT_END)} END AS je, COUNT(*)
            FROM _kpi_period_facts k GROUP BY jc, js, je"""):
        if js == -2:
            size[jc] += count
            size[n] -= count
        elif js > jc:
            size[jc] += count
            size[js] -= count
        if je > jc:
            awaiting[jc] += count
            awaiting[je] -= count
    # reopened tickets: current state minus the changes after each bucket end
    for jc, jt, _unsolved, delta in ws.rows(f"""SELECT {_jidx(ws, 'k.created_at')} AS jc,
            {_jidx(ws, 'x.changed_at')} AS jt, {UNSOLVED_NOW} AS un, SUM(x.unsolved_delta)
            FROM _kpi_period_facts k JOIN kpi_status_changes x ON x.ticket_rowid = k.ticket_rowid
            WHERE {REOPENED} GROUP BY jc, jt, un"""):
        if jt > jc:
            size[jc] -= delta
            size[jt] += delta
    running_size = running_await = 0
    for j, bucket in enumerate(ws.buckets):
        running_size += size[j]
        running_await += awaiting[j]
        young = [0, 0, 0]
        for _, _, *ages, _ in _snapshot(ws, bucket.end, "NULL", window=AGES[-1][1]):
            young = [v or 0 for v in ages]
        _add(ws, j, running_size, young, running_await)


def finalize(part: dict[str, Any], finish: Finish) -> dict[str, Any]:
    size = int(num(part, "bl_size"))
    cumulative = [int(num(part, f"bl_{name}")) for name, _ in AGES]  # age < 24h, < 48h, < 7d
    buckets = {"0_24h": cumulative[0], "24_48h": cumulative[1] - cumulative[0],
               "48h_7d": cumulative[2] - cumulative[1], "gt_7d": size - cumulative[2]}
    older = {"pct_gt_24h": size - cumulative[0], "pct_gt_48h": size - cumulative[1], "pct_gt_7d": size - cumulative[2]}
    age: dict[str, Any] = dict(buckets)
    for name, count in older.items():
        age[name] = None if not size else round(pct(count, size) or 0.0, 2)
    return {"backlog_size": size, "backlog_age": age, "tickets_awaiting_first_reply": int(num(part, "bl_awaiting"))}


FAMILY = Family("backlog", collect, finalize)
