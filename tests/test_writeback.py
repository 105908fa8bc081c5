"""Write-back planning and the outbox, with a fake helpdesk (vendor behaviour is tested per connector)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from config.settings import Settings
from connectors.base import Connector, WriteRequest, WriteResult
from connectors.errors import RetriableAPIError
from sync.store import Store
from sync.writeback import apply, flagged_accounts, plan


def settings(**distress) -> Settings:
    return Settings(sources=[{"name": "fd", "kind": "freshdesk", "base_url": "http://127.0.0.1:9",
                              "api_key": "k-123456"}],
                    distress={"tag": "deskpulse_distress", **distress}, writeback={"max_writes_per_run": 100})


class FakeDesk(Connector):
    """Tags replace-on-write like Freshdesk; remembers every call; can answer 404/422 or fail."""

    kind = "freshdesk"

    def __init__(self, tickets: dict[str, list[str]]) -> None:
        self.tickets = tickets
        self.fields: dict[str, dict[str, str]] = {}
        self.calls: list[WriteRequest] = []
        self.fail_on: dict[str, str] = {}
        self.crash_after: int | None = None

    def streams(self):
        return []

    def write(self, request: WriteRequest) -> WriteResult:
        self.calls.append(request)
        mode = self.fail_on.get(request.ticket_id)
        if mode == "gone":
            return WriteResult("gone", "404")
        if mode == "refused":
            return WriteResult("refused", "422 RecordInvalid")
        if mode == "5xx":
            raise RetriableAPIError("source fd: HTTP 503 on PUT /api/v2/tickets/x", status=503)
        tags = self.tickets[request.ticket_id]
        tags = [t for t in tags if t not in request.remove_tags] + [t for t in request.add_tags if t not in tags]
        self.tickets[request.ticket_id] = tags
        self.fields.setdefault(request.ticket_id, {}).update(request.fields)
        if self.crash_after is not None and len(self.calls) >= self.crash_after:
            raise KeyboardInterrupt  # the process dies after the vendor applied the write
        return WriteResult("applied", tags=list(tags))


def seed(store: Store, *, red=("o1",), rising=(), statuses=None) -> None:
    statuses = statuses or {}
    rows = []
    for org in ("o1", "o2", "o3"):
        for i in range(3):
            tid = f"{org}-{i}"
            rows.append({"id": tid, "organization_id": org, "status": statuses.get(tid, "open"),
                         "tags": ["vip"] if i == 0 else [], "custom_fields": {}})
    store.upsert("tickets", rows, source="fd")
    hist = []
    for org in ("o1", "o2", "o3"):
        now_cdi = 85 if org in red else 60 if org in rising else 20
        before = 40 if org in rising else now_cdi
        band = "red" if now_cdi > 70 else "yellow" if now_cdi > 40 else "green"
        for day, cdi in (("2026-11-16", before), ("2026-11-23", now_cdi)):
            hist.append({"day": day, "account": f"fd:{org}", "source": "fd", "organization_id": org, "cdi": cdi,
                         "band": band, "components": json.dumps({"reasons": ["open tickets 95th pct"]})})
    store.db["cdi_history"].upsert_all(hist, pk=("day", "account"))


def desk_from(store: Store) -> FakeDesk:
    return FakeDesk({r["id"]: json.loads(r["tags"]) for r in store.query("SELECT id, tags FROM tickets")})


def sync_back(store: Store, desk: FakeDesk) -> None:
    """What the next sync does: the vendor's tags come back into the store."""
    store.upsert("tickets", [{"id": k, "tags": v} for k, v in desk.tickets.items()], source="fd")


