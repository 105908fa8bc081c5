"""One customer across helpdesks: which helpdesk organizations (and requesters) are the same customer.

Why: one store holds several helpdesks, and a customer who writes to both Zendesk and Intercom is an
organization in each. Left alone, distress, the digest, the report and ``kpi --by organization`` show it
once per helpdesk, each copy with half the tickets, so neither looks distressed. This module decides which
accounts belong together; the CDI and the breakdowns then group by the customer's key.

Rules, strongest first (``[customers]`` in config, :class:`config.settings.CustomerSettings`):

1. ``map``: an explicit list of ``source:organization id`` per customer name. A mapped organization is
   taken out of automatic matching, so the mapping wins over a shared domain (it can also keep an
   organization apart: map it alone).
2. ``domain``: organizations sharing an e-mail domain. An organization's domains are the ones the helpdesk
   records (Zendesk ``domain_names``, Freshdesk company ``domains``, Intercom company ``website`` host);
   an organization that records none is known by the domains of its people's e-mail addresses. Personal
   mailbox domains (gmail.com and the like, :data:`config.settings.PERSONAL_DOMAINS` plus
   ``personal_domains``) never count, and a domain two organizations of the same helpdesk both claim is
   ambiguous there (subsidiaries, a reseller) and merges nothing.
3. ``external_id``: organizations carrying the same external id (Zendesk organization ``external_id``,
   Intercom company ``company_id``, the id the customer's own systems use); one claimed twice within a
   helpdesk merges nothing either.
4. ``email``: requesters without an organization who share an e-mail address across helpdesks (the same
   address is the same person, whatever its domain).

Keys are stable: an account that merges with nothing keeps its old key (``source:org:id`` or
``source:user:id``), so CDI history carries on; a merged customer takes the smallest of its members' keys
(``customer:<name>`` when mapped). ``match = false`` turns all of it off: one account per helpdesk
organization, as before.

Pure: reads ``organizations`` and ``people`` (and their raw payloads) from the store, writes only a TEMP
table (:meth:`CustomerMap.install`), no network.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urlsplit

from config.settings import PERSONAL_DOMAINS, CustomerSettings
from kpi_engine.transactions import savepoint

__all__ = ["MEMBERS_TABLE", "Customer", "CustomerMap", "account_key", "is_personal", "resolve"]

#: TEMP table of every member of a merged customer: (source, kind, id) -> account (the customer's key)
MEMBERS_TABLE = "dp_customer_members"

Member = tuple[str, str, str]  # (source, "org" | "user", id)


def account_key(source: str, kind: str, ident: str) -> str:
    """The account key of one helpdesk organization (``kind='org'``) or requester (``kind='user'``)."""
    return f"{source}:{kind}:{ident}"


def is_personal(domain: str, extra: Iterable[str] = ()) -> bool:
    """Whether ``domain`` is a personal mailbox provider (``gmx.*`` matches gmx.de, gmx.net ...)."""
    return _personal_check(tuple(extra))(domain)


@lru_cache(maxsize=16)
def _personal_check(extra: tuple[str, ...]) -> Callable[[str], bool]:
    """A set-lookup predicate for the built-in list plus ``extra``: called once per organization and domain."""
    exact = {p.lower() for p in (*PERSONAL_DOMAINS, *extra) if not p.endswith(".*")}
    stems = {p[:-2].lower() for p in (*PERSONAL_DOMAINS, *extra) if p.endswith(".*")}

    def check(domain: str) -> bool:
        labels = domain.lower().split(".")
        if len(labels) == 2 and labels[0] in stems:  # gmx.de, gmx.net
            return True
        # the domain itself or a parent of it (mail.yahoo.com is yahoo.com's)
        return any(".".join(labels[i:]) in exact for i in range(len(labels) - 1))

    return check


@dataclass(frozen=True)
class Customer:
    """Several helpdesk accounts that are one customer."""

    key: str
    name: str | None
    members: tuple[Member, ...]  # sorted; members[0] is the primary (its key is the customer's unless mapped)
    rule: str  # "map", or the automatic rules that joined it ("domain", "domain+external_id", "email")

    @property
    def sources(self) -> list[str]:
        return sorted({m[0] for m in self.members})

    @property
    def primary(self) -> Member:
        return self.members[0]


@dataclass
class CustomerMap:
    """The resolver's answer: merged customers by key and by member. Accounts not listed stand alone."""

    customers: dict[str, Customer] = field(default_factory=dict)
    by_member: dict[Member, Customer] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def account(self, source: str, kind: str, ident: str) -> str:
        customer = self.by_member.get((source, kind, str(ident)))
        return customer.key if customer is not None else account_key(source, kind, str(ident))

    def customer(self, key: str) -> Customer | None:
        return self.customers.get(key)

    def install(self, conn: sqlite3.Connection, table: str = MEMBERS_TABLE) -> None:
        """(Re)create ``temp.<table>`` (source, kind, id, account) for SQL that groups by customer."""
        # one transaction of the temp database: statement by statement, a refill took 0.95 s instead of 0.08
        with savepoint(conn, "dp_customer_members"):
            conn.execute(f"DROP TABLE IF EXISTS temp.{table}")
            conn.execute(f"CREATE TEMP TABLE {table} (source TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, "
                         "account TEXT NOT NULL, PRIMARY KEY (source, kind, id)) WITHOUT ROWID")
            conn.executemany(f"INSERT INTO temp.{table} VALUES (?, ?, ?, ?)",
                             [(*member, customer.key) for member, customer in self.by_member.items()])

    @staticmethod
    def drop(conn: sqlite3.Connection, table: str = MEMBERS_TABLE) -> None:
        conn.execute(f"DROP TABLE IF EXISTS temp.{table}")


