"""``compute()``: the whole KPI catalog for one period, optionally broken down by a dimension.

Flow: bring the stored per-ticket facts up to date (:mod:`kpi_engine.fact_store`: only
tickets changed since the last computation are recomputed), let every family collect
mergeable partials per breakdown key from them (:mod:`kpi_engine.shard`, in this process or
sharded over workers by :mod:`kpi_engine.parallel`), then finalize each key's partial (and
the merge of all keys for the overall figures) into KPI values in catalog order, each family
its own (:data:`kpi_engine.registry.FAMILIES`). Synced data is only read; TEMP views and tables
are dropped before returning.
"""

from __future__ import annotations

import functools
import json
import logging
import sqlite3
import time
from collections.abc import Collection, Sequence
from typing import Any

from config.settings import CostSettings, CustomerSettings, KpiSettings, SlaSettings
from kpi_engine import backlog, effort, fact_store, parallel, quality, volume
from kpi_engine.customers import CustomerMap, resolve
from kpi_engine.family import Finish
from kpi_engine.partials import Parts
from kpi_engine.periods import Period
from kpi_engine.registry import BY_NAME, FAMILIES, NAMES
from kpi_engine.shard import collect_parts
from kpi_engine.workspace import (
    COMBINED,
    DIMENSIONS,
    NONE_KEY,
    TABLE_DIMENSIONS,
    TIME_DIMENSIONS,
    Workspace,
    list_sources,
)

logger = logging.getLogger("deskpulse.kpi")


def _finalize(part: dict[str, Any], *, ws: Workspace, view: Period | None, month_part: dict[str, Any],
              history_start: int | None, cdi: dict[str, Any] | None,
              partial_before: dict[str, int] | None = None,
              names: tuple[str, ...] = NAMES) -> dict[str, Any]:
    finish = Finish(business=ws.business, costs=ws.costs, view=view, period=ws.period, month_part=month_part,
                    history_start=history_start, now=ws.now, partial_before=partial_before, cdi=cdi,
                    kpis=None if names is NAMES else frozenset(names))
    wanted = {BY_NAME[name].family for name in names}
    values: dict[str, Any] = {}
    strays: list[str] = []
    for family in FAMILIES:
        if family.name not in wanted:
            continue
        for name, value in family.finalize(part, finish).items():
            entry = BY_NAME.get(name)
            if entry is None or entry.family != family.name:
                strays.append(f"{name} ({family.name})")
            values[name] = value
    missing = set(names) - set(values)
    if missing or strays:  # pragma: no cover - guarded by tests; a family and the registry disagree
        raise RuntimeError(f"KPI catalog mismatch: missing {sorted(missing)}, not in the catalog under that "
                           f"family: {sorted(strays)}")
    return {name: values[name] for name in names}


def _selection(kpis: Collection[str] | None) -> tuple[tuple[str, ...], frozenset[str] | None]:
    """The KPI names to return, in catalog order, and the families that measure them (None: every one)."""
    if kpis is None:
        return NAMES, None
    unknown = sorted(set(kpis) - set(BY_NAME))
    if unknown:
        raise ValueError(f"unknown KPI {', '.join(unknown)} (deskpulse kpi --list names them)")
    names = tuple(name for name in NAMES if name in set(kpis))
    return names, frozenset(BY_NAME[name].family for name in names)


def _total(parts: Parts, by: str | None) -> dict[str, Any]:
    if by not in TIME_DIMENSIONS:
        return parts.total()
    snapshot = parts.by_key.get(backlog.SNAPSHOT, {})
    merged = Parts()
    for key, part in parts.by_key.items():
        if key == backlog.SNAPSHOT:
            continue
        for name, value in part.items():
            if not name.startswith(backlog.PREFIX):
                merged.add(key, name, value)
    out = merged.total()
    out.update(snapshot)
    return out


