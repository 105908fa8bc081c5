"""The seeded world generator: one realistic, vendor-neutral support history.

``generate_world(seed=...)`` is deterministic (one ``random.Random``, no set
iteration, no wall clock except for the default ``now``), so a seed names a
history: tests, the demo and benchmarks all talk about the same tickets. The
three vendor simulators render the same world in their own dialects, which is
how the connectors' normalization is proven equal.

What the history contains and why (the KPI and CDI code needs each of these):

- organizations with ARR (lognormal) and tenure; a ``distressed_share`` of
  established ones are ``distressed=True`` from ``distress_onset`` (30-60 days
  before ``now``): they file more tickets, wait longer, reopen and escalate
  more, rate worse, and their customers write negatively (the CDI ground truth);
- customers (about 3 per org, plus some without one), agents, a bot identity,
  groups (``Tier 2`` is the escalation group) and custom field definitions;
- tickets with weekday/business-hour seasonality and growth over time, each a
  simulated sequence of messages and status changes (``world_tickets.py``);
  tickets whose next step would fall after ``now`` stay unsolved: the backlog, roughly 10-20% of the last
  30 days' tickets, aged from hours to weeks (stalls of days to weeks make the long tail);
- about 1% deleted, 0.5% spam, 0.5% merged tickets; ratings on about 30% of
  solved tickets; effort (``time_spent_s``) on about 60%.

Ids: tickets 1..N in creation order; orgs from 100,000,001, people from
200,000,001, groups from 300,000,001, messages from 1,000,000,001, changes from
5,000,000,001, ratings from 9,000,000,001: disjoint, so an id never names two
things. A ticket's initial status is the ``old`` value of its first status
change (or its current status when it never changed); the same holds for the
other tracked fields.
"""

from __future__ import annotations

import bisect
import gc
import itertools
import math
import random
import time

from connectors.sim import world_text as tx
from connectors.sim.model import FieldDef, Group, Org, Person, World
from connectors.sim.world_tickets import DAY, IdCounter, TicketFactory

ORG_ID_BASE = 100_000_000
PERSON_ID_BASE = 200_000_000
GROUP_ID_BASE = 300_000_000
FIELD_DEFS = (
    FieldDef(360001, "product_area", "Product area", "tagger"),
    FieldDef(360002, "deskpulse_cdi", "deskpulse_cdi", "text"),
)
WEEKDAY_FACTOR = (1.15, 1.10, 1.05, 1.0, 0.90, 0.35, 0.30)  # Monday first
ORGLESS_TICKET_SHARE = 0.08
SPAM_SHARE = 0.005
MERGED_SHARE = 0.005


def default_now() -> int:
    """Now rounded down to the minute, minus 120 s: nothing lands in Zendesk's one-minute export exclusion."""
    return int(time.time()) // 60 * 60 - 120


def generate_world(seed: int = 7, tickets: int = 3000, now: int | None = None, days: int = 730,
                   distressed_share: float = 0.08, messages: bool = True) -> World:
    """A deterministic support history of ``tickets`` tickets over ``days`` days ending at ``now``.

    ``messages=False`` skips message objects (statuses, ratings and everything else stay) for huge
    benchmark worlds, where memory and generation time matter more than text.
    """
    if tickets < 0 or days < 1:
        raise ValueError("tickets must be >= 0 and days >= 1")
    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of small acyclic objects: the cyclic collector only burns time (~20%) here
    try:
        return _generate(seed, tickets, now, days, distressed_share, messages)
    finally:
        if gc_was_enabled:
            gc.enable()