def _host(value: str) -> str | None:
    """The domain of a website or bare domain: ``https://www.acme.example/x`` -> ``acme.example``."""
    text = value.strip().lower()
    if not text:
        return None
    if "//" not in text:
        text = "//" + text
    try:
        host = urlsplit(text).hostname
    except ValueError:
        return None
    if not host or "." not in host:
        return None
    return host[4:] if host.startswith("www.") else host


def _domains_of(raw: str | None) -> set[str]:
    """The domains a helpdesk records on an organization (Zendesk, Freshdesk, Intercom payloads)."""
    try:
        doc = json.loads(raw) if raw else {}
    except ValueError:
        return set()
    if not isinstance(doc, dict):
        return set()
    out: set[str] = set()
    for key in ("domain_names", "domains"):  # Zendesk organization, Freshdesk company: lists of domains
        value = doc.get(key)
        items = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else []
        out.update(h for h in (_host(str(i)) for i in items if i) if h)
    for key in ("website", "domain"):  # Intercom company: its website
        value = doc.get(key)
        if isinstance(value, str) and (host := _host(value)):
            out.add(host)
    return out


def _external_id(raw: str | None) -> str | None:
    """Zendesk ``external_id``, Intercom ``company_id``: the id the customer's own systems give it."""
    try:
        doc = json.loads(raw) if raw else {}
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    for key in ("external_id", "company_id"):
        value = doc.get(key)
        if value not in (None, ""):
            return str(value).strip() or None
    return None


def _most_common(names: list[str | None]) -> str | None:
    """The name most members carry; a tie goes to the earliest (the primary member's name first)."""
    counted = Counter(n for n in names if n)
    if not counted:
        return None
    best = max(counted.values())
    return next(n for n in names if n and counted[n] == best)


class _Union:
    def __init__(self) -> None:
        self.parent: dict[Member, Member] = {}

    def find(self, x: Member) -> Member:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: Member, b: Member) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _join_groups(uf: _Union, groups: dict[str, set[Member]], what: str, rules: dict[Member, set[str]],
                 notes: list[str]) -> None:
    """Union each group's members, unless a helpdesk has two of them (then the value identifies nothing)."""
    for value, members in sorted(groups.items()):
        if len(members) < 2:
            continue
        per_source = Counter(m[0] for m in members)
        if max(per_source.values()) > 1:
            twice = sorted(s for s, n in per_source.items() if n > 1)
            notes.append(f"{what} {value!r} belongs to several organizations in {', '.join(twice)}: not matched on it")
            continue
        ordered = sorted(members)
        for other in ordered[1:]:
            uf.union(ordered[0], other)
        for member in ordered:
            rules[member].add(what)


#: bump when matching changes: kept maps are then never reused
MATCHING_VERSION = 1


def resolve(conn: sqlite3.Connection, settings: CustomerSettings | None = None) -> CustomerMap:
    """Which accounts of the store are one customer, by ``settings`` (default: every rule on).

    Kept in ``customer_map_cache`` per settings until an organization or a person changes (a generation
    that triggers bump): matching reads every person, a second on a store of 300k, and the report, distress,
    write-back and ``kpi --by organization`` each ask. A store that cannot keep it (read-only, busy with
    another writer, older schema) is only slower.
    """
    settings = settings or CustomerSettings()
    key = hashlib.sha1(json.dumps([MATCHING_VERSION, settings.model_dump(mode="json"), sorted(PERSONAL_DOMAINS)],
                                  sort_keys=True).encode(), usedforsecurity=False).hexdigest()[:16]
    try:
        generation = conn.execute("SELECT generation FROM customer_inputs").fetchone()[0]
        kept = conn.execute("SELECT generation, map FROM customer_map_cache WHERE fingerprint = ?", [key]).fetchone()
    except (sqlite3.OperationalError, TypeError):  # no such table (older schema), or no generation row
        return _resolve(conn, settings)
    if kept is not None and kept[0] == generation:
        return _from_json(kept[1])
    out = _resolve(conn, settings)
    _keep(conn, key, generation, out)
    return out


def _keep(conn: sqlite3.Connection, key: str, generation: int, out: CustomerMap) -> None:
    """Store ``out`` for ``generation`` if that costs no wait: never block on another process's write lock."""
    before = conn.execute("PRAGMA busy_timeout").fetchone()[0]
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        with savepoint(conn, "dp_customer_map"):
            conn.execute("INSERT INTO customer_map_cache (fingerprint, generation, map) VALUES (?, ?, ?) "
                         "ON CONFLICT(fingerprint) DO UPDATE SET generation = excluded.generation, map = excluded.map",
                         [key, generation, _to_json(out)])
    except sqlite3.OperationalError:  # read-only, or locked by another writer: the next caller resolves again
        pass
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(before)}")


