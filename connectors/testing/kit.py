"""The connector contract kit: what a helpdesk plugin declares for the contract, and the harness it runs on.

Why a kit: the guarantees of DESIGN.md's sync contract (resume after every page, overlap de-duplication,
deletions marked, quarantine, 429/5xx, write idempotency, no leaked secret) are the same for every helpdesk,
so they are written once (``connectors.testing.contract.ConnectorContract``) and any connector package runs
them against its own simulator. A plugin opts in by naming a :class:`ContractSpec` in its
``ConnectorPlugin(contract=...)``: the simulator's test hooks, the page sizes that make every stream span
several pages, and the exact requests of a run with nothing new.

The defaults assume the simulator's conventional test hooks: ``touch(id)``, ``add_message(id, body)``,
``delete(id, spam=)`` and ``ground_truth()`` with ``messages`` and ``ratings`` counts over every world
message; a vendor that renders fewer messages, or lacks a hook, passes a small function instead. The
simulator renders the vendor-neutral ``connectors.sim.model.World`` and derives from
``connectors.sim.base.Simulator`` (routing, ``inject(Fault)``, ``served``/``statuses`` counters, ``clock``).

Why a fake clock shared by the simulator and the HTTP client: retries, Retry-After waits and pacing call
the injected ``sleep``, which only moves the fake clock, so no test ever waits; and the simulators' own
"recent changes are not exported yet" windows (Zendesk's one-minute exclusion, Intercom's search lag
margin) are crossed by moving the clock, not by waiting.

The cases drive the real sync engine and store: the contract is about the pair. ``connectors`` never
imports ``sync`` (DESIGN.md's layers), so the engine comes in as an :class:`EngineRunner`: the pytest plugin
``deskpulse_contract`` (``sync/testing.py``, entry point group ``pytest11``) provides it as the fixture
``deskpulse_engine``; outside pytest, pass ``sync.testing.EngineRunner()``.
"""

from __future__ import annotations

import copy
import functools
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from config.settings import Settings, use_severity_defaults, use_source_models
from connectors.base import Connector
from connectors.plugin import ConnectorPlugin, installed, severity_defaults
from connectors.sim.base import SimServer, Simulator, serve
from connectors.sim.model import Ticket, World
from connectors.sim.world import generate_world
from connectors.testing.clock import FakeTime as _FakeTime

NOW = 1_790_000_000  # the world's "now": fixed, so every run of the suite syncs the same history
START = NOW + 600  # the fake clock at the first sync (past Zendesk's one-minute export exclusion)
SETTLE_S = 900  # how far the clock moves before a follow-up run: past every vendor's lag/safety margin
SPEEDUP = 1000  # vendor rate limits scaled up: the suite tests correctness, pacing has its own tests
TIE_SIZE = 24  # tickets sharing one updated_at: more than two pages at the small page sizes below
CANARY = "dp-CANARY-7f3e9a1c-secret"  # a credential distinctive enough to grep for anywhere

# Data tables compared between runs; volatile columns (stamped with the run's clock) are left out.
NOT_DATA = ("sync_state", "outbox")
VOLATILE = {"tickets": {"synced_at"}, "quarantine": {"created_at"}}
_LOOPBACK = re.compile(r"127\.0\.0\.1:\d+")


class Crash(BaseException):
    """The process dying right after a commit: a BaseException, so nothing in the engine may swallow it."""


class FakeTime(_FakeTime):
    """The shared fake clock; ``advance()`` defaults to the settle time the contract tests use."""

    def __init__(self, now: float = START) -> None:
        super().__init__(now)

    def advance(self, seconds: float = SETTLE_S) -> None:
        super().advance(seconds)


# -- the simulator's conventional test hooks ------------------------------------------------------------------
def all_messages(sim: Any, t: Ticket) -> int:
    """Every world message of the ticket is rendered (the default ``messages_of``)."""
    return len(t.messages)


def sim_touch(sim: Any, tid: int) -> None:
    sim.touch(tid)


def sim_add_message(sim: Any, tid: int, body: str) -> None:
    sim.add_message(tid, body)