def test_flagged_accounts_are_red_or_rising(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        seed(store, red=("o1",), rising=("o2",))
        flagged = {a.account: a for a in flagged_accounts(store, settings())}
        assert set(flagged) == {"fd:o1", "fd:o2"}
        assert flagged["fd:o2"].rise_7d == 20 and flagged["fd:o2"].band == "yellow"


def test_dry_run_plans_open_tickets_and_writes_nothing(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        seed(store, statuses={"o1-2": "solved"})
        planned = plan(store, settings())
        assert sorted(w.ticket_id for w in planned.writes) == ["o1-0", "o1-1"]  # o1-2 is solved
        assert all(w.action == "add_tag" and "CDI 85" in w.reason for w in planned.writes)
        assert store.scalar("SELECT count(*) FROM outbox") == 0


def test_apply_writes_exactly_the_plan_keeps_tags_and_second_apply_writes_nothing(tmp_path: Path) -> None:
    s = settings()
    with Store(tmp_path / "s.db") as store:
        seed(store)
        desk = desk_from(store)
        report = apply(store, s, plan(store, s), lambda src: desk)
        assert report.applied == 3 and len(desk.calls) == 3  # o1's three open tickets
        assert desk.tickets["o1-0"] == ["vip", "deskpulse_distress"]
        again = plan(store, s)
        assert again.writes == [] and again.skipped["already tagged"] == 3
        sync_back(store, desk)  # self-writes come back through the sync: still no new write
        assert plan(store, s).writes == []
        assert store.scalar("SELECT count(*) FROM outbox WHERE status='done'") == 3


def test_field_written_once_per_value(tmp_path: Path) -> None:
    s = settings(field="cf_deskpulse_cdi")
    with Store(tmp_path / "s.db") as store:
        seed(store)
        desk = desk_from(store)
        apply(store, s, plan(store, s), lambda src: desk)
        assert desk.fields["o1-1"]["cf_deskpulse_cdi"].startswith("85 | CDI 85 (red)")
        assert plan(store, s).writes == []


def test_cap_holds_and_the_rest_waits(tmp_path: Path) -> None:
    s = settings()
    with Store(tmp_path / "s.db") as store:
        seed(store, red=("o1", "o2", "o3"))
        desk = desk_from(store)
        report = apply(store, s, plan(store, s), lambda src: desk, limit=4)
        assert (report.applied, report.capped, len(desk.calls)) == (4, 5, 4)  # 9 open tickets planned
        report = apply(store, s, plan(store, s), lambda src: desk)
        assert report.applied == 5 and len(desk.calls) == 9


def test_gone_and_refused_are_recorded_and_not_retried(tmp_path: Path) -> None:
    s = settings()
    with Store(tmp_path / "s.db") as store:
        seed(store)
        desk = desk_from(store)
        desk.fail_on = {"o1-0": "gone", "o1-1": "refused"}
        report = apply(store, s, plan(store, s), lambda src: desk)
        assert (report.gone, report.refused) == (1, 1)
        statuses = dict(store.conn.execute("SELECT target, status FROM outbox").fetchall())
        assert statuses == {"o1-0": "dead", "o1-1": "dead", "o1-2": "done"}
        assert plan(store, s).writes == []


def test_transient_failure_retries_later_with_backoff(tmp_path: Path) -> None:
    s = settings()
    clock = [1_000_000.0]
    with Store(tmp_path / "s.db") as store:
        seed(store)
        desk = desk_from(store)
        desk.fail_on = {"o1-0": "5xx"}
        report = apply(store, s, plan(store, s, now=clock[0]), lambda src: desk, now=lambda: clock[0])
        assert report.failed == 1 and report.applied == 2
        assert plan(store, s, now=clock[0] + 10).writes == []  # backing off
        desk.fail_on = {}
        retry = plan(store, s, now=clock[0] + 301)
        assert [w.ticket_id for w in retry.writes] == ["o1-0"]


def test_crash_between_write_and_record_converges_without_duplicate_effects(tmp_path: Path) -> None:
    s = settings()
    with Store(tmp_path / "s.db") as store:
        seed(store, red=("o1", "o2"))
        desk = desk_from(store)
        desk.crash_after = 2
        with pytest.raises(KeyboardInterrupt):
            apply(store, s, plan(store, s), lambda src: desk)
        desk.crash_after = None
        apply(store, s, plan(store, s), lambda src: desk)
        sync_back(store, desk)
        assert plan(store, s).writes == []
        for tid in ("o1-0", "o1-1", "o1-2", "o2-0", "o2-1", "o2-2"):
            assert desk.tickets[tid].count("deskpulse_distress") == 1
        assert len(desk.calls) <= 6 + 1  # at most the one write whose record was lost is repeated


def test_removal_only_when_configured_and_only_own_tags(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        seed(store)
        desk = desk_from(store)
        desk.tickets["o3-1"].append("deskpulse_distress")  # someone else added it by hand
        store.upsert("tickets", [{"id": "o3-1", "tags": desk.tickets["o3-1"]}], source="fd")
        s = settings(remove_when_recovered=True)
        apply(store, s, plan(store, s), lambda src: desk)
        store.conn.execute("UPDATE cdi_history SET cdi = 10, band = 'green' WHERE account = 'fd:o1'")
        sync_back(store, desk)
        assert plan(store, settings()).writes == []  # default: never remove
        removal = plan(store, s).writes
        assert sorted(w.ticket_id for w in removal) == ["o1-0", "o1-1", "o1-2"]  # not o3-1: not ours
        assert {w.action for w in removal} == {"remove_tag"}