def _generate(seed: int, tickets: int, now: int | None, days: int, distressed_share: float,
              messages: bool) -> World:
    rng = random.Random(seed)
    now = default_now() if now is None else int(now)
    start = now - days * DAY
    world = World(seed=seed, now=now)
    world.fields = [FieldDef(f.id, f.key, f.name, f.type) for f in FIELD_DEFS]
    world.groups = [Group(GROUP_ID_BASE + i + 1, name, esc) for i, (name, esc) in enumerate(tx.GROUPS)]
    group_ids = {g.name: g.id for g in world.groups}
    escalation_group = next(g.id for g in world.groups if g.escalation)

    person_ids = itertools.count(PERSON_ID_BASE + 1)
    emails: set[str] = set()
    world.orgs = _orgs(rng, max(25, round(tickets / 40)), start, now, distressed_share)
    agents, bot = _agents(rng, person_ids, emails, max(8, round(tickets / 150)), start, world.groups)
    by_org, orgless = _customers(rng, person_ids, emails, world.orgs, start, now)
    world.people = [bot, *(a for group in agents.values() for a in group)]
    world.people += [p for org in world.orgs for p in by_org[org.id]] + orgless

    factory = TicketFactory(rng, now, IdCounter(), agents_by_group=agents, group_ids=group_ids,
                            escalation_group=escalation_group, bot=bot, messages=messages)
    times = _ticket_times(rng, tickets, start, now)
    picker = _OrgPicker(rng, world.orgs, start, distressed_share)
    org_names = {o.id: o.name for o in world.orgs}
    first_ticket: dict[int, int] = {}
    last_of_requester: dict[int, int] = {}
    for tid, t0 in enumerate(times, start=1):
        x = rng.random()
        special = "spam" if x < SPAM_SHARE else ("merged" if x < SPAM_SHARE + MERGED_SHARE and tid > 1 else None)
        org = None if special == "spam" or rng.random() < ORGLESS_TICKET_SHARE else picker.pick(t0)
        requester = rng.choice(by_org[org.id]) if org is not None else rng.choice(orgless)
        level = 0 if org is None or not org.distressed else (2 if t0 >= (org.distress_onset or now) else 1)
        target = last_of_requester.get(requester.id, tid - 1) if special == "merged" else None
        ticket = factory.build(tid, t0, org.id if org else None, org_names.get(org.id, "") if org else "",
                               requester, level, special, target)
        world.tickets.append(ticket)
        first_ticket.setdefault(requester.id, t0)
        last_of_requester[requester.id] = tid
    _fit_people(rng, world.people, first_ticket, now)
    return world


def _orgs(rng: random.Random, n: int, start: int, now: int, distressed_share: float) -> list[Org]:
    """Organizations: three quarters older than the window, the rest joining during it (customer growth)."""
    orgs: list[Org] = []
    names: set[str] = set()
    for i in range(n):
        base = name = f"{rng.choice(tx.ORG_PREFIXES)} {rng.choice(tx.ORG_SUFFIXES)}"
        tries = 0
        while name in names:
            tries += 1
            name = f"{base} {rng.choice(tx.ORG_LEGAL)}" if tries < 4 else f"{base} {i + 1}"
        names.add(name)
        if rng.random() < 0.75:
            created = start - int(rng.uniform(0, 5 * 365) * DAY) - rng.randint(0, DAY)
        else:
            created = start + int(rng.uniform(0, 0.85) * (now - start))
        value = round(math.exp(rng.gauss(10.0, 1.0)) / 100) * 100.0
        slug = "".join(ch for ch in name.lower() if ch.isalnum())
        updated = created + int(rng.random() * (now - created))
        orgs.append(Org(ORG_ID_BASE + i + 1, name, f"{slug}.example", created, max(value, 500.0), updated_at=updated))
    established = [o for o in orgs if o.created_at < now - 180 * DAY]
    k = min(len(established), max(1, round(n * distressed_share))) if distressed_share > 0 else 0
    for org in rng.sample(established, k):
        org.distressed = True
        org.distress_onset = now - int(rng.uniform(30, 60) * DAY)
    return orgs


def _person(rng: random.Random, ids: itertools.count, emails: set[str], role: str, org: Org | None,
            domain: str, created: int, now: int) -> Person:
    first, last = rng.choice(tx.FIRST_NAMES), rng.choice(tx.LAST_NAMES)
    local = f"{first}.{last}".lower().replace("ü", "ue")
    email, n = f"{local}@{domain}", 1
    while email in emails:
        n += 1
        email = f"{local}{n}@{domain}"
    emails.add(email)
    updated = created + int(rng.random() * max(0, now - created) * 0.5)
    return Person(next(ids), f"{first} {last}", email, role, org.id if org else None, created, updated)


