"""Helpers for the Freshdesk tests: a hand-built World, the simulator behind ``responses``, a fake clock."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import responses

from connectors.base import Page, Stream
from connectors.freshdesk import FreshdeskConnector, build_http
from connectors.freshdesk.settings import FreshdeskSource
from connectors.sim.base import responses_callback
from connectors.sim.freshdesk import FreshdeskSim
from connectors.sim.model import FieldDef, Group, Message, Org, Person, Rating, Ticket, World
from tests.fake_time import FakeTime as _FakeTime

BASE = "https://acme.freshdesk.com"
API_KEY = "fd-secret-key-5a4b3c2d1e"
NOW = 1_790_000_000
AGENT_IDS = (201, 202)
CUSTOMER_IDS = (301, 302, 303)


class FakeTime(_FakeTime):
    """The shared fake clock, starting at this kit's NOW."""

    def __init__(self, now: float = NOW) -> None:
        super().__init__(now)


def make_world(n: int = 20, *, start: int = NOW - 400 * 86400, step: int = 3600,
               same_updated: dict[int, int] | None = None) -> World:
    """``n`` tickets created ``step`` apart, each with description, an agent reply, a note and a customer reply.

    ``same_updated`` forces chosen tickets' ``updated_at`` (to build one-second groups wider than a page).
    """
    world = World(seed=0, now=NOW)
    world.orgs = [Org(101, "Acme", "acme.example", start - 86400, 12000.0, updated_at=start),
                  Org(102, "Globex", "globex.example", start - 86400, 500.5, updated_at=start)]
    world.people = [Person(a, f"Agent {a}", f"agent{a}@help.example", "agent", None, start, start) for a in AGENT_IDS]
    world.people += [Person(c, f"Customer {c}", f"c{c}@acme.example", "customer", 101 if c != 303 else 102,
                            start + i, start + i) for i, c in enumerate(CUSTOMER_IDS)]
    world.groups = [Group(401, "Support"), Group(402, "Tier 2", escalation=True)]
    world.fields = [FieldDef(1, "product_area", "Product area", "text"), FieldDef(2, "deskpulse_cdi", "CDI", "text")]
    msg_id = 10_000
    for i in range(1, n + 1):
        t0 = start + i * step
        requester = CUSTOMER_IDS[i % len(CUSTOMER_IDS)]
        agent = AGENT_IDS[i % len(AGENT_IDS)]
        msgs = []
        for offset, (author, role, public) in enumerate([(requester, "customer", True), (agent, "agent", True),
                                                         (agent, "agent", False), (requester, "customer", True)]):
            msg_id += 1
            msgs.append(Message(msg_id, author, role, public, f"message {offset} of ticket {i}", t0 + offset * 600))
        tk = Ticket(i, f"Ticket {i}", requester, 101 if requester != 303 else 102, agent, 401, "email",
                    ("low", "normal", "high", "urgent")[i % 4], "open", t0, t0 + 1800, tags=[f"t{i}"],
                    custom_fields={"product_area": "billing"}, messages=msgs)
        if i % 5 == 0:
            tk.rating = Rating(90_000 + i, (i // 5) % 5 + 1, "ok", t0 + 2000)
            tk.time_spent_s = 5400
        world.tickets.append(tk)
    for tid, updated in (same_updated or {}).items():
        world.ticket(tid).updated_at = updated  # type: ignore[union-attr]
    return world


def make_source(**overrides: Any) -> FreshdeskSource:
    values: dict[str, Any] = {"kind": "freshdesk", "name": "acme-fd", "base_url": BASE, "api_key": API_KEY,
                              "max_retries": 3, "conversation_workers": 3}
    values.update(overrides)
    return FreshdeskSource(**values)


def make_connector(source: FreshdeskSource | None = None, *, fake: FakeTime | None = None,
                   **kwargs: Any) -> FreshdeskConnector:
    source = source or make_source()
    fake = fake or FakeTime()
    http = build_http(source, clock=fake.clock, sleep=fake.sleep)
    return FreshdeskConnector(source, http=http, clock=fake.clock, **kwargs)


@contextmanager
def mounted(sim: FreshdeskSim) -> Iterator[responses.RequestsMock]:
    """The simulator behind ``responses`` on BASE (no sockets)."""
    sim.base_url = BASE
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        for method in ("GET", "PUT", "POST", "DELETE"):
            rsps.add_callback(method, re.compile(re.escape(BASE) + r"/.*"), callback=responses_callback(sim))
        yield rsps


@dataclass
class Collected:
    """What a store would hold after upserting pages (rows keyed by table and id), plus the pages themselves."""

    tables: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    pages: list[Page] = field(default_factory=list)
    emitted: dict[str, int] = field(default_factory=dict)  # ticket id -> times emitted

    def add(self, page: Page) -> None:
        json.dumps(page.cursor)  # every cursor must be JSON-serializable
        self.pages.append(page)
        for table, rows in page.records.items():
            for row in rows:
                assert "source" not in row
                self.tables.setdefault(table, {})[row["id"]] = {**self.tables.get(table, {}).get(row["id"], {}),
                                                                **row}
                if table == "tickets":
                    self.emitted[row["id"]] = self.emitted.get(row["id"], 0) + 1

    def ids(self, table: str) -> set[str]:
        return set(self.tables.get(table, {}))

    @property
    def cursor(self) -> Any:
        return self.pages[-1].cursor if self.pages else None


def run(stream: Stream, cursor: Any = None, into: Collected | None = None, *, stop_after: int | None = None,
        ) -> Collected:
    """Drain ``stream`` from ``cursor`` (or stop after ``stop_after`` pages: a crash right after a commit)."""
    out = into or Collected()
    for n, page in enumerate(stream.pages(cursor), start=1):
        out.add(page)
        if stop_after is not None and n >= stop_after:
            break
    return out


def main_ticket_ids(world: World) -> set[str]:
    return {str(t.id) for t in world.tickets if not t.deleted and not t.spam}
