"""The seeded world generator: determinism, internal consistency, realistic shares, distress ground truth."""

from __future__ import annotations

import statistics
import time
from collections import Counter

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from connectors.sim import world_text as tx
from connectors.sim.model import World
from connectors.sim.world import generate_world

NOW = 1_749_643_200  # a Wednesday, 12:00 UTC
DAY = 86400
UNSOLVED = ("new", "open", "pending", "on_hold")


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(seed=11, tickets=6000, now=NOW)


@pytest.fixture(scope="module")
def vader() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


def strip_mail(body: str) -> str:
    """Drop quoted history and signatures the way the sentiment code is expected to."""
    for marker in ("\n\nOn ", "\n\n--", "\n\nSent from", "\n\nBest regards", "\n\nThanks,"):
        body = body.split(marker)[0]
    return body


def test_same_seed_same_world_and_other_seed_differs() -> None:
    a = generate_world(seed=5, tickets=400, now=NOW)
    b = generate_world(seed=5, tickets=400, now=NOW)
    c = generate_world(seed=6, tickets=400, now=NOW)
    assert a == b
    assert [t.subject for t in a.tickets] != [t.subject for t in c.tickets]


def test_default_now_avoids_the_export_exclusion_minute() -> None:
    before = int(time.time())
    w = generate_world(seed=1, tickets=30)
    assert w.now % 60 == 0
    assert before - 180 <= w.now <= before - 120
    assert max(t.updated_at for t in w.tickets) <= w.now


def test_population_sizes(world: World) -> None:
    assert len(world.tickets) == 6000
    assert len(world.orgs) == 150  # tickets / 40
    assert sum(p.role == "agent" for p in world.people) >= 6000 // 150
    assert [g.name for g in world.groups if g.escalation] == ["Tier 2"]
    assert {f.id: f.key for f in world.fields} == {360001: "product_area", 360002: "deskpulse_cdi"}
    customers = [p for p in world.people if p.role == "customer"]
    with_org = [p for p in customers if p.org_id is not None]
    assert 2.0 <= len(with_org) / len(world.orgs) <= 4.5
    assert any(p.org_id is None for p in customers)
    assert len({o.name for o in world.orgs}) == len(world.orgs)
    assert len({p.email for p in world.people}) == len(world.people)
    small = generate_world(seed=1, tickets=100, now=NOW)
    assert len(small.orgs) == 25 and sum(p.role == "agent" for p in small.people) >= 8


def test_ids_are_globally_unique(world: World) -> None:
    assert [t.id for t in world.tickets] == list(range(1, 6001))
    kinds = {
        "messages": [m.id for t in world.tickets for m in t.messages],
        "changes": [c.id for t in world.tickets for c in t.changes],
        "ratings": [t.rating.id for t in world.tickets if t.rating],
        "people": [p.id for p in world.people],
        "orgs": [o.id for o in world.orgs],
        "groups": [g.id for g in world.groups],
    }
    seen: set[int] = set(range(1, 6001))
    for ids in kinds.values():
        assert len(set(ids)) == len(ids)
        assert not seen & set(ids)
        seen |= set(ids)


def test_timestamps_are_ordered_and_never_after_now(world: World) -> None:
    people = {p.id: p for p in world.people}
    orgs = {o.id: o for o in world.orgs}
    for t in world.tickets:
        times = [m.created_at for m in t.messages]
        assert times == sorted(times), t.id
        assert [c.at for c in t.changes] == sorted(c.at for c in t.changes), t.id
        events = times + [c.at for c in t.changes] + ([t.rating.created_at] if t.rating else [])
        assert all(t.created_at <= e <= t.updated_at <= world.now for e in events), t.id
        if t.messages:
            assert t.messages[0].created_at == t.created_at
        assert people[t.requester_id].created_at <= t.created_at
        if t.org_id is not None:
            assert orgs[t.org_id].created_at <= t.created_at
            assert people[t.requester_id].org_id == t.org_id
    creation = [t.created_at for t in world.tickets]
    assert creation == sorted(creation)  # ids follow creation time


