"""The connector contract kit: one registry entry per helpdesk, and the harness every contract test runs on.

Why a registry: the guarantees in ``tests/test_contract.py`` (DESIGN.md's sync contract) are the same for
every helpdesk, so they are written once and parametrized over ``HELPDESKS``. A fourth helpdesk needs its
connector (with a module-level ``build_http(source, clock=, sleep=)``), its simulator (registered in
``sync/registry.py`` and ``sync/simulators.build_simulator``) and one ``Helpdesk(...)`` line here. The
defaults assume the simulator's conventional test hooks: ``touch(id)``, ``add_message(id, body)``,
``delete(id, spam=)`` and ``ground_truth()`` with ``messages`` and ``ratings`` counts over every world
message; a vendor that renders fewer messages, or lacks a hook, passes a small function instead (below).

Why a fake clock shared by the simulator and the HTTP client: retries, Retry-After waits and pacing call
the injected ``sleep``, which only moves the fake clock, so no test ever waits; and the simulators' own
"recent changes are not exported yet" windows (Zendesk's one-minute exclusion, Intercom's search lag
margin) are crossed by moving the clock, not by waiting.
"""

from __future__ import annotations

import functools
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.settings import Settings
from connectors.base import Connector
from connectors.sim.base import SimServer, Simulator, serve
from connectors.sim.freshdesk_render import conversations as freshdesk_conversations
from connectors.sim.model import Message, Ticket, World
from connectors.sim.world import generate_world
from sync.engine import PageHook, SourceReport, SyncEngine
from sync.registry import build_connector, plugin
from sync.simulators import build_simulator
from sync.store import TABLES, Store
from tests.fake_time import FakeTime as _FakeTime

NOW = 1_790_000_000  # the world's "now": fixed, so every run of the suite syncs the same history
START = NOW + 600  # the fake clock at the first sync (past Zendesk's one-minute export exclusion)
SETTLE_S = 900  # how far the clock moves before a follow-up run: past every vendor's lag/safety margin
SPEEDUP = 1000  # vendor rate limits scaled up: the suite tests correctness, pacing has its own tests
TIE_SIZE = 24  # tickets sharing one updated_at: more than two pages at the small page sizes below
CANARY = "dp-CANARY-7f3e9a1c-secret"  # a credential distinctive enough to grep for anywhere

# Data tables compared between runs; volatile columns (stamped with the run's clock) are left out.
DATA_TABLES = tuple(name for name in TABLES if name not in ("sync_state", "outbox"))
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


# -- per-vendor knowledge ---------------------------------------------------------------------------------
def _all_messages(sim: Any, t: Ticket) -> int:
    return len(t.messages)


def _freshdesk_messages(sim: Any, t: Ticket) -> int:
    """Description (from the listing's ``include=description``) + rendered conversations; the trash and spam
    listings carry no description and their conversations answer 404, so nothing is expected for them."""
    if t.deleted or t.spam or not t.messages:
        return 0
    return 1 + len(freshdesk_conversations(sim.world, t))


def _intercom_messages(sim: Any, t: Ticket) -> int:
    return sum(1 for m in t.messages if m.body.strip())


def _intercom_listed(t: Ticket) -> bool:
    """Intercom serves no deleted or spam conversation and publishes no tombstones; a merged-away one it
    serves closed, with a ``merged_secondary_conversation`` part (OAS 2.16 merge: "closed and linked")."""
    return not (t.deleted or t.spam)


def _sim_touch(sim: Any, tid: int) -> None:
    sim.touch(tid)


def _sim_add_message(sim: Any, tid: int, body: str) -> None:
    sim.add_message(tid, body)


def _intercom_add_message(sim: Any, tid: int, body: str) -> None:
    sim.touch(tid, body=body)


def _freshdesk_add_message(sim: Any, tid: int, body: str) -> None:
    """The Freshdesk simulator has no ``add_message`` hook: append to its world and bump the ticket."""
    with sim.lock:
        ticket = sim.world.ticket(tid)
        next_id = 1 + max(m.id for t in sim.world.tickets for m in t.messages)
        ticket.messages.append(Message(next_id, ticket.requester_id, "customer", True, body, int(sim.clock())))
    sim.touch(tid)


def _zendesk_delete(sim: Any, tid: int, spam: bool) -> None:
    """The Zendesk simulator has no ``delete`` hook: mark its world's ticket and touch it. A deleted (or
    spam) ticket stays in the incremental export with ``status: deleted``."""
    with sim.lock:
        ticket = sim.world.ticket(tid)
        ticket.spam, ticket.deleted = (True, ticket.deleted) if spam else (ticket.spam, True)
    sim.touch(tid)


def _sim_delete(sim: Any, tid: int, spam: bool) -> None:
    sim.delete(tid, spam=spam)


@dataclass(frozen=True)
class Helpdesk:
    """What the contract suite needs to know about one helpdesk.

    ``paging``/``connector_paging``: source settings and constructor options that force small pages, so
    every stream of the test world spans several pages. ``quiet_run``: the exact requests (``"METHOD
    /path"`` -> count) of an incremental run with nothing new, at production page sizes. ``people`` and
    ``organizations``: the simulator ground-truth keys whose sum a complete sync must hold. ``listed``:
    which world tickets the vendor's API serves at all. ``touch``/``add_message``/``delete`` make changes
    in the simulator (an edit at the simulator clock, a customer reply, a deletion or spam marking);
    ``delete`` is None when the vendor cannot expose deletions. ``known_gaps``: contract tests this
    connector fails today (run as strict xfails, so a fix shows up as an unexpected pass).
    """

    kind: str
    secret: str
    ticket_path: str
    paging: Mapping[str, Any]
    quiet_run: Mapping[str, int]
    people: tuple[str, ...]
    organizations: str
    connector_paging: Mapping[str, Any] = field(default_factory=dict)
    messages_of: Callable[[Any, Ticket], int] = _all_messages
    listed: Callable[[Ticket], bool] = lambda t: True
    touch: Callable[[Any, int], None] = _sim_touch
    add_message: Callable[[Any, int, str], None] = _sim_add_message
    delete: Callable[[Any, int, bool], None] | None = _sim_delete
    known_gaps: Mapping[str, str] = field(default_factory=dict)  # test name -> why it fails today (xfail strict)

    @property
    def exposes_deletions(self) -> bool:
        return self.delete is not None

    def __str__(self) -> str:
        return self.kind


