"""The KPI engine's layout (issue 12, item 4): no import cycle inside kpi_engine (the engine and its parallel
runner share kpi_engine.shard), every KPI computed by the one family its catalog entry names, and the stored
facts' columns declared once."""

from __future__ import annotations

import hashlib
from datetime import date

import grimp
import pytest

from config.settings import CostSettings
from kpi_engine import fact_store, schema
from kpi_engine.family import Finish
from kpi_engine.periods import Period
from kpi_engine.registry import CATALOG, FAMILIES
from sync.store import MIGRATIONS, Store

#: what each shipped kpi_engine step adds to a store's schema (sqlite_master rows it creates or replaces), as
#: the code that shipped it left it: v2-v4 were checked equal to the migrations before they moved to
#: kpi_engine/schema.py (v2 ran through sqlite-utils then)
SHIPPED = {
    2: "8024f2a039cbbf133bc00c060eb2bb866d51eb911d28ee1017d583eee79e6f96",
    3: "7df3104602cd196dea2232821349016a10b6eafd0554dd45ed595a657db437dd",
    4: "1f670a3975378148437113f2bd3226dffe02ed0649265bf10d831359f4113040",
    5: "f275f1a159514637229202ef5e7088f4ab63704dc430e59ac29fe1c7bbce0b35",
}


def _cycles(package: str) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), over every import, lazy ones included."""
    graph = grimp.build_graph(package)
    modules = sorted(graph.modules)
    edges = {m: sorted(i for i in graph.find_modules_directly_imported_by(m) if i.startswith(package)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for module in modules:
        if module not in index:
            visit(module)
    return out


def test_kpi_engine_has_no_import_cycle() -> None:
    assert _cycles("kpi_engine") == []


def test_the_parallel_runner_never_imports_the_engine() -> None:
    graph = grimp.build_graph("kpi_engine")
    assert not graph.chain_exists(importer="kpi_engine.parallel", imported="kpi_engine.engine")
    assert graph.direct_import_exists(importer="kpi_engine.parallel", imported="kpi_engine.shard")
    assert graph.direct_import_exists(importer="kpi_engine.engine", imported="kpi_engine.shard")


def test_every_kpi_is_finalized_by_the_family_its_catalog_entry_names() -> None:
    """Adding a KPI = its catalog entry + its family module: the entry's ``family`` is the module that
    computes it, and no other family returns it."""
    names = [family.name for family in FAMILIES]
    assert len(names) == len(set(names))
    assert set(names) == {kpi.family for kpi in CATALOG}
    period = Period.from_dates(date(2026, 3, 1), date(2026, 4, 1), "Europe/Berlin")
    finish = Finish(business=True, costs=CostSettings(monthly_total=1000), view=period, period=period, month_part={},
                    history_start=period.since, now=period.until)
    for family in FAMILIES:
        declared = {kpi.name for kpi in CATALOG if kpi.family == family.name}
        assert set(family.finalize({}, finish)) == declared, family.name


@pytest.mark.parametrize("table", sorted(schema.FACTS_TABLES))
def test_the_facts_columns_explain_themselves(table: str) -> None:
    """No one- and two-letter columns (``c, sa, s, bc, bs, org, asg``...) in the stored facts."""
    short = [c for c in schema.FACTS_TABLES[table] if (len(c) <= 4 and c != "id") or c in ("chan", "vsla")]
    assert short == []
    if table == "kpi_facts":
        assert tuple(fact_store.FACT_VALUES) == schema.FACTS_TABLES[table]


def test_shipped_migrations_are_never_edited() -> None:
    """Stores already ran them: a change of schema is a new step appended to kpi_engine.schema.MIGRATIONS
    and listed in sync/store.py MIGRATIONS, never an edit of a shipped one."""
    store = Store(":memory:", migrate=False)
    before: set[tuple[str, str, str, str | None]] = set()
    for version, step in enumerate(MIGRATIONS, start=1):
        with store.transaction():
            step(store.db)
            store.conn.execute(f"PRAGMA user_version = {version}")
        rows = set(store.conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall())
        added = sorted(rows - before, key=repr)
        before = rows
        if version in SHIPPED:
            assert hashlib.sha256(repr(added).encode()).hexdigest() == SHIPPED[version], f"v{version} was edited"
    assert set(SHIPPED) <= set(range(1, len(MIGRATIONS) + 1))
    # every kpi_engine step is in the store's list, in order
    listed = [m.__name__ for m in MIGRATIONS]
    at = [listed.index(step.name) for step in schema.MIGRATIONS]
    assert at == sorted(at)
