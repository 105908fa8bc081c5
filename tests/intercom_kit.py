"""Helpers shared by the Intercom tests: a hand-built world, a fake clock, the simulator mounted on
``responses``, and a tiny page-committing driver that behaves like the sync engine (rows + cursor per page)."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

import responses

from connectors.base import Page
from connectors.intercom import IntercomConnector, build_http
from connectors.intercom.settings import IntercomSource
from connectors.sim.base import responses_callback
from connectors.sim.intercom import IntercomSim
from connectors.sim.model import Change, Group, Message, Org, Person, Rating, Ticket, World
from sync.store import Store
from tests.fake_time import FakeTime as _FakeTime

BASE = "https://api.intercom.io"
TOKEN = "ic-secret-token-5a4b3c2d1e"
SOURCE = "acme-ic"
T0 = 1_719_000_000  # world history happens around here
NOW = T0 + 30 * 86400  # the clock during tests: long after the history

AGENT_A, AGENT_B, BOT = 11, 12, 19
ALICE, BOB, LEAD = 21, 22, 23
ORG_X, ORG_Y = 31, 32
TEAM_1, TEAM_2 = 41, 42


class FakeTime(_FakeTime):
    """The shared fake clock, starting at this kit's NOW."""

    def __init__(self, now: float = NOW) -> None:
        super().__init__(now)


def make_source(**overrides: Any) -> IntercomSource:
    values: dict[str, Any] = {"kind": "intercom", "name": SOURCE, "base_url": BASE, "access_token": TOKEN,
                              "admin_id": str(AGENT_A), "max_retries": 3}
    values.update(overrides)
    return IntercomSource(**values)


def _msg(mid: int, author: int, role: str, at: int, body: str, public: bool = True) -> Message:
    return Message(mid, author, role, public, body, at)


def small_world() -> World:
    """Six conversations covering the mapping cases; one deleted, one spam (both invisible to Intercom)."""
    w = World(seed=0, now=T0 + 10 * 86400)
    w.orgs = [Org(ORG_X, "Xylo Ltd", "xylo.example", T0 - 400 * 86400, 120000.0, updated_at=T0 - 5),
              Org(ORG_Y, "Yonder Inc", "yonder.example", T0 - 90 * 86400, 5000.0, updated_at=T0 - 4)]
    w.people = [
        Person(AGENT_A, "Ann Agent", "ann@help.example", "agent", None, T0 - 900 * 86400, T0 - 900 * 86400),
        Person(AGENT_B, "Ben Agent", "ben@help.example", "agent", None, T0 - 800 * 86400, T0 - 800 * 86400),
        Person(BOT, "Support Bot", "bot@helpdesk.example", "agent", None, T0 - 999 * 86400, T0 - 999 * 86400),
        Person(ALICE, "Alice Doe", "alice@xylo.example", "customer", ORG_X, T0 - 300 * 86400, T0 - 3),
        Person(BOB, "Bob Roe", "bob@yonder.example", "customer", ORG_Y, T0 - 80 * 86400, T0 - 2),
        Person(LEAD, "Lee Lead", "lee@mail.example", "customer", None, T0 - 10 * 86400, T0 - 1),
    ]
    w.groups = [Group(TEAM_1, "Support"), Group(TEAM_2, "Tier 2", escalation=True)]
    h = 3600
    t1 = Ticket(101, "Cannot log in", ALICE, ORG_X, AGENT_A, TEAM_1, "email", "urgent", "closed", T0, T0 + 5 * h,
                solved_at=T0 + 4 * h, tags=["login"], custom_fields={"product_area": "login"},
                messages=[_msg(1001, ALICE, "customer", T0, "I can't log in &amp; it's <urgent>!"),
                          _msg(1002, BOT, "bot", T0 + 60, "Thanks, a human will answer soon."),
                          _msg(1003, AGENT_A, "agent", T0 + h, "Internal: checking SSO", public=False),
                          _msg(1004, AGENT_A, "agent", T0 + 2 * h, "Please try again now.\nIt should work."),
                          _msg(1005, AGENT_A, "agent", T0 + 3 * h, "Solved, reply if needed."),
                          _msg(1006, ALICE, "customer", T0 + 3 * h + 600, "Still broken."),
                          _msg(1007, AGENT_A, "agent", T0 + 4 * h, "Fixed for real this time.")],
                changes=[Change(5001, T0 + 30, "assignee_id", None, str(AGENT_A), AGENT_A),
                         Change(5002, T0 + 2 * h, "status", "new", "pending", AGENT_A),
                         Change(5003, T0 + 3 * h, "status", "pending", "solved", AGENT_A),
                         Change(5004, T0 + 3 * h + 600, "status", "solved", "open", None),
                         Change(5005, T0 + 4 * h, "status", "open", "solved", AGENT_A),
                         Change(5006, T0 + 5 * h, "status", "solved", "closed", None)],
                rating=Rating(9001, 4, "ok in the end", T0 + 4 * h + 900))
    t2 = Ticket(102, "Invoice question", BOB, ORG_Y, None, TEAM_1, "chat", "normal", "open", T0 + h, T0 + 2 * h,
                messages=[_msg(1011, BOB, "customer", T0 + h, "Why was I charged twice?")],
                changes=[Change(5011, T0 + 2 * h, "group_id", str(TEAM_1), str(TEAM_2), AGENT_B)])
    t2.group_id = TEAM_2
    t3 = Ticket(103, "Phone call", LEAD, None, AGENT_B, TEAM_1, "phone", "high", "pending", T0 + 2 * h, T0 + 3 * h,
                created_by_agent=True,
                messages=[_msg(1021, AGENT_B, "agent", T0 + 2 * h, "Logged on behalf of Lee: call back")],
                changes=[Change(5021, T0 + 3 * h, "status", "new", "pending", AGENT_B)])
    t4 = Ticket(104, "API errors", ALICE, ORG_X, AGENT_B, TEAM_1, "api", "low", "solved", T0 + 3 * h, T0 + 6 * h,
                solved_at=T0 + 6 * h,
                messages=[_msg(1031, ALICE, "customer", T0 + 3 * h, "The API returns 500"),
                          _msg(1032, AGENT_B, "agent", T0 + 6 * h, "Deployed a fix.")],
                changes=[Change(5031, T0 + 6 * h, "status", "new", "solved", AGENT_B)])
    t5 = Ticket(105, "Gone", BOB, ORG_Y, None, None, "email", "normal", "open", T0, T0 + 10, deleted=True,
                messages=[_msg(1041, BOB, "customer", T0, "deleted one")])
    t6 = Ticket(106, "Buy pills", LEAD, None, None, None, "email", "normal", "closed", T0, T0 + 11, spam=True,
                messages=[_msg(1051, LEAD, "customer", T0, "spam spam")])
    w.tickets = [t1, t2, t3, t4, t5, t6]
    return w