def test_status_history_is_a_consistent_chain(world: World) -> None:
    for t in world.tickets:
        status_changes = [c for c in t.changes if c.field == "status"]
        current = status_changes[0].old if status_changes else t.status
        assert current in ("new", "pending"), t.id
        for change in status_changes:
            assert change.old == current, t.id
            current = change.new
        assert current == t.status
        solves = [c.at for c in status_changes if c.new in ("solved", "closed") and c.old not in ("solved", "closed")]
        if t.status in ("solved", "closed"):
            assert t.solved_at is not None and t.solved_at == solves[-1], t.id
        if t.rating is not None:
            assert t.solved_at is not None and t.rating.created_at >= t.solved_at
        assert 1 <= (t.rating.score if t.rating else 3) <= 5


def test_shares_are_realistic(world: World) -> None:
    n = len(world.tickets)
    solved = [t for t in world.tickets if t.solved_at is not None and t.merged_into is None]
    assert 0.03 <= sum(t.created_by_agent for t in world.tickets) / n <= 0.07
    assert 0.25 <= sum(t.rating is not None for t in solved) / len(solved) <= 0.35
    assert 0.50 <= sum(t.time_spent_s is not None for t in world.tickets) / n <= 0.65
    assert 0.005 <= sum(t.deleted for t in world.tickets) / n <= 0.02
    assert 0.002 <= sum(t.spam for t in world.tickets) / n <= 0.01
    assert 0.002 <= sum(t.merged_into is not None for t in world.tickets) / n <= 0.01
    reopened = sum(any(c.field == "status" and c.old in ("solved", "closed") and c.new in UNSOLVED
                       for c in t.changes) for t in world.tickets)
    escalated = sum(any(c.field == "priority" and c.new == "urgent" for c in t.changes)
                    or any(c.field == "group_id" for c in t.changes) or "escalated" in t.tags for t in world.tickets)
    assert 0.03 <= reopened / n <= 0.12
    assert 0.04 <= escalated / n <= 0.15
    assert set(Counter(t.priority for t in world.tickets)) == {"low", "normal", "high", "urgent"}
    assert set(Counter(t.channel for t in world.tickets)) == {"email", "web", "chat", "phone", "api"}
    roles = Counter((m.role, m.public) for t in world.tickets for m in t.messages)
    assert roles[("agent", False)] > 0 and roles[("bot", True)] > 0 and roles[("system", False)] > 0
    merged = [t for t in world.tickets if t.merged_into is not None]
    assert all(t.status == "closed" and t.merged_into < t.id for t in merged)


def test_backlog_near_now(world: World) -> None:
    backlog = [t for t in world.tickets if t.status in UNSOLVED and not t.deleted and not t.spam]
    recent = [t for t in world.tickets if t.created_at >= NOW - 30 * DAY]
    share = sum(t.status in UNSOLVED for t in recent) / len(recent)
    assert 0.08 <= share <= 0.35
    ages = [(NOW - t.created_at) / 3600 for t in backlog]
    assert min(ages) < 24 and max(ages) > 7 * 24
    assert all(t.solved_at is None or any(c.old in ("solved", "closed") for c in t.changes) for t in backlog)