def compute(conn: sqlite3.Connection, *, kpi: KpiSettings, sla: SlaSettings, costs: CostSettings,
            since: int, until: int, source: str | None = None, by: str | None = None,
            now: int | None = None, workers: int | None = None,
            customers: CustomerSettings | CustomerMap | None = None,
            kpis: Collection[str] | None = None) -> dict[str, Any]:
    """The KPI catalog over [since, until) (epochs), optionally for one source and broken down ``by``.

    Returns ``{"period": {...}, "kpis": {NAME: value}}`` plus ``"breakdown": [{"key", "kpis"}]`` when
    ``by`` is given, and ``"reasons": {NAME: text}`` for a KPI the helpdesk API cannot serve (CSAT).
    Empty denominators give None. Raises ValueError for a bad period or dimension.
    ``workers``: shards in separate processes (default: automatic for large periods on a file database).
    ``--by organization`` rows are customers (``customers``: ``[customers]``, None = its defaults): a
    customer on several helpdesks is one row, keyed like its CDI account, with its ``name`` and ``sources``.
    ``kpis``: only these KPIs, in catalog order (None: the whole catalog). Only the families that measure them
    run, and a family may skip a pass only unasked KPIs need, so a view that shows two KPIs per row (the
    report's SLA chart) does not pay for forty; each value equals the full run's. A breakdown then
    lists the keys those families measured something for: a key only another family saw (an agent with
    backlog but no activity, for ``tickets_created``) is left out rather than shown empty.
    """
    if by is not None and by not in DIMENSIONS:
        raise ValueError(f"unknown breakdown '{by}' (use one of: {', '.join(DIMENSIONS)})")
    run = _Run(conn, kpi=kpi, sla=sla, costs=costs, since=since, until=until, source=source, by=by, now=now,
               workers=workers, kpis=kpis)
    result = run.result()
    if by == "organization":
        parts, labels = by_customer(conn, run.parts, customers)
        result["breakdown"] = [{**row, **labels.get(row["key"], {"name": row["key"], "sources": []})}
                               for row in _breakdown(run.ws, parts, run.total, run.common)]
    elif by is not None:
        result["breakdown"] = _breakdown(run.ws, run.parts, run.total, run.common)
    return result


def compute_tables(conn: sqlite3.Connection, *, dims: Sequence[str], kpi: KpiSettings, sla: SlaSettings,
                   costs: CostSettings, since: int, until: int, source: str | None = None, now: int | None = None,
                   workers: int | None = None, kpis: Collection[str] | None = None) -> dict[str, dict[str, Any]]:
    """``compute(by=dim)`` for each of several ticket dimensions (agent, group, channel, source, priority),
    from one pass: each family's partials are keyed by all of them at once (the values as a JSON array,
    a few hundred combinations), then merged per dimension. Merging partials is exact (the engine's shards
    and totals rely on it), so each result equals its own ``compute`` call; the report's three tables cost
    one pass instead of three.
    """
    dims = list(dims)
    bad = [d for d in dims if d not in TABLE_DIMENSIONS]
    if bad or len(set(dims)) != len(dims) or len(dims) < 2:
        raise ValueError(f"compute_tables needs two or more of {', '.join(TABLE_DIMENSIONS)}, got {dims}")
    run = _Run(conn, kpi=kpi, sla=sla, costs=costs, since=since, until=until, source=source, by=COMBINED.join(dims),
               now=now, workers=workers, kpis=kpis)
    base = run.result()
    values = {key: json.loads(key) for key in run.parts.by_key}  # a combined key is a JSON array (Workspace.dim_sql)
    out: dict[str, dict[str, Any]] = {}
    for i, dim in enumerate(dims):
        parts = run.parts.regrouped(functools.partial(_component, values, i))
        out[dim] = {**base, "kpis": dict(base["kpis"]), "breakdown": _breakdown(run.ws, parts, run.total, run.common)}
    return out


def _component(values: dict[Any, list[Any]], index: int, key: Any) -> Any:
    """One dimension's value of a combined breakdown key, from its parsed JSON array."""
    return values[key][index]