def same_time_world(n: int, updated_at: int) -> World:
    """``n`` visible conversations that all share one updated_at (boundary-dedup tests)."""
    w = small_world()
    w.tickets = []
    for i in range(n):
        tid = 201 + i
        w.tickets.append(Ticket(tid, f"Same second {i}", ALICE, ORG_X, AGENT_A, TEAM_1, "chat", "normal", "open",
                                updated_at - 3600, updated_at,
                                messages=[_msg(3000 + i, ALICE, "customer", updated_at - 3600, f"hello {i}")]))
    return w


def mount(rm: responses.RequestsMock, sim: IntercomSim, base: str = BASE) -> None:
    callback = responses_callback(sim)
    for method in ("GET", "POST", "PUT", "DELETE"):
        rm.add_callback(method, re.compile(re.escape(base) + r"/.*"), callback=callback)


def make_sim(world: World | None = None, fake: FakeTime | None = None, **kwargs: Any) -> IntercomSim:
    return IntercomSim(copy.deepcopy(world or small_world()), token=TOKEN,
                       clock=(fake or FakeTime()).clock, **kwargs)


def make_connector(fake: FakeTime, source: IntercomSource | None = None, **kwargs: Any) -> IntercomConnector:
    source = source or make_source()
    http = build_http(source, clock=fake.clock, sleep=fake.sleep)
    kwargs.setdefault("workers", 1)
    return IntercomConnector(source, http=http, clock=fake.clock, **kwargs)


class Crash(BaseException):
    """Raised right after a page commit to simulate the process dying there."""


def sync(connector: IntercomConnector, store: Store, cursors: dict[str, Any], *, streams: tuple[str, ...] = (),
         crash_after: int | None = None, after_page: Callable[[str, Page], None] | None = None) -> int:
    """Run the connector's streams like the engine does: each page's rows and cursor committed together."""
    pages = 0
    for stream in connector.streams():
        if streams and stream.name not in streams:
            continue
        for page in stream.pages(cursors.get(stream.name)):
            with store.transaction():
                for table, rows in page.records.items():
                    store.upsert(table, rows, source=SOURCE)
                for bad in page.quarantine:
                    store.quarantine(SOURCE, bad.stream, bad.record_id, bad.error, bad.raw)
                cursors[stream.name] = json.loads(json.dumps(page.cursor))  # must survive JSON
            pages += 1
            if after_page is not None:
                after_page(stream.name, page)
            if crash_after is not None and pages >= crash_after:
                raise Crash
    return pages


def dump(store: Store) -> dict[str, list[dict[str, Any]]]:
    """Everything a sync stored, minus the sync timestamp, in a comparable order."""
    out = {}
    for table in ("tickets", "messages", "ticket_events", "ratings", "people", "organizations", "groups",
                  "quarantine"):
        rows = store.query(f"SELECT * FROM {table} ORDER BY 1, 2, 3")
        for row in rows:
            row.pop("synced_at", None)
            if table == "quarantine":
                row.pop("created_at", None)  # stamped with the wall clock when quarantined
        out[table] = rows
    return out


def many_orgs_world(n: int) -> World:
    """The small world plus ``n - 2`` more companies: several 50-company scroll pages."""
    w = small_world()
    w.orgs += [Org(100 + i, f"Org {i}", f"org{i}.example", T0 - 30 * 86400, float(i), updated_at=T0 - 10)
               for i in range(n - len(w.orgs))]
    return w


def many_contacts_world(n: int, updated_at: int) -> World:
    """The small world plus ``n`` leads updated one second apart from ``updated_at`` (one busy day)."""
    w = small_world()
    w.people += [Person(500 + i, f"Lead {i}", f"lead{i}@mail.example", "customer", None, T0 - 86400,
                        updated_at + i) for i in range(n)]
    return w


def engine_sync(fake: FakeTime, source: IntercomSource | None = None, store: Store | None = None,
                **connector_options: Any) -> tuple[Any, Store]:
    """One run of the real :class:`sync.engine.SyncEngine` (the sim mounted on ``responses`` by the caller)."""
    from config.settings import Settings
    from sync.engine import SyncEngine

    source = source or make_source()
    settings = Settings(sources=[source.model_dump(mode="json") | {"access_token": TOKEN}])

    def factory(src: Any, _settings: Settings) -> IntercomConnector:
        return make_connector(fake, src, **connector_options)

    store = store if store is not None else Store(":memory:")
    [report] = SyncEngine(store, settings, connector_factory=factory, clock=fake.clock).sync_all()
    return report, store