# quiet_run, justified: Zendesk's exports answer end_of_stream on their first page and its two lists fit one
# page of 100, so one request per stream; Freshdesk likewise (lists fit one page of 100; tickets are three
# listings: default, trash, spam; no conversation is fetched when no ticket changed); Intercom one per stream,
# except companies, refreshed at most every companies_refresh_s (6 h), so a quiet run skips them.
_V2 = "/api/v2"
HELPDESKS: tuple[Helpdesk, ...] = (
    Helpdesk("zendesk", secret="api_token", ticket_path=f"{_V2}/incremental/tickets", paging={"per_page": 10},
             quiet_run={f"GET {_V2}/{p}": 1 for p in (
                 "ticket_fields.json", "groups.json", "incremental/organizations.json",
                 "incremental/users/cursor.json", "incremental/tickets/cursor.json",
                 "incremental/ticket_events.json", "satisfaction_ratings.json")},
             people=("people",), organizations="organizations", delete=_zendesk_delete),
    Helpdesk("freshdesk", secret="api_key", ticket_path=f"{_V2}/tickets", paging={},
             connector_paging={"per_page": 10},
             quiet_run={f"GET {_V2}/groups": 1, f"GET {_V2}/agents": 1, f"GET {_V2}/companies": 1,
                        f"GET {_V2}/contacts": 1, f"GET {_V2}/tickets": 3,  # tickets, trash, spam
                        f"GET {_V2}/surveys/satisfaction_ratings": 1, f"GET {_V2}/time_entries": 1},
             people=("contacts", "agents"), organizations="companies", messages_of=_freshdesk_messages,
             add_message=_freshdesk_add_message),
    Helpdesk("intercom", secret="access_token", ticket_path="/conversations", paging={"per_page": 10},
             quiet_run={"GET /admins": 1, "GET /teams": 1, "POST /contacts/search": 1,
                        "POST /conversations/search": 1},
             people=("contacts", "admins"), organizations="companies", messages_of=_intercom_messages,
             listed=_intercom_listed, add_message=_intercom_add_message, delete=None),
)


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
def _build_http(kind: str) -> Callable[..., Any]:
    return plugin(kind).load_http()


class Harness:
    """One helpdesk's simulator served on 127.0.0.1, a fake clock, and the real engine + connector."""

    def __init__(self, desk: Helpdesk, world: World, *, small_pages: bool = True) -> None:
        self.desk = desk
        self.fake = FakeTime()
        self.sim, source = build_simulator(desk.kind, world, speedup=SPEEDUP)  # deep-copies the world
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
        return Settings(sources=[{**self.source, **source_overrides}])

    def factory(self, source: Any, settings: Settings) -> Connector:
        http = _build_http(self.desk.kind)(source, clock=self.fake.clock, sleep=self.fake.sleep)
        options = dict(self.desk.connector_paging) if self.small_pages else {}
        connector = build_connector(source, settings, http=http, clock=self.fake.clock, **options)
        self.connectors.append(connector)
        return connector

    def run(self, db: Path, *, on_page: PageHook | None = None, full: bool = False,
            **source_overrides: Any) -> list[SourceReport]:
        """One ``deskpulse sync`` worth of work: a fresh engine (a new process) over the store file ``db``."""
        with Store(db) as store:
            engine = SyncEngine(store, self.settings(**source_overrides), connector_factory=self.factory,
                                clock=self.fake.clock, on_page=on_page)
            return engine.sync_all(full=full)

    def served(self) -> dict[str, int]:
        with self.sim.lock:
            return dict(self.sim.served)

    def close(self) -> None:
        # shutdown() waits for serve_forever's next 0.5 s poll: let that happen off the test's clock
        threading.Thread(target=self.server.stop, name="stop-sim", daemon=True).start()


@contextmanager
def harness(desk: Helpdesk, world: World | None = None, *, small_pages: bool = True) -> Iterator[Harness]:
    h = Harness(desk, world if world is not None else contract_world(), small_pages=small_pages)
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


def assert_ok(reports: list[SourceReport]) -> None:
    for report in reports:
        problems = [report.error] + [f"{s.stream}: {s.error}" for s in report.streams if s.error]
        assert report.ok, f"source {report.source} failed: {[p for p in problems if p]}"


# -- what a store holds --------------------------------------------------------------------------------------
def _portless(value: Any) -> Any:
    return _LOOPBACK.sub("127.0.0.1:PORT", value) if isinstance(value, str) else value


def dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every data table in primary-key order, volatile columns left out: equal dumps = equal stores.

    Vendor payloads (``raw``) embed links to the simulator, whose port differs between harnesses: the
    port is masked so two runs against two servers over the same world compare equal.
    """
    conn = sqlite3.connect(db)
    try:
        out = {}
        for table in DATA_TABLES:
            cols = [c for c in TABLES[table]["columns"] if c not in VOLATILE.get(table, ())]
            order = ", ".join(TABLES[table]["pk"])
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


def truth(desk: Helpdesk, sim: Simulator) -> Truth:
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