def _to_json(out: CustomerMap) -> str:
    return json.dumps({"customers": [[c.key, c.name, [list(m) for m in c.members], c.rule]
                                     for c in out.customers.values()], "notes": out.notes}, separators=(",", ":"))


def _from_json(text: str) -> CustomerMap:
    doc = json.loads(text)
    out = CustomerMap(notes=list(doc["notes"]))
    for key, name, members, rule in doc["customers"]:
        customer = Customer(key, name, tuple((s, k, i) for s, k, i in members), rule)
        out.customers[key] = customer
        for member in customer.members:
            out.by_member[member] = customer
    return out


def _resolve(conn: sqlite3.Connection, settings: CustomerSettings) -> CustomerMap:
    out = CustomerMap()
    if not settings.match:
        return out
    known = {(s, i): n for s, i, n in conn.execute("SELECT source, id, name FROM organizations")}
    names: dict[Member, str | None] = {(s, "org", i): n for (s, i), n in known.items()}

    # 1. explicit mapping: fixed groups, out of automatic matching
    mapped: dict[Member, str] = {}
    for name, entries in settings.map.items():
        for entry in entries:
            source, _, org = entry.partition(":")
            mapped[(source.strip(), "org", org.strip())] = name
    stored_sources = {s for (s, _i) in known}
    for member, name in sorted(mapped.items()):
        if member[0] not in stored_sources:
            out.notes.append(f"customers.map {name!r}: no organization of source {member[0]!r} is in the store")
    uf = _Union()
    rules: dict[Member, set[str]] = defaultdict(set)

    # one pass over people (the widest table read here): org people's domains, org-less people's addresses
    org_domains: dict[Member, set[str]] = defaultdict(set)
    by_email: dict[str, set[Member]] = defaultdict(set)
    if "domain" in settings.match_by or "email" in settings.match_by:
        for source, user_id, org_id, email, name in conn.execute(
                "SELECT source, id, NULLIF(organization_id, ''), lower(trim(email)), "
                "COALESCE(NULLIF(name, ''), email) FROM people WHERE instr(COALESCE(email, ''), '@') > 0 "
                "AND COALESCE(role, '') NOT IN ('agent', 'admin', 'bot')"):
            if org_id is not None:
                org_domains[(source, "org", str(org_id))].add(email.rpartition("@")[2])
            else:
                member = (source, "user", str(user_id))
                by_email[email].add(member)
                names[member] = name

    # 2. domains: the organization's own, else its people's (personal mailbox domains never count)
    if "domain" in settings.match_by:
        personal = _personal_check(tuple(settings.personal_domains))
        by_domain: dict[str, set[Member]] = defaultdict(set)
        for source, org_id, raw in conn.execute("SELECT source, id, raw FROM organizations"):
            member = (source, "org", str(org_id))
            if member in mapped:
                continue
            for domain in _domains_of(raw) or org_domains.get(member, set()):
                if domain and not personal(domain):
                    by_domain[domain].add(member)
        _join_groups(uf, by_domain, "domain", rules, out.notes)

    # 3. external ids
    if "external_id" in settings.match_by:
        by_ext: dict[str, set[Member]] = defaultdict(set)
        for source, org_id, raw in conn.execute("SELECT source, id, raw FROM organizations"):
            member = (source, "org", str(org_id))
            ext = _external_id(raw)
            if ext is not None and member not in mapped:
                by_ext[ext].add(member)
        _join_groups(uf, by_ext, "external_id", rules, out.notes)

    # 4. requesters without an organization, by e-mail address (one address is one person, in any helpdesk)
    if "email" in settings.match_by:
        for members in by_email.values():
            if len(members) < 2:
                continue
            ordered = tuple(sorted(members))
            for other in ordered[1:]:
                uf.union(ordered[0], other)
            for member in ordered:
                rules[member].add("email")

    groups: dict[Member, list[Member]] = defaultdict(list)
    for member in list(uf.parent):
        groups[uf.find(member)].append(member)
    for group in groups.values():
        if len(group) < 2:
            continue
        ordered = tuple(sorted(group, key=lambda m: account_key(*m)))
        shown = _most_common([names.get(m) for m in ordered])
        how = sorted(set[str]().union(*(rules[m] for m in ordered)))
        customer = Customer(account_key(*ordered[0]), shown, ordered, "+".join(how))
        out.customers[customer.key] = customer
        for member in ordered:
            out.by_member[member] = customer
    for name in settings.map:
        ordered = tuple(sorted((m for m, n in mapped.items() if n == name), key=lambda m: account_key(*m)))
        customer = Customer(f"customer:{name}", name, ordered, "map")
        out.customers[customer.key] = customer
        for member in ordered:
            out.by_member[member] = customer
    return out