def _agents(rng: random.Random, ids: itertools.count, emails: set[str], n: int, start: int,
            groups: list[Group]) -> tuple[dict[int, list[Person]], Person]:
    """Agents with a home group each (every group staffed); plus the bot identity for auto-replies."""
    bot_created = start - 900 * DAY
    bot = Person(next(ids), "Support Bot", "bot@helpdesk.example", "agent", None, bot_created, bot_created)
    weights = {"Support": 0.45, "Billing": 0.15, "Technical": 0.25, "Tier 2": 0.15}
    by_group: dict[int, list[Person]] = {g.id: [] for g in groups}
    for i in range(n):
        group = groups[i] if i < len(groups) else rng.choices(groups, [weights.get(g.name, 0.2) for g in groups])[0]
        created = start - int(rng.uniform(30, 1500) * DAY)
        by_group[group.id].append(_person(rng, ids, emails, "agent", None, "helpdesk.example", created, start))
    return by_group, bot


def _customers(rng: random.Random, ids: itertools.count, emails: set[str], orgs: list[Org], start: int,
               now: int) -> tuple[dict[int, list[Person]], list[Person]]:
    """About 3 customers per org (1-6), plus people writing in without an org (1 in 10)."""
    by_org: dict[int, list[Person]] = {}
    for org in orgs:
        count = 1 + min(5, int(rng.expovariate(0.5)))
        by_org[org.id] = [_person(rng, ids, emails, "customer", org, org.domain,
                                  min(now, org.created_at + rng.randint(0, 90 * DAY)), now) for _ in range(count)]
    n_orgless = max(5, sum(len(v) for v in by_org.values()) // 10)
    domains = ("mail.example", "inbox.example", "post.example")
    orgless = [_person(rng, ids, emails, "customer", None, rng.choice(domains),
                       start + int(rng.random() * (now - start) * 0.5), now) for _ in range(n_orgless)]
    return by_org, orgless


def _ticket_times(rng: random.Random, n: int, start: int, now: int) -> list[int]:
    """Creation times: growth over the window, weekday and time-of-day seasonality, sorted (ids follow time)."""
    first_day, last_day = start // DAY, now // DAY
    span = max(1, last_day - first_day)
    days = list(range(first_day, last_day + 1))
    weights = [(1.0 + 0.6 * (d - first_day) / span) * WEEKDAY_FACTOR[(d + 3) % 7]
               * (1.0 + 0.08 * math.sin(2 * math.pi * (d % 365) / 365)) for d in days]
    chosen = rng.choices(days, cum_weights=list(itertools.accumulate(weights)), k=n)
    out: list[int] = []
    for day in chosen:
        while True:
            if rng.random() < 0.75:
                tod = int(rng.gauss(14.5 * 3600, 3 * 3600)) % DAY
            else:
                tod = rng.randrange(DAY)
            t = day * DAY + tod
            if start <= t <= now:
                break
            day = rng.choice(days)
        out.append(t)
    out.sort()
    return out


class _OrgPicker:
    """Which org files a ticket at time t: weighted by size, never before the org existed, and
    redirected towards distressed orgs after their onset (they file about 3x their usual volume)."""

    def __init__(self, rng: random.Random, orgs: list[Org], start: int, distressed_share: float) -> None:
        self.rng, self.orgs = rng, orgs
        median = sorted(o.value for o in orgs)[len(orgs) // 2]
        weights = [rng.lognormvariate(0.0, 0.7) * (o.value / median) ** 0.25 for o in orgs]
        self.cum = list(itertools.accumulate(weights))
        self.old = [o for o in orgs if o.created_at <= start] or orgs
        self.distressed = sorted((o for o in orgs if o.distressed), key=lambda o: o.distress_onset or 0)
        self.onsets = [o.distress_onset or 0 for o in self.distressed]
        self.redirect = min(0.5, 2.0 * distressed_share)

    def pick(self, t: int) -> Org:
        rng = self.rng
        live = bisect.bisect_right(self.onsets, t)
        if live and rng.random() < self.redirect:
            return self.distressed[rng.randrange(live)]
        for _ in range(8):
            org = self.orgs[bisect.bisect(self.cum, rng.random() * self.cum[-1])]
            if org.created_at <= t:
                return org
        return rng.choice(self.old)


def _fit_people(rng: random.Random, people: list[Person], first_ticket: dict[int, int], now: int) -> None:
    """A requester existed before their first ticket; ``updated_at`` never precedes ``created_at``."""
    for person in people:
        first = first_ticket.get(person.id)
        if first is not None and person.created_at > first:
            person.created_at = first - rng.randint(60, DAY)
        person.updated_at = min(now, max(person.updated_at, person.created_at))