class _Run:
    """One computation's partials (collected in this process or sharded), its totals and what finalizing
    needs; :meth:`result` is its overall figures, the breakdowns are left to the caller."""

    def __init__(self, conn: sqlite3.Connection, *, kpi: KpiSettings, sla: SlaSettings, costs: CostSettings,
                 since: int, until: int, source: str | None, by: str | None, now: int | None, workers: int | None,
                 kpis: Collection[str] | None) -> None:
        if until <= since:
            raise ValueError("the period is empty: until must be after since")
        self.names, families = _selection(kpis)
        self.started = time.perf_counter()
        self.conn, self.by, self.source = conn, by, source
        self.now = now = int(time.time()) if now is None else int(now)
        self.period = period = Period(int(since), int(until), kpi.timezone)
        self.sources = sources = [source] if source else list_sources(conn)
        args: dict[str, Any] = {"kpi": kpi, "sla": sla, "costs": costs, "period": period, "sources": sources,
                                "by": by, "now": now, "source": source, "families": families,
                                "kpis": None if families is None else frozenset(self.names)}
        facts_at = fact_store.prepare(conn, kpi, now=now) if sources else fact_store.STORED
        try:
            # shard workers read the stored facts: only when they are current for every connection
            self.shards = parallel.plan_shards(conn, sources, period, workers) if facts_at == fact_store.STORED else 1
            if self.shards > 1 and parallel.database_file(conn) is not None:
                self.parts = parallel.run_sharded(conn, parallel.shard_bounds(conn, sources, self.shards), **args)
            else:
                self.parts = collect_parts(conn, **args)
        finally:
            if facts_at == fact_store.TEMP:
                fact_store.drop_temp(conn)
        self.ws = ws = Workspace(conn, kpi=kpi, sla=sla, costs=costs, period=period, sources=sources, by=by, now=now)
        history_start = None
        if sources:
            history_start = conn.execute(f"SELECT MIN(created_at) FROM tickets WHERE source IN {ws.src}").fetchone()[0]
        self.cdi = effort.cdi_bands(ws, source) if families is None or "distress" in families else None
        self.total = _total(self.parts, by)
        self.common: dict[str, Any] = {"ws": ws, "history_start": history_start, "names": self.names,
                                       "partial_before": volume.partial_history(conn, sources) if sources else None}

    def result(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "period": self.period.as_json(),
            "kpis": _finalize(self.total, view=self.period, month_part=self.total, cdi=self.cdi, **self.common),
        }
        reason = None
        if "csat_pct" in self.names:
            reason = quality.csat_reason(quality.csat_unavailable(self.conn, self.sources, self.now),
                                         result["kpis"]["csat_pct"])
        if reason is not None:  # e.g. Zendesk on the newer CSAT: null with its reason, never a silent null or 0%
            result["reasons"] = {"csat_pct": reason}
        logger.debug("kpi catalog computed in %.2fs (by=%s, sources=%s, shards=%d)",
                     time.perf_counter() - self.started, self.by, self.sources, self.shards)
        return result


def by_customer(conn: sqlite3.Connection, parts: Parts, customers: CustomerSettings | CustomerMap | None,
                ) -> tuple[Parts, dict[str, dict[str, Any]]]:
    """Organization partials (keyed ``source:org:id``) merged per customer, and each row's name and sources.

    Merging partials is exact (counts add, percentile lists are selected across), so a customer's row is
    what its pooled tickets would give, and the rows still partition the totals.
    """
    cmap = customers if isinstance(customers, CustomerMap) else resolve(conn, customers)
    names = {f"{s}:org:{i}": n for s, i, n in conn.execute("SELECT source, id, name FROM organizations")}
    merged = Parts()
    labels: dict[str, dict[str, Any]] = {}
    for key, part in parts.by_key.items():
        if key is None or key == NONE_KEY:
            target = key
        else:
            source, _, org = str(key).partition(":org:")
            target = cmap.account(source, "org", org)
            customer = cmap.customer(target)
            label = labels.setdefault(target, {"name": customer.name if customer else None, "sources": []})
            label["name"] = label["name"] or names.get(str(key)) or org
            label["sources"] = sorted({*label["sources"], source})
        for name, value in part.items():
            merged.add(target, name, value)
    return merged, labels


def _breakdown(ws: Workspace, parts: Parts, total: dict[str, Any], common: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if ws.by in TIME_DIMENSIONS:
        for j, bucket in enumerate(ws.buckets):
            view = Period(bucket.start, bucket.end, ws.period.timezone)
            part = parts.by_key.get(j, {})
            rows.append({"key": bucket.label,
                         "kpis": _finalize(part, view=view, month_part=total, cdi=None, **common)})
        return rows
    keys = [k for k in parts.by_key if k is not None]
    for key in sorted(keys, key=lambda k: (str(k) == NONE_KEY, str(k))):
        part = parts.by_key[key]
        rows.append({"key": str(key), "kpis": _finalize(part, view=None, month_part=part, cdi=None, **common)})
    return rows
