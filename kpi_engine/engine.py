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

import logging
import sqlite3
import time
from collections.abc import Collection
from typing import Any

from config.settings import CostSettings, CustomerSettings, KpiSettings, SlaSettings
from kpi_engine import backlog, effort, fact_store, parallel, quality, volume
from kpi_engine.customers import CustomerMap, resolve
from kpi_engine.family import Finish
from kpi_engine.partials import Parts
from kpi_engine.periods import Period
from kpi_engine.registry import BY_NAME, FAMILIES, NAMES
from kpi_engine.shard import collect_parts
from kpi_engine.workspace import DIMENSIONS, NONE_KEY, TIME_DIMENSIONS, Workspace, list_sources

logger = logging.getLogger("deskpulse.kpi")


def _finalize(part: dict[str, Any], *, ws: Workspace, view: Period | None, month_part: dict[str, Any],
              history_start: int | None, cdi: dict[str, Any] | None,
              partial_before: dict[str, int] | None = None,
              names: tuple[str, ...] = NAMES) -> dict[str, Any]:
    finish = Finish(business=ws.business, costs=ws.costs, view=view, period=ws.period, month_part=month_part,
                    history_start=history_start, now=ws.now, partial_before=partial_before, cdi=cdi)
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
    if until <= since:
        raise ValueError("the period is empty: until must be after since")
    names, families = _selection(kpis)
    started = time.perf_counter()
    now = int(time.time()) if now is None else int(now)
    period = Period(int(since), int(until), kpi.timezone)
    sources = [source] if source else list_sources(conn)
    args: dict[str, Any] = {"kpi": kpi, "sla": sla, "costs": costs, "period": period, "sources": sources, "by": by,
                            "now": now, "source": source, "families": families,
                            "kpis": None if families is None else frozenset(names)}
    facts_at = fact_store.prepare(conn, kpi, now=now) if sources else fact_store.STORED
    try:
        # shard workers read the stored facts: only when they are current for every connection
        count = parallel.plan_shards(conn, sources, period, workers) if facts_at == fact_store.STORED else 1
        if count > 1 and parallel.database_file(conn) is not None:
            parts = parallel.run_sharded(conn, parallel.shard_bounds(conn, sources, count), **args)
        else:
            parts = collect_parts(conn, **args)
    finally:
        if facts_at == fact_store.TEMP:
            fact_store.drop_temp(conn)
    ws = Workspace(conn, kpi=kpi, sla=sla, costs=costs, period=period, sources=sources, by=by, now=now)
    history_start = None
    if sources:
        history_start = conn.execute(f"SELECT MIN(created_at) FROM tickets WHERE source IN {ws.src}").fetchone()[0]
    cdi = effort.cdi_bands(ws, source) if families is None or "distress" in families else None
    total = _total(parts, by)
    common: dict[str, Any] = {"ws": ws, "history_start": history_start, "names": names,
              "partial_before": volume.partial_history(conn, sources) if sources else None}
    result: dict[str, Any] = {
        "period": period.as_json(),
        "kpis": _finalize(total, view=period, month_part=total, cdi=cdi, **common),
    }
    if by == "organization":
        parts, labels = by_customer(conn, parts, customers)
        result["breakdown"] = [{**row, **labels.get(row["key"], {"name": row["key"], "sources": []})}
                               for row in _breakdown(ws, parts, total, common)]
    elif by is not None:
        result["breakdown"] = _breakdown(ws, parts, total, common)
    reason = None
    if "csat_pct" in names:
        reason = quality.csat_reason(quality.csat_unavailable(conn, sources, now), result["kpis"]["csat_pct"])
    if reason is not None:  # e.g. Zendesk on the newer CSAT: null with its reason, never a silent null or 0%
        result["reasons"] = {"csat_pct": reason}
    logger.debug("kpi catalog computed in %.2fs (by=%s, sources=%s, shards=%d)", time.perf_counter() - started, by,
                 sources, count)
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