def sim_delete(sim: Any, tid: int, spam: bool) -> None:
    sim.delete(tid, spam=spam)


@dataclass(frozen=True)
class ContractSpec:
    """What the contract suite needs to know about one helpdesk (named by its plugin's ``contract``).

    ``secret``: the source setting holding the credential (the leak test sets it to a canary).
    ``ticket_path``: the path prefix of the ticket listing (faults are injected there).
    ``paging``/``connector_paging``: source settings and constructor options that force small pages, so
    every stream of the test world spans several pages. ``quiet_run``: the exact requests (``"METHOD
    /path"`` -> count) of an incremental run with nothing new, at production page sizes. ``people`` and
    ``organizations``: the simulator ground-truth keys whose sum a complete sync must hold. ``listed``:
    which world tickets the vendor's API serves at all. ``touch``/``add_message``/``delete`` make changes
    in the simulator (an edit at the simulator clock, a customer reply, a deletion or spam marking);
    ``delete`` is None when the vendor cannot expose deletions. ``known_gaps``: contract tests this
    connector fails today (run as strict xfails, so a fix shows up as an unexpected pass).
    ``write_tag``: the tag the write-idempotency test adds twice (plugins that support write-back).
    """

    kind: str
    secret: str
    ticket_path: str
    paging: Mapping[str, Any]
    quiet_run: Mapping[str, int]
    people: tuple[str, ...]
    organizations: str
    connector_paging: Mapping[str, Any] = field(default_factory=dict)
    messages_of: Callable[[Any, Ticket], int] = all_messages
    listed: Callable[[Ticket], bool] = lambda t: True
    touch: Callable[[Any, int], None] = sim_touch
    add_message: Callable[[Any, int, str], None] = sim_add_message
    delete: Callable[[Any, int, bool], None] | None = sim_delete
    known_gaps: Mapping[str, str] = field(default_factory=dict)  # test name -> why it fails today (xfail strict)
    write_tag: str = "dp_contract"

    @property
    def exposes_deletions(self) -> bool:
        return self.delete is not None

    @property
    def plugin(self) -> ConnectorPlugin:
        """The installed plugin of this kind (the harness builds connector and simulator through it)."""
        found = installed().get(self.kind)
        if found is None:
            raise LookupError(f"no installed connector plugin of kind '{self.kind}' "
                              f"(installed: {', '.join(installed()) or 'none'})")
        return found

    def __str__(self) -> str:
        return self.kind


def contract_specs() -> list[ContractSpec]:
    """The contract specs of every installed plugin that declares one, by kind."""
    specs = []
    for plugin in installed().values():
        spec = plugin.load_contract()
        if spec is not None:
            if not isinstance(spec, ContractSpec) or spec.kind != plugin.kind:
                raise TypeError(f"plugin '{plugin.kind}': contract must be a ContractSpec of that kind")
            specs.append(spec)
    return specs


def contract_spec(kind: str) -> ContractSpec:
    """The contract spec the installed plugin ``kind`` declares."""
    for spec in contract_specs():
        if spec.kind == kind:
            return spec
    raise LookupError(f"no installed connector plugin of kind '{kind}' declares a contract spec")


# -- the test world -----------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def contract_world(tickets: int = 60, seed: int = 11) -> World:
    """A small generated history with a deleted and a spam ticket and ``TIE_SIZE`` tickets sharing one
    ``updated_at`` (so the tie straddles page boundaries). Cached: simulators deep-copy it."""
    world = generate_world(seed=seed, tickets=tickets, now=NOW, days=90)
    tie_at = NOW - 2 * 86400

    def settled(t: Ticket) -> bool:
        last = max([t.updated_at, t.solved_at or 0, t.rating.created_at if t.rating else 0]
                   + [m.created_at for m in t.messages] + [c.at for c in t.changes])
        return last < tie_at and not (t.deleted or t.spam or t.merged_into)

    # Zendesk re-stamps every 31st ticket's generated_timestamp (a later system update): leave those out.
    candidates = [t for t in world.tickets if settled(t) and t.id % 31]
    for t in candidates[-TIE_SIZE:]:
        t.updated_at = tie_at
    plain = [t for t in candidates[:-TIE_SIZE] if t.messages]
    if not any(t.deleted for t in world.tickets):
        plain.pop(0).deleted = True
    if not any(t.spam for t in world.tickets):
        plain.pop(0).spam = True
    return world


