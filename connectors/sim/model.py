"""The vendor-neutral world every simulator renders: one history, three API dialects.

Generated once (``connectors/sim/world.py``), then rendered by the Zendesk,
Freshdesk and Intercom simulators in their own shapes. Because all three draw
from the same world, the same KPIs must come out of each: that is how the
normalization is proven. Simulators mutate their own copy (writes add tags,
bump ``updated_at``), so give each simulator its own ``World``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ROLES = ("customer", "agent", "bot", "system")
STATUSES = ("new", "open", "pending", "on_hold", "solved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")
CHANNELS = ("email", "web", "chat", "phone", "api")


@dataclass(slots=True)
class Org:
    id: int
    name: str
    domain: str
    created_at: int
    value: float  # annual contract value ("arr"), the configurable customer-value field
    distressed: bool = False  # ground truth for the CDI evaluation
    updated_at: int = 0
    distress_onset: int | None = None  # when a distressed org's trouble began (ground truth; None if not distressed)


@dataclass(slots=True)
class Person:
    id: int
    name: str
    email: str
    role: str  # "customer" | "agent"
    org_id: int | None
    created_at: int
    updated_at: int


@dataclass(slots=True)
class Group:
    id: int
    name: str
    escalation: bool = False


@dataclass(slots=True)
class FieldDef:
    """A ticket custom field: ``id`` for Zendesk, ``key`` (``cf_<key>`` for Freshdesk, attribute name for Intercom)."""

    id: int
    key: str
    name: str
    type: str = "text"


@dataclass(slots=True)
class Message:
    id: int
    author_id: int
    role: str  # one of ROLES
    public: bool
    body: str
    created_at: int


@dataclass(slots=True)
class Change:
    """A field change on a ticket: status, priority, group or assignee (values are neutral names/ids as text)."""

    id: int
    at: int
    field: str
    old: str | None
    new: str | None
    actor_id: int | None


@dataclass(slots=True)
class Rating:
    id: int
    score: int  # 1..5 in the neutral world; vendors map to their scales
    comment: str | None
    created_at: int


@dataclass(slots=True)
class Ticket:
    id: int
    subject: str
    requester_id: int
    org_id: int | None
    assignee_id: int | None
    group_id: int | None
    channel: str
    priority: str
    status: str
    created_at: int
    updated_at: int
    solved_at: int | None = None  # latest transition to solved/closed
    tags: list[str] = field(default_factory=list)
    custom_fields: dict[str, str | None] = field(default_factory=dict)  # FieldDef.key -> value
    messages: list[Message] = field(default_factory=list)  # messages[0] is the description
    changes: list[Change] = field(default_factory=list)
    rating: Rating | None = None
    deleted: bool = False
    spam: bool = False
    merged_into: int | None = None
    time_spent_s: int | None = None
    created_by_agent: bool = False


@dataclass
class World:
    seed: int
    now: int
    orgs: list[Org] = field(default_factory=list)
    people: list[Person] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    fields: list[FieldDef] = field(default_factory=list)
    tickets: list[Ticket] = field(default_factory=list)
    _tickets_by_id: dict[int, Ticket] = field(default_factory=dict, repr=False, compare=False)
    _people_by_id: dict[int, Person] = field(default_factory=dict, repr=False, compare=False)

    def ticket(self, ticket_id: int) -> Ticket | None:
        """Look a ticket up by id (index rebuilt when tickets were added)."""
        if len(self._tickets_by_id) != len(self.tickets):
            self._tickets_by_id = {t.id: t for t in self.tickets}
        return self._tickets_by_id.get(ticket_id)

    def person(self, person_id: int) -> Person | None:
        if len(self._people_by_id) != len(self.people):
            self._people_by_id = {p.id: p for p in self.people}
        return self._people_by_id.get(person_id)

    def distressed_org_ids(self) -> set[int]:
        return {o.id for o in self.orgs if o.distressed}
