"""One ticket's life, simulated event by event (used by ``world.py``).

Why an event walk and not independent random fields: every KPI deskpulse
computes (first reply, reopens, wait times by status, backlog at ``now``) is a
function of the *sequence* of messages and status changes, so the world must
contain sequences that are consistent by construction: timestamps only move
forward, a reply follows the message it answers, a reopen follows a solve,
nothing happens after ``now`` (a ticket whose next step would land in the
future simply stays in its current state: that is the backlog).

Distress (``level``): 0 normal, 1 a distressed org before its onset (a little
worse), 2 a distressed org after its onset: longer waits, more stalls,
reopens, escalations, low ratings and negative customer messages.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from connectors.sim import world_text as tx
from connectors.sim.model import Change, Message, Person, Rating, Ticket

DAY = 86400
T = TypeVar("T")
AREAS = tuple(tx.PRODUCT_AREAS)
AREA_CUM = tuple(itertools.accumulate(tx.AREA_WEIGHTS))
PRIORITY_CUM = {0: (0.22, 0.75, 0.93, 1.0), 1: (0.20, 0.72, 0.91, 1.0), 2: (0.15, 0.62, 0.87, 1.0)}
PRIORITY_NAMES = ("low", "normal", "high", "urgent")
CHANNEL_CUM = ((0.42, "email"), (0.67, "web"), (0.82, "chat"), (0.92, "phone"), (1.0, "api"))
FIRST_WAIT = {"urgent": 1800, "high": 2 * 3600, "normal": 5 * 3600, "low": 10 * 3600}  # median first reply, s
WAIT_MULT = (1.0, 1.4, 3.5)
STALL_P = (0.06, 0.08, 0.25)
MORE_ROUNDS_P = (0.42, 0.48, 0.62)
ESCALATE_P = (0.06, 0.10, 0.32)
REOPEN_P = (0.05, 0.07, 0.25)
NEG_BASE = (0.08, 0.15, 0.55)
CLOSE_AFTER = 4 * DAY  # solved tickets are closed by the default automation after 4 days
RATING_WEIGHTS = {  # cumulative over scores 1..5
    "good": (0.03, 0.07, 0.17, 0.50, 1.0),
    "meh": (0.12, 0.25, 0.45, 0.75, 1.0),
    "bad": (0.35, 0.60, 0.80, 0.92, 1.0),
}


def _pick(rng: random.Random, seq: Sequence[T]) -> T:
    """``rng.choice`` without its per-call overhead (the generator makes millions of picks)."""
    return seq[int(rng.random() * len(seq))]


@dataclass
class IdCounter:
    """Global id sequences: one per record kind, disjoint ranges so an id never names two things."""

    message: itertools.count = field(default_factory=lambda: itertools.count(1_000_000_001))
    change: itertools.count = field(default_factory=lambda: itertools.count(5_000_000_001))
    rating: itertools.count = field(default_factory=lambda: itertools.count(9_000_000_001))


@dataclass(slots=True)
class _State:
    """The walking state of one ticket: where it is in time and status, and what text to quote."""

    tk: Ticket
    level: int
    first: str
    last: str
    org_name: str
    t: int
    status: str
    reopened: bool = False
    last_agent_body: str | None = None
    last_agent_at: int = 0
    last_agent_name: str = "Support"
    waited: int = 0  # the wait a customer message reacts to
    agent_msgs: int = 0
    fmt: dict[str, Any] = field(default_factory=dict)  # template values, built once per ticket


class TicketFactory:
    """Builds tickets from (id, created_at, org, requester, level); one shared ``random.Random``."""

    def __init__(self, rng: random.Random, now: int, ids: IdCounter, *, agents_by_group: dict[int, list[Person]],
                 group_ids: dict[str, int], escalation_group: int, bot: Person, messages: bool) -> None:
        self.rng, self.now, self.ids, self.messages = rng, now, ids, messages
        self.agents_by_group = agents_by_group
        self.group_ids = group_ids
        self.escalation_group = escalation_group
        self.bot = bot
        self.agent_names = {p.id: p.name.split(" ")[0] for ps in agents_by_group.values() for p in ps}

    # -- small helpers ---------------------------------------------------------------------------------
    def _ri(self, a: int, b: int) -> int:
        """``randint(a, b)`` at a tenth of the cost."""
        return a + int(self.rng.random() * (b - a + 1))

    def _agent(self, group_id: int | None) -> int:
        pool = self.agents_by_group.get(group_id or 0) or self.agents_by_group[self.group_ids["Support"]]
        return _pick(self.rng, pool).id

    def _agent_time(self, t: int) -> int:
        """Agents mostly answer in business hours (Mon-Fri 08-18 UTC); a quarter of answers come off-hours."""
        day, sec = divmod(t, DAY)
        wd = (day + 3) % 7
        if (wd < 5 and 8 * 3600 <= sec < 18 * 3600) or self.rng.random() < 0.25:
            return t
        nd = day if (wd < 5 and sec < 8 * 3600) else day + 1
        while (nd + 3) % 7 >= 5:
            nd += 1
        return nd * DAY + 8 * 3600 + int(self.rng.random() * 7200)

    def _say(self, st: _State, at: int, role: str, author: int, public: bool, kind: str) -> None:
        at = min(max(at, st.t + 1), max(self.now, st.t))  # strictly after the last message, never after now
        st.t = at
        if role == "agent" and public:
            st.agent_msgs += 1
        if not self.messages:
            return
        body = self._compose(st, kind, at)
        st.tk.messages.append(Message(next(self.ids.message), author, role, public, body, at))
        if role == "agent" and public:
            st.last_agent_body, st.last_agent_at = body, at
            st.last_agent_name = self.agent_names.get(author, "Support")

    def _change(self, st: _State, at: int, name: str, old: str | None, new: str | None, actor: int | None) -> None:
        st.t = max(min(at, self.now), st.t)
        st.tk.changes.append(Change(next(self.ids.change), st.t, name, old, new, actor))

    def _status(self, st: _State, at: int, new: str, actor: int | None) -> None:
        if new != st.status:
            self._change(st, at, "status", st.status, new, actor)
            st.status = new

    # -- text --------------------------------------------------------------------------------------------
    def _compose(self, st: _State, kind: str, at: int) -> str:
        rng, tk, fmt = self.rng, st.tk, st.fmt
        if not fmt:
            fmt.update(first=st.first, n=tk.id * 7 % 90000 + 10000, ticket=tk.id, wait="hours", subject=tk.subject,
                       subject_l=tk.subject[0].lower() + tk.subject[1:] if tk.subject[1:2].islower() else tk.subject)
        if kind == "description":
            if tk.created_by_agent:
                return f"Logged on behalf of {st.first}: {tk.subject}. " + _pick(rng, tx.DETAILS).format(**fmt)
            neg = NEG_BASE[st.level] if st.level else 0.06
            pool = tx.DESCRIPTION_NEGATIVE if rng.random() < neg else tx.DESCRIPTION_NEUTRAL
            return _pick(rng, pool).format(detail=_pick(rng, tx.DETAILS).format(**fmt), **fmt)
        if kind in ("customer", "chaser", "reopen", "thanks"):
            fmt["wait"] = tx.human_wait(st.waited)
            body = self._customer_text(st, kind, fmt)
            if tk.channel == "email":
                body = tx.decorate_email(rng, body, quoted=st.last_agent_body, quoted_at=st.last_agent_at,
                                         quoted_by=st.last_agent_name, first=st.first, last=st.last, org=st.org_name)
            return body
        pools = {"agent_first": tx.AGENT_FIRST, "agent": tx.AGENT_FOLLOWUP, "agent_solve": tx.AGENT_SOLVE,
                 "apology": tx.AGENT_APOLOGY, "note": tx.NOTES, "bot": tx.BOT_MESSAGES, "spam": tx.SPAM_BODIES}
        if kind == "system":
            return _pick(rng, tx.SYSTEM_MESSAGES).format(policy=f"{tk.priority} priority", group="Support")
        if kind == "merge":
            return tx.MERGE_NOTE.format(target=tk.merged_into)
        return _pick(rng, pools[kind]).format(**fmt)

    def _customer_text(self, st: _State, kind: str, fmt: dict[str, object]) -> str:
        rng = self.rng
        neg = NEG_BASE[st.level]
        pool: tuple[str, ...]
        if st.waited > DAY:
            neg += 0.2 if st.waited < 3 * DAY else 0.35
        if st.reopened:
            neg += 0.25
        if kind == "thanks":
            pool = tx.CUSTOMER_NEGATIVE if rng.random() < neg * 0.5 else tx.CUSTOMER_POSITIVE
        elif kind == "reopen":
            pool = tx.CUSTOMER_NEGATIVE if rng.random() < neg else tx.CUSTOMER_REOPEN
        else:
            pool = tx.CUSTOMER_NEGATIVE if rng.random() < min(neg, 0.9) else tx.CUSTOMER_NEUTRAL
        return _pick(rng, pool).format(**fmt)

    # -- the walk ----------------------------------------------------------------------------------------
    def build(self, tid: int, t0: int, org_id: int | None, org_name: str, requester: Person, level: int,
              special: str | None = None, merge_target: int | None = None) -> Ticket:
        """A ticket created at ``t0`` and lived up to ``now``; ``special`` is None, "spam" or "merged"."""
        rng = self.rng
        area = AREAS[bisect.bisect(AREA_CUM, rng.random() * AREA_CUM[-1])]
        priority = PRIORITY_NAMES[bisect.bisect(PRIORITY_CUM[level], rng.random())]
        x = rng.random()
        channel = next(name for cum, name in CHANNEL_CUM if x < cum)
        by_agent = special is None and rng.random() < 0.05
        if by_agent:
            channel = "phone" if rng.random() < 0.5 else "email"
        group_id = self.group_ids[tx.AREA_GROUP.get(area, "Support")]
        tk = Ticket(tid, _pick(rng, tx.PRODUCT_AREAS[area]), requester.id, org_id, None, group_id, channel,
                    priority, "new", t0, t0, tags=[area], custom_fields={"product_area": area, "deskpulse_cdi": None},
                    created_by_agent=by_agent)
        first, _, last = requester.name.partition(" ")
        st = _State(tk, level, first, last, org_name, t0 - 1, "new")
        if special == "spam":
            tk.tags = []
            self._say(st, t0, "customer", requester.id, True, "spam")
            tk.spam = True
            tk.updated_at = max(t0, min(self.now, t0 + self._ri(300, 8 * 3600)))
            return tk
        if by_agent:
            agent = self._agent(group_id)
            tk.assignee_id = agent
            st.status = tk.status = "pending"  # logged call, waiting on the customer
            self._say(st, t0, "agent", agent, True, "description")
            st.agent_msgs = 0  # an agent-created description is not a reply
        else:
            if rng.random() < 0.3:
                tk.assignee_id = self._agent(group_id)  # auto-routed at creation
            self._say(st, t0, "customer", requester.id, True, "description")
        if channel in ("web", "email") and rng.random() < 0.06:
            self._say(st, t0 + self._ri(5, 90), "bot", self.bot.id, True, "bot")
        if rng.random() < 0.02:
            self._say(st, st.t + self._ri(1, 30), "system", self.bot.id, False, "system")
        if special == "merged":
            self._merge(st, merge_target)
        else:
            self._converse(st)
        self._finish(st)
        return tk

    def _merge(self, st: _State, target: int | None) -> None:
        at = min(self.now, self._agent_time(st.t + self._ri(600, DAY)))
        if target is None or at <= st.t:
            return
        tk = st.tk
        agent = tk.assignee_id or self._agent(tk.group_id)
        if tk.assignee_id is None:
            self._change(st, at, "assignee_id", None, str(agent), agent)
            tk.assignee_id = agent
        tk.merged_into = target
        self._say(st, at, "system", self.bot.id, False, "merge")
        self._status(st, st.t, "closed", agent)
        tk.solved_at = st.t

    def _converse(self, st: _State) -> None:
        rng, tk, lvl = self.rng, st.tk, st.level
        rounds = 1
        while rounds < 8 and rng.random() < MORE_ROUNDS_P[lvl]:
            rounds += 1
        stall_at = rng.randrange(rounds + 1) if rng.random() < STALL_P[lvl] else -1
        esc_round = rng.randrange(rounds) if rng.random() < ESCALATE_P[lvl] else -1
        if tk.created_by_agent and not self._customer_turn(st, stall=stall_at == 0):
            return
        for r in range(rounds):
            if r == esc_round:
                self._escalate(st)
            if r == rounds - 1:
                if not self._solve(st, first=r == 0, stall=stall_at == r):
                    return
                break
            if not self._agent_turn(st, "agent_first" if r == 0 else "agent", "pending", first=r == 0,
                                    stall=stall_at == r):
                return
            if not self._customer_turn(st, stall=stall_at == r + 1):
                return
        if rng.random() < REOPEN_P[lvl] and self._reopen(st):
            self._solve(st, first=False, stall=False)

    def _wait(self, st: _State, median: float, sigma: float, stall: bool) -> int:
        wait = median * math.exp(sigma * self.rng.gauss(0.0, 1.0))
        if stall:
            wait += self.rng.uniform(2, 30) * DAY
        return max(60, int(wait))

    def _agent_turn(self, st: _State, kind: str, new_status: str, *, first: bool = False, stall: bool = False) -> bool:
        tk, rng = st.tk, self.rng
        median = FIRST_WAIT[tk.priority] * WAIT_MULT[st.level] * (1.0 if first else 0.7)
        wait = self._wait(st, median, 1.0, stall)
        at = self._agent_time(st.t + wait)
        if at - st.t > DAY and rng.random() < 0.5:  # the customer chases a long wait
            chase = st.t + int((at - st.t) * rng.uniform(0.4, 0.8))
            if chase <= self.now:
                st.waited = chase - st.t
                self._say(st, chase, "customer", tk.requester_id, True, "chaser")
        if at > self.now:
            return False
        if tk.assignee_id is None:
            agent = self._agent(tk.group_id)
            self._change(st, max(st.t, at - self._ri(30, 900)), "assignee_id", None, str(agent), agent)
            tk.assignee_id = agent
        agent = tk.assignee_id
        if st.status == "new" and rng.random() < 0.15:
            self._status(st, at - self._ri(5, 120), "open", agent)  # opened before answering
        if rng.random() < 0.12:
            self._say(st, at - self._ri(10, 300), "agent", agent, False, "note")
        if rng.random() < 0.03 and new_status == "pending":
            new_status = "on_hold"  # waiting on a third party
        if st.level == 2 and st.waited > DAY and kind == "agent":
            kind = "apology"
        self._say(st, at, "agent", agent, True, kind)
        self._status(st, st.t, new_status, agent)
        return True

    def _customer_turn(self, st: _State, *, stall: bool = False) -> bool:
        tk = st.tk
        gap = self._wait(st, 4 * 3600 * (0.7 if st.level == 2 else 1.0), 1.3, stall)
        at = st.t + gap
        if at > self.now:
            return False
        st.waited = at - st.last_agent_at if st.last_agent_at else gap
        self._say(st, at, "customer", tk.requester_id, True, "customer")
        self._status(st, st.t, "open", None)
        return True

    def _solve(self, st: _State, *, first: bool, stall: bool) -> bool:
        rng, tk = self.rng, st.tk
        if rng.random() < 0.3 and not first:  # reply, the customer confirms, then the agent solves
            if not self._agent_turn(st, "agent", "pending", stall=stall):
                return False
            at = st.t + self._wait(st, 3 * 3600, 1.2, False)
            if at > self.now:
                return False
            st.waited = at - st.t
            self._say(st, at, "customer", tk.requester_id, True, "thanks")
            self._status(st, st.t, "open", None)
            at = self._agent_time(st.t + self._wait(st, 1800, 1.0, False))
            if at > self.now:
                return False
            self._status(st, at, "solved", tk.assignee_id)
        elif not self._agent_turn(st, "agent_solve", "solved", first=first, stall=stall):
            return False
        tk.solved_at = st.t
        return True

    def _escalate(self, st: _State) -> None:
        rng, tk = self.rng, st.tk
        actor = tk.assignee_id
        at = st.t + self._ri(60, 3600)
        if at > self.now:
            return
        how = rng.random()
        if how < 0.4 and tk.priority != "urgent":
            self._change(st, at, "priority", tk.priority, "urgent", actor)
            tk.priority = "urgent"
        elif how < 0.75:
            new_agent = self._agent(self.escalation_group)
            self._change(st, at, "group_id", str(tk.group_id), str(self.escalation_group), actor)
            self._change(st, at, "assignee_id", None if tk.assignee_id is None else str(tk.assignee_id),
                         str(new_agent), actor)
            tk.group_id, tk.assignee_id = self.escalation_group, new_agent
        else:
            st.t = at
            tk.tags.append("escalated")
        if actor is not None:
            self._say(st, st.t, "agent", actor, False, "note")

    def _reopen(self, st: _State) -> bool:
        at = st.t + int(self.rng.uniform(0.05, 3.5) * DAY)
        if at > self.now:
            return False
        st.reopened = True
        st.waited = 0
        self._say(st, at, "customer", st.tk.requester_id, True, "reopen")
        self._status(st, st.t, "open", None)
        return True

    def _finish(self, st: _State) -> None:
        """Auto-close, rating, effort, deletion; then ``updated_at`` = the last thing that happened."""
        rng, tk, now = self.rng, st.tk, self.now
        if st.status == "solved" and tk.solved_at is not None:
            close_at = tk.solved_at + CLOSE_AFTER + self._ri(0, 6 * 3600)
            if rng.random() < 0.3:
                rated = tk.solved_at + self._ri(600, 3 * DAY)
                if rated <= now:
                    mood = "bad" if st.level == 2 else ("meh" if st.reopened or st.waited > DAY else "good")
                    score = 1 + bisect.bisect(RATING_WEIGHTS[mood], rng.random())
                    comment = _pick(rng, tx.RATING_COMMENTS[score]) if rng.random() < 0.4 else None
                    tk.rating = Rating(next(self.ids.rating), score, comment, rated)
                    st.t = max(st.t, rated)
            if close_at <= now:
                self._status(st, max(close_at, st.t), "closed", None)
        tk.status = st.status
        if st.agent_msgs and rng.random() < 0.6:
            tk.time_spent_s = sum(int(math.exp(5.7 + 0.7 * rng.gauss(0.0, 1.0))) for _ in range(st.agent_msgs))
        tk.updated_at = max(tk.updated_at, st.t)
        if rng.random() < 0.01:
            tk.deleted = True
            tk.updated_at = max(tk.updated_at, min(now, st.t + self._ri(3600, 10 * DAY)))