def tie_ids(world: World) -> set[str]:
    return {str(t.id) for t in world.tickets if t.updated_at == NOW - 2 * 86400}


# -- running the real engine against a simulator on loopback ------------------------------------------------
PageHook = Callable[[str, str, Any, int], None]  # (source, stream, page, rows): called after each commit


class EngineRunner(Protocol):
    """The sync engine and store, as the kit sees them (``sync.testing.EngineRunner`` implements it).

    ``tables``: the store schema, table -> ``{"columns": {...}, "pk": (...)}``. ``sync``: one ``deskpulse
    sync`` over the store file ``db``: a fresh engine whose connectors come from ``connector_factory``,
    returning the per-source reports (``.ok``, ``.error``, ``.streams``, ``.requests``, ``.source``).
    """

    tables: Mapping[str, Mapping[str, Any]]

    def sync(self, db: Path, settings: Settings, *, connector_factory: Callable[[Any, Settings], Connector],
             clock: Callable[[], float], on_page: PageHook | None = None, full: bool = False) -> list[Any]: ...


class Harness:
    """One helpdesk's simulator served on 127.0.0.1, a fake clock, and the real engine + connector."""

    def __init__(self, desk: ContractSpec, world: World, runner: EngineRunner, *, small_pages: bool = True) -> None:
        self.desk = desk
        self.runner = runner
        self.fake = FakeTime()
        # Settings validates [[sources]] against the installed plugins' models (as sync hands them to config)
        use_source_models({kind: plugin.settings for kind, plugin in installed().items()})
        use_severity_defaults(severity_defaults(installed()))  # and their priority -> severity maps
        self.plugin = desk.plugin
        self.sim, source = self.plugin.build_simulator(copy.deepcopy(world), speedup=SPEEDUP)
        self.sim.clock = self.fake.clock
        self.server: SimServer = serve(self.sim)
        self.small_pages = small_pages
        self.source: dict[str, Any] = {"name": f"contract-{desk.kind}", **source, "base_url": self.server.url,
                                       **(desk.paging if small_pages else {})}
        self.connectors: list[Connector] = []

    @property
    def name(self) -> str:
        return self.source["name"]

    def settings(self, **source_overrides: Any) -> Settings:
        return Settings.model_validate({"sources": [{**self.source, **source_overrides}]})

    def factory(self, source: Any, settings: Settings) -> Connector:
        http = self.plugin.load_http()(source, clock=self.fake.clock, sleep=self.fake.sleep)
        options = dict(self.desk.connector_paging) if self.small_pages else {}
        connector = self.plugin.build_connector(source, value_field=settings.distress.value_field, http=http,
                                                clock=self.fake.clock, **options)
        self.connectors.append(connector)
        return connector

    def run(self, db: Path, *, on_page: PageHook | None = None, full: bool = False,
            source: Mapping[str, Any] | None = None, **source_overrides: Any) -> list[Any]:
        """One ``deskpulse sync`` worth of work: a fresh engine (a new process) over the store file ``db``;
        ``source``/``source_overrides`` change settings of the source for this run."""
        settings = self.settings(**{**(source or {}), **source_overrides})
        return self.runner.sync(db, settings, connector_factory=self.factory,
                                clock=self.fake.clock, on_page=on_page, full=full)

    def dump(self, db: Path) -> dict[str, list[tuple[Any, ...]]]:
        return dump(db, self.runner.tables)

    def served(self) -> dict[str, int]:
        with self.sim.lock:
            return dict(self.sim.served)

    def close(self) -> None:
        # shutdown() waits for serve_forever's next 0.5 s poll: let that happen off the test's clock
        threading.Thread(target=self.server.stop, name="stop-sim", daemon=True).start()