def test_seasonality_and_growth(world: World) -> None:
    weekday = Counter((t.created_at // DAY + 3) % 7 for t in world.tickets)
    assert min(weekday[d] for d in range(5)) > 2 * max(weekday[5], weekday[6])
    hours = Counter(t.created_at % DAY // 3600 for t in world.tickets)
    assert sum(hours[h] for h in range(9, 19)) > 0.6 * len(world.tickets)
    start = NOW - 730 * DAY
    first = sum(t.created_at < start + 365 * DAY for t in world.tickets)
    assert len(world.tickets) - first > 1.2 * first


def _group_stats(world: World, vader: SentimentIntensityAnalyzer) -> dict[str, dict[str, float]]:
    distressed = world.distressed_org_ids()
    out: dict[str, dict[str, list[float]]] = {"distressed": {}, "other": {}}
    for t in world.tickets:
        if t.org_id is None or t.deleted or t.spam or t.created_at < NOW - 60 * DAY:
            continue
        stats = out["distressed" if t.org_id in distressed else "other"]
        stats.setdefault("tickets", []).append(1)
        replies = [m.created_at for m in t.messages[1:] if m.role == "agent" and m.public]
        if replies:
            stats.setdefault("first_reply", []).append(replies[0] - t.created_at)
        for m in t.messages:
            if m.role == "customer" and m.created_at >= NOW - 30 * DAY:
                stats.setdefault("negative", []).append(vader.polarity_scores(strip_mail(m.body))["compound"] <= -0.05)
        if t.rating:
            stats.setdefault("low_csat", []).append(t.rating.score <= 2)
        stats.setdefault("reopened", []).append(any(c.old in ("solved", "closed") and c.new in UNSOLVED
                                                    for c in t.changes))
    n_dis = len(distressed)
    result = {}
    for name, stats in out.items():
        orgs = n_dis if name == "distressed" else len(world.orgs) - n_dis
        result[name] = {"tickets_per_org": len(stats["tickets"]) / orgs,
                        "first_reply": statistics.mean(stats["first_reply"]),
                        **{k: statistics.mean(stats[k]) for k in ("negative", "low_csat", "reopened")}}
    return result


def test_distressed_orgs_are_measurably_worse(world: World, vader: SentimentIntensityAnalyzer) -> None:
    distressed = [o for o in world.orgs if o.distressed]
    assert len(distressed) == round(150 * 0.08)
    assert all(NOW - 61 * DAY <= (o.distress_onset or 0) <= NOW - 29 * DAY for o in distressed)
    assert all(o.distress_onset is None for o in world.orgs if not o.distressed)
    stats = _group_stats(world, vader)
    bad, ok = stats["distressed"], stats["other"]
    assert bad["tickets_per_org"] > 2 * ok["tickets_per_org"]
    assert bad["first_reply"] > 1.5 * ok["first_reply"]
    assert bad["negative"] > ok["negative"] + 0.25
    assert bad["low_csat"] > ok["low_csat"] + 0.2
    assert bad["reopened"] > 2 * ok["reopened"]


def test_customer_mail_carries_quotes_and_signatures(world: World) -> None:
    bodies = [m.body for t in world.tickets if t.channel == "email" for m in t.messages[1:] if m.role == "customer"]
    quoted = [b for b in bodies if " wrote:\n> " in b]
    assert len(quoted) > 0.15 * len(bodies)
    assert any(b.endswith("Sent from my iPhone") for b in bodies)
    assert any("\n\n--\n" in b for b in bodies)
    assert all(line.startswith("> ") for b in quoted for line in b.split(" wrote:\n", 1)[1].splitlines())
    assert not any(" wrote:" in m.body for t in world.tickets if t.channel != "email" for m in t.messages)


def test_template_tones_hold_under_vader(vader: SentimentIntensityAnalyzer) -> None:
    values = {"subject": "Export fails", "subject_l": "export fails", "detail": "", "first": "Jane", "n": 12345,
              "wait": "3 days", "ticket": 7}
    for text in tx.CUSTOMER_NEGATIVE + tx.DESCRIPTION_NEGATIVE:
        assert vader.polarity_scores(text.format(**values))["compound"] <= -0.05, text
    for text in tx.CUSTOMER_POSITIVE:
        assert vader.polarity_scores(text.format(**values))["compound"] >= 0.05, text


def test_messages_false_keeps_the_history_without_text() -> None:
    w = generate_world(seed=3, tickets=1500, now=NOW, messages=False)
    assert len(w.tickets) == 1500 and not any(t.messages for t in w.tickets)
    assert any(t.changes for t in w.tickets) and any(t.rating for t in w.tickets)
    assert all(t.created_at <= t.updated_at <= NOW for t in w.tickets)


def test_rejects_nonsense_sizes() -> None:
    with pytest.raises(ValueError, match="tickets"):
        generate_world(tickets=-1)
