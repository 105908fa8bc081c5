"""Generate a large, realistic deskpulse store for KPI benchmarks (default 1M tickets, ~5M messages).

Why generate straight into SQLite instead of syncing from the simulators: the
KPI benchmark measures the KPI engine, not the sync, and a 1M-ticket sync over
HTTP would take far longer than the measurement itself. The schema is the real
one (``sync.store.Store`` runs its migrations), so every query the engine runs
here is the query it runs in production.

Each ticket lives through a plausible lifecycle (description, replies, customer
follow-ups, pending/on-hold/solved transitions, reopens, priority and group
changes), across several sources, with business-hours seasonality, so the
status history, reply counts and backlog look like a real helpdesk's.

Usage: ``python3 bench/gen_store.py [--path /tmp/deskpulse_bench.db] [--tickets 1000000] [--no-extra-indexes]``
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sync.store import Store  # noqa: E402

# Indexes the KPI engine wants on top of migration v1 (the lead adds them as a migration).
EXTRA_INDEXES = [
    "CREATE INDEX IF NOT EXISTS idx_messages_kpi ON messages(source, ticket_id, created_at, author_role, public, kind)",
    "CREATE INDEX IF NOT EXISTS idx_ticket_events_kpi ON ticket_events(source, ticket_id, field, created_at, "
    "new_value, old_value)",
    "CREATE INDEX IF NOT EXISTS idx_tickets_kpi_created ON tickets(source, created_at, status, is_spam, is_merged)",
]

SOURCES = [("acme-zendesk", "zendesk", 0.5), ("acme-freshdesk", "freshdesk", 0.3), ("acme-intercom", "intercom", 0.2)]
PRIORITY = {
    "zendesk": {1: ["low", "normal"], 2: ["high"], 3: ["urgent"]},
    "freshdesk": {1: ["1", "2"], 2: ["3"], 3: ["4"]},
    "intercom": {1: ["not_priority"], 2: ["priority"], 3: ["priority"]},
}
CHANNELS = ["email", "web", "chat", "api", "phone"]
WORDS = ("order refund delivery account password invoice broken thanks please help login error shipping "
         "billing upgrade cancel slow crash great awful waiting again still").split()


def _body(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 30)))


def _business_skew(rng: random.Random, t: int) -> int:
    """Move most creation times into weekday working hours, as real inbound volume looks."""
    day = t - t % 86400
    if rng.random() < 0.8:
        wd = (day // 86400 + 3) % 7
        if wd >= 5:
            day -= (wd - 4) * 86400
        return day + rng.randint(7 * 3600, 17 * 3600)
    return t


class Gen:
    def __init__(self, store: Store, tickets: int, seed: int, end: int, days: int) -> None:
        self.store = store
        self.n = tickets
        self.rng = random.Random(seed)
        self.end = end
        self.start = end - days * 86400
        self.tickets: list[tuple] = []
        self.messages: list[tuple] = []
        self.events: list[tuple] = []
        self.ratings: list[tuple] = []
        self.entries: list[tuple] = []
        self.mid = 0
        self.eid = 0
        self.n_people = max(200, tickets // 10)
        self.n_orgs = max(20, tickets // 200)

    def flush(self) -> None:
        c = self.store.conn
        c.execute("BEGIN")
        def insert(table: str, columns: str, rows: list[tuple]) -> None:
            marks = ",".join("?" * len(columns.split(",")))
            c.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)

        insert("tickets", "source,id,subject,status,vendor_status,priority,severity,channel,requester_id,"
               "organization_id,assignee_id,group_id,tags,custom_fields,created_at,updated_at,solved_at,is_spam,"
               "is_merged,vendor_reopens,vendor_replies,raw,synced_at", self.tickets)
        insert("messages", "source,id,ticket_id,author_id,author_role,public,kind,body,created_at,raw", self.messages)
        insert("ticket_events", "source,id,ticket_id,created_at,actor_id,field,old_value,new_value,raw", self.events)
        insert("ratings", "source,id,ticket_id,requester_id,assignee_id,kind,score_raw,score_1_5,score,comment,"
               "created_at,raw", self.ratings)
        insert("time_entries", "source,id,ticket_id,agent_id,seconds,created_at,raw", self.entries)
        c.execute("COMMIT")
        for buf in (self.tickets, self.messages, self.events, self.ratings, self.entries):
            buf.clear()

    def people(self) -> None:
        rng = self.rng
        c = self.store.conn
        c.execute("BEGIN")
        orgs, people = [], []
        for source, _kind, _w in SOURCES:
            for i in range(self.n_orgs):
                orgs.append((source, f"o{i}", f"Org {i}", round(rng.lognormvariate(9, 1.2), 2),
                             self.start - rng.randint(0, 1500) * 86400, self.end, "{}"))
            for i in range(self.n_people):
                people.append((source, f"u{i}", f"User {i}", f"user{i}@example.com", "customer",
                               f"o{i % self.n_orgs}" if i % 7 else None, None, self.start, self.end, "{}"))
            for i in range(60):
                people.append((source, f"a{i}", f"Agent {i}", f"agent{i}@acme.example", "agent", None, None,
                               self.start, self.end, "{}"))
        c.executemany("INSERT INTO organizations (source,id,name,value,created_at,updated_at,raw) "
                      "VALUES (?,?,?,?,?,?,?)", orgs)
        c.executemany("INSERT INTO people (source,id,name,email,role,organization_id,external_id,created_at,"
                      "updated_at,raw) VALUES (?,?,?,?,?,?,?,?,?,?)", people)
        c.execute("COMMIT")

    def msg(self, source: str, tid: str, author: str, role: str, public: int, kind: str, t: int) -> None:
        self.mid += 1
        self.messages.append((source, f"m{self.mid}", tid, author, role, public, kind, _body(self.rng), t, "{}"))

    def ev(self, source: str, tid: str, t: int, field: str, old: str | None, new: str | None) -> None:
        self.eid += 1
        self.events.append((source, f"e{self.eid}", tid, t, None, field, old, new, "{}"))

    def ticket(self, i: int) -> None:  # noqa: C901 - one lifecycle, read top to bottom
        rng = self.rng
        r = rng.random()
        source, kind = SOURCES[0][:2] if r < 0.5 else SOURCES[1][:2] if r < 0.8 else SOURCES[2][:2]
        tid = str(i + 1)
        created = _business_skew(rng, self.start + int((self.end - self.start) * (i + rng.random()) / self.n))
        created = min(created, self.end - 60)
        sev = 1 if rng.random() < 0.7 else 2 if rng.random() < 0.73 else 3
        prio = rng.choice(PRIORITY[kind][sev])
        person = rng.randrange(self.n_people)
        requester = f"u{person}"
        org = f"o{person % self.n_orgs}" if person % 7 else None
        agent = f"a{rng.randrange(60)}"
        group = f"g{rng.randrange(6)}"
        tags = ["billing"] if rng.random() < 0.3 else []
        # lifecycle
        t = created
        status = "new"
        msgs_before = len(self.messages)
        evs_before = len(self.events)
        agent_created = rng.random() < 0.08
        self.msg(source, tid, agent if agent_created else requester, "agent" if agent_created else "customer", 1,
                 "description", t)
        if rng.random() < 0.1:
            self.msg(source, tid, "bot", "bot", 1, "comment", t + 5)
        solved_at = None
        reopens = 0
        rounds = rng.choice((1, 1, 2, 2, 3, 3, 4)) if rng.random() > 0.05 else 0
        if rng.random() < 0.04:
            self.ev(source, tid, t + 600, "priority", prio, PRIORITY[kind][3][0])
            sev = 3
            prio = PRIORITY[kind][3][0]
        if rng.random() < 0.03:
            self.ev(source, tid, t + 900, "group_id", group, "g5")
            group = "g5"
        if rng.random() < 0.02:
            tags.append("escalated")
            self.ev(source, tid, t + 1200, "tags", json.dumps(tags[:-1]), json.dumps(tags))
        lifecycles = 2 if rng.random() < 0.08 else 1
        for cycle in range(lifecycles):
            for k in range(rounds):
                t += int(rng.expovariate(1 / (3 * 3600 * sev ** -0.5))) + 30
                if rng.random() < 0.15:
                    self.msg(source, tid, agent, "agent", 0, "note", t)
                    t += rng.randint(60, 3600)
                self.msg(source, tid, agent, "agent", 1, "comment", t)
                new = "pending"
                if rng.random() < 0.05:
                    new = "on_hold"
                self.ev(source, tid, t, "status", status, new)
                status = new
                if k < rounds - 1:
                    t += int(rng.expovariate(1 / (10 * 3600))) + 60
                    if status == "on_hold":
                        t += rng.randint(3600, 3 * 86400)
                    self.msg(source, tid, requester, "customer", 1, "comment", t)
                    self.ev(source, tid, t, "status", status, "open")
                    status = "open"
            t += int(rng.expovariate(1 / (20 * 3600))) + 60
            self.ev(source, tid, t, "status", status, "solved")
            status = "solved"
            solved_at = t
            if cycle < lifecycles - 1:
                t += int(rng.expovariate(1 / (2 * 86400))) + 60
                self.msg(source, tid, requester, "customer", 1, "comment", t)
                self.ev(source, tid, t, "status", "solved", "open")
                status = "open"
                reopens += 1
                rounds = 1
        # cut at "now": what happened after end has not happened yet
        if t >= self.end:
            self.messages[msgs_before:] = [m for m in self.messages[msgs_before:] if m[8] < self.end]
            kept = [e for e in self.events[evs_before:] if e[3] < self.end]
            self.events[evs_before:] = kept
            status = "new"
            solved_at = None
            reopens = 0
            for e in kept:
                if e[5] == "status":
                    status = e[7]
                    if status == "solved":
                        solved_at = e[3]
                    elif e[6] == "solved":
                        reopens += 1
        last = max([created] + [m[8] for m in self.messages[msgs_before:]] + [e[3] for e in self.events[evs_before:]])
        if status == "solved" and solved_at is not None and self.end - solved_at > 4 * 86400 and rng.random() < 0.5:
            status = "closed"
        spam = 1 if rng.random() < 0.004 else 0
        merged = 1 if rng.random() < 0.004 else 0
        if rng.random() < 0.004:
            status = "deleted"
        replies = sum(1 for m in self.messages[msgs_before:] if m[4] == "agent" and m[5] == 1)
        self.tickets.append((
            source, tid, f"Ticket {tid}", status, status, prio, sev, rng.choice(CHANNELS), requester, org, agent,
            group, json.dumps(tags), "{}", created, last, solved_at, spam, merged,
            reopens if kind == "zendesk" else None, replies if kind == "zendesk" else None,
            '{"via":{"channel":"email"},"fields":[]}', self.end))
        if solved_at is not None and rng.random() < 0.15:
            good = rng.random() < 0.85
            self.ratings.append((source, f"r{tid}", tid, requester, agent, "csat", "good" if good else "bad",
                                 5.0 if good else 1.0, 1.0 if good else 0.0, None, solved_at + 3600, "{}"))
        if kind == "freshdesk" and rng.random() < 0.3:
            self.entries.append((source, f"te{tid}", tid, agent, rng.randint(120, 3600), t, "{}"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--path", default="/tmp/deskpulse_bench.db")
    ap.add_argument("--tickets", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--end", default="2026-01-01", help="the store's 'now' (ISO date, UTC)")
    ap.add_argument("--no-extra-indexes", action="store_true")
    args = ap.parse_args()
    path = Path(args.path)
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    end = int(datetime.fromisoformat(args.end).replace(tzinfo=UTC).timestamp())
    started = time.perf_counter()
    store = Store(path)
    store.conn.execute("PRAGMA synchronous=OFF")
    gen = Gen(store, args.tickets, args.seed, end, args.days)
    gen.people()
    for i in range(args.tickets):
        gen.ticket(i)
        if len(gen.tickets) >= 20_000:
            gen.flush()
            print(f"\r{i + 1:,} tickets", end="", file=sys.stderr, flush=True)
    gen.flush()
    print(file=sys.stderr)
    if not args.no_extra_indexes:
        for sql in EXTRA_INDEXES:
            store.conn.execute(sql)
    store.conn.execute("ANALYZE")
    counts = store.counts()
    store.close()
    print(f"generated {path} in {time.perf_counter() - started:.0f}s: "
          + ", ".join(f"{k}={v:,}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