@contextmanager
def harness(desk: ContractSpec, runner: EngineRunner, world: World | None = None, *,
            small_pages: bool = True) -> Iterator[Harness]:
    h = Harness(desk, world if world is not None else contract_world(), runner, small_pages=small_pages)
    try:
        yield h
    finally:
        h.close()


def crash_after(pages: int) -> PageHook:
    """An ``on_page`` hook that kills the run right after its ``pages``-th committed page."""
    seen = {"n": 0}

    def hook(source: str, stream: str, page: Any, rows: int) -> None:
        seen["n"] += 1
        if seen["n"] >= pages:
            raise Crash(f"crash after page {seen['n']} ({stream})")

    return hook


def assert_ok(reports: list[Any]) -> None:
    for report in reports:
        problems = [report.error] + [f"{s.stream}: {s.error}" for s in report.streams if s.error]
        assert report.ok, f"source {report.source} failed: {[p for p in problems if p]}"


# -- what a store holds --------------------------------------------------------------------------------------
def _portless(value: Any) -> Any:
    return _LOOPBACK.sub("127.0.0.1:PORT", value) if isinstance(value, str) else value


def dump(db: Path, tables: Mapping[str, Mapping[str, Any]]) -> dict[str, list[tuple[Any, ...]]]:
    """Every data table in primary-key order, volatile columns left out: equal dumps = equal stores.

    Vendor payloads (``raw``) embed links to the simulator, whose port differs between harnesses: the
    port is masked so two runs against two servers over the same world compare equal.
    """
    conn = sqlite3.connect(db)
    try:
        out = {}
        for table in (name for name in tables if name not in NOT_DATA):
            cols = [c for c in tables[table]["columns"] if c not in VOLATILE.get(table, ())]
            order = ", ".join(tables[table]["pk"])
            rows = conn.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY {order}").fetchall()
            out[table] = [tuple(_portless(v) for v in row) for row in rows]
        return out
    finally:
        conn.close()


def diff(before: dict[str, list[tuple[Any, ...]]], after: dict[str, list[tuple[Any, ...]]]
         ) -> dict[str, set[tuple[Any, ...]]]:
    """Per table, the rows of ``after`` that are new or changed (rows compared whole)."""
    return {table: set(after[table]) - set(before[table]) for table in after if set(after[table]) - set(before[table])}


def query(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


@dataclass
class Truth:
    """What a complete sync of a simulator must have stored."""

    tickets: dict[str, bool]  # id -> is deleted/spam
    messages: dict[str, int]  # ticket id -> message count (zeros left out)
    updated_at: dict[str, int]
    people: int
    organizations: int
    ratings: int


def truth(desk: ContractSpec, sim: Simulator) -> Truth:
    world: World = sim.world  # type: ignore[attr-defined]
    with sim.lock:
        listed = [t for t in world.tickets if desk.listed(t)]
        counts = sim.ground_truth()  # type: ignore[attr-defined]
        messages = {str(t.id): desk.messages_of(sim, t) for t in listed}
        assert sum(messages.values()) == counts["messages"], "the kit's message rule disagrees with the simulator"
        return Truth(
            tickets={str(t.id): t.deleted or t.spam for t in listed},
            messages={k: v for k, v in messages.items() if v},
            updated_at={str(t.id): t.updated_at for t in listed},
            people=sum(counts[k] for k in desk.people),
            organizations=counts[desk.organizations],
            ratings=counts["ratings"],
        )


def stored(db: Path, source: str) -> Truth:
    tickets = query(db, "SELECT id, status, updated_at FROM tickets WHERE source=?", (source,))
    messages = query(db, "SELECT ticket_id, count(*) FROM messages WHERE source=? GROUP BY ticket_id", (source,))

    def count(table: str) -> int:
        return query(db, f"SELECT count(*) FROM {table} WHERE source=?", (source,))[0][0]

    return Truth(tickets={i: s == "deleted" for i, s, _ in tickets}, messages=dict(messages),
                 updated_at={i: u for i, _, u in tickets}, people=count("people"),
                 organizations=count("organizations"), ratings=count("ratings"))

