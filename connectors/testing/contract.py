"""The connector contract (DESIGN.md "Incremental sync contract"), written once, run by every connector package.

Each test drives the real ``SyncEngine`` and the real connector against the vendor's simulator served on
127.0.0.1, over the small generated world of ``kit.contract_world`` (a deleted and a spam ticket, and
``TIE_SIZE`` tickets sharing one ``updated_at``). What differs between helpdesks lives in the plugin's
``ContractSpec``; nothing below names a vendor.

Use it from a connector package's tests::

    from connectors.testing import ConnectorContract

    class TestMyDeskContract(ConnectorContract):
        kind = "mydesk"  # an installed plugin whose ConnectorPlugin(contract=...) names a ContractSpec

and, for pytest's detailed assertion messages, ``pytest.register_assert_rewrite("connectors.testing")`` in
the package's ``conftest.py`` before importing it (the ``deskpulse_contract`` pytest plugin does that when
deskpulse is installed). A helpdesk that cannot expose deletions (Intercom serves no deleted or spam
conversation, API-NOTES 3.4) declares ``delete=None``: its ground truth is what the API lists, and the
"marked, not dropped" test is skipped; one without write-back (``writes=False``) skips the write test.
"""

from __future__ import annotations

import base64
import json
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import pytest

from connectors.base import Page, WriteRequest
from connectors.sim.base import Fault
from connectors.sim.model import Ticket
from connectors.testing.kit import (
    CANARY,
    TIE_SIZE,
    VOLATILE,
    ContractSpec,
    Crash,
    EngineRunner,
    Harness,
    assert_ok,
    contract_spec,
    contract_world,
    crash_after,
    diff,
    harness,
    query,
    stored,
    tie_ids,
    truth,
)

CRASH_CHUNKS = 4  # the crash-after-every-page sweep is split so each test stays around a second


@dataclass
class CleanRun:
    db: Path
    dump: dict[str, list[tuple[Any, ...]]]
    pages: list[tuple[str, list[str]]]  # (stream, ticket ids on the page) per committed page, in order


def assert_matches_truth(hx: Harness, db: Path) -> None:
    """The store holds exactly what the simulator serves: tickets (deleted ones marked), message counts
    per ticket, updated_at per ticket, people, organizations and ratings."""
    want, got = truth(hx.desk, hx.sim), stored(db, hx.name)
    assert set(got.tickets) == set(want.tickets), (
        f"missing {sorted(set(want.tickets) - set(got.tickets))[:10]}, "
        f"unexpected {sorted(set(got.tickets) - set(want.tickets))[:10]}")
    assert {i for i, d in got.tickets.items() if d} == {i for i, d in want.tickets.items() if d}
    wrong = {i: (want.messages.get(i, 0), got.messages.get(i, 0)) for i in set(want.messages) | set(got.messages)
             if want.messages.get(i, 0) != got.messages.get(i, 0)}
    assert not wrong, f"message counts (want, got) differ for tickets {dict(list(wrong.items())[:10])}"
    stale = {i: (u, got.updated_at[i]) for i, u in want.updated_at.items() if got.updated_at[i] != u}
    assert not stale, f"updated_at (want, got) differs for tickets {dict(list(stale.items())[:10])}"
    assert (got.people, got.organizations, got.ratings) == (want.people, want.organizations, want.ratings)


def live_tickets(hx: Harness, n: int) -> list[Ticket]:
    """``n`` tickets the vendor lists, not deleted, with messages, outside the tie group; open ones first."""
    world = hx.sim.world
    ties = tie_ids(world)
    pool = [t for t in world.tickets if hx.desk.listed(t) and not (t.deleted or t.spam) and t.messages
            and str(t.id) not in ties]
    pool.sort(key=lambda t: (t.status in ("solved", "closed"), t.id))
    return pool[:n]


def encodings(secret: str) -> set[str]:
    """The secret as text, URL-quoted, and inside base64 at every alignment (a Basic header, say)."""
    forms = {secret, quote(secret, safe="")}
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + secret.encode()).decode()
        start = -(-shift * 4 // 3) + 1  # first character that depends on the secret only
        forms.add(encoded[start:-4])
    return forms


class ConnectorContract:
    """The contract cases, for the connector of kind ``kind`` (or override the ``desk`` fixture)."""

    kind: ClassVar[str] = ""

    @pytest.fixture
    def desk(self) -> ContractSpec:
        if not self.kind:
            raise TypeError(f"{type(self).__name__}: set kind = '<your plugin kind>' or override the desk fixture")
        return contract_spec(self.kind)

    @pytest.fixture
    def hx(self, desk: ContractSpec, deskpulse_engine: EngineRunner, request: pytest.FixtureRequest
           ) -> Iterator[Harness]:
        gap = desk.known_gaps.get(request.node.originalname)
        if gap:
            request.applymarker(pytest.mark.xfail(strict=True, reason=f"{desk.kind}: {gap}"))
        with harness(desk, deskpulse_engine) as h:
            yield h

    @pytest.fixture(scope="class")
    def clean_run(self, tmp_path_factory: pytest.TempPathFactory, deskpulse_engine: EngineRunner
                  ) -> Callable[[ContractSpec], CleanRun]:
        """One uninterrupted first sync per helpdesk (small pages), shared by the tests that compare to it."""
        cache: dict[str, CleanRun] = {}

        def get(desk: ContractSpec) -> CleanRun:
            if desk.kind not in cache:
                db = tmp_path_factory.mktemp(f"clean-{desk.kind}") / "clean.db"
                pages: list[tuple[str, list[str]]] = []
                with harness(desk, deskpulse_engine) as h:
                    assert_ok(h.run(db, on_page=lambda src, stream, page, rows: pages.append(
                        (stream, [r["id"] for r in page.records.get("tickets", ())]))))
                    cache[desk.kind] = CleanRun(db, h.dump(db), pages)
            return cache[desk.kind]

        return get

    def test_complete_sync_equals_the_simulators_ground_truth(self, hx: Harness, tmp_path: Path) -> None:
        streams: Counter[str] = Counter()
        reports = hx.run(tmp_path / "s.db", on_page=lambda src, stream, page, rows: streams.update([stream]))
        assert_ok(reports)
        assert_matches_truth(hx, tmp_path / "s.db")
        assert query(tmp_path / "s.db", "SELECT count(*) FROM quarantine")[0][0] == 0
        assert sum(streams.values()) >= 15 and max(streams.values()) >= 5  # really a multi-page sync
        world = hx.sim.world
        hidden = {str(t.id) for t in world.tickets if t.deleted or t.spam}
        assert len(hidden) >= 2
        stored_ids = set(stored(tmp_path / "s.db", hx.name).tickets)
        if hx.desk.exposes_deletions:
            assert hidden <= stored_ids
        else:  # the documented limitation: what the vendor never serves cannot be stored (nor marked)
            assert not hidden & stored_ids



    @pytest.mark.parametrize("chunk", range(CRASH_CHUNKS))
    def test_crash_after_any_page_then_resume_equals_a_clean_run(
            self, hx: Harness, chunk: int, tmp_path: Path, clean_run: Callable[[ContractSpec], CleanRun]) -> None:
        clean = clean_run(hx.desk)
        total = len(clean.pages)
        assert total >= 15 and sum(1 for stream, ids in clean.pages if ids) >= 5
        for k in range(1 + chunk, total + 1, CRASH_CHUNKS):
            db = tmp_path / f"crash-{k}.db"
            with pytest.raises(Crash):
                hx.run(db, on_page=crash_after(k))
            assert_ok(hx.run(db))  # a new engine and connector over the same file: the next process
            assert hx.dump(db) == clean.dump, f"crash after page {k}/{total} ({clean.pages[k - 1][0]}), then resume"



    def test_a_tie_straddling_page_boundaries_loses_nothing_on_a_first_sync(
            self, hx: Harness, clean_run: Callable[[ContractSpec], CleanRun]) -> None:
        clean = clean_run(hx.desk)
        ties = tie_ids(contract_world())
        assert len(ties) == TIE_SIZE
        pages_with_ties = [ids for _, ids in clean.pages if ties & set(ids)]
        assert len(pages_with_ties) >= 2, "the tie group must straddle a page boundary to test anything"
        got = stored(clean.db, hx.name)
        assert ties <= set(got.tickets)
        assert len({got.updated_at[i] for i in ties}) == 1



    def test_a_tie_straddling_page_boundaries_loses_nothing_incrementally(self, hx: Harness, tmp_path: Path) -> None:
        db = tmp_path / "s.db"
        assert_ok(hx.run(db))
        hx.fake.advance()
        touched = live_tickets(hx, TIE_SIZE)
        for t in touched:  # the clock stands still: every touch lands on the same second
            hx.desk.touch(hx.sim, t.id)
        stamps = {t.updated_at for t in touched}
        assert len(stamps) == 1
        hx.fake.advance()
        pages: list[list[str]] = []
        assert_ok(hx.run(db, on_page=lambda src, stream, page, rows: pages.append(
            [r["id"] for r in page.records.get("tickets", ())])))
        ids = {str(t.id) for t in touched}
        assert sum(1 for p in pages if ids & set(p)) >= 2, "the touched tie must straddle a page boundary"
        got = stored(db, hx.name)
        assert {i: got.updated_at[i] for i in ids} == dict.fromkeys(ids, stamps.pop())
        assert_matches_truth(hx, db)



    def test_an_incremental_run_brings_exactly_the_changes(self, hx: Harness, tmp_path: Path) -> None:
        db = tmp_path / "s.db"
        assert_ok(hx.run(db))
        before = hx.dump(db)
        hx.fake.advance()
        touched = live_tickets(hx, 4)
        for t in touched[:3]:
            hx.desk.touch(hx.sim, t.id)
        body = "contract: one more question about the invoice"
        hx.desk.add_message(hx.sim, touched[3].id, body)
        hx.fake.advance()
        assert_ok(hx.run(db))
        changed = diff(before, hx.dump(db))
        ids = {str(t.id) for t in touched}
        assert {row[1] for row in changed.pop("tickets")} == ids  # (source, id, ...): exactly the changed tickets
        (message,) = changed.pop("messages")
        assert message[2] == str(touched[3].id) and body in message[7]  # ticket_id, body
        for table, rows in changed.items():  # e.g. the reopen the reply caused: only rows of the edited tickets
            cols = [c for c in hx.runner.tables[table]["columns"] if c not in VOLATILE.get(table, ())]
            assert "ticket_id" in cols, f"{table} rows changed, yet no edit touched that table"
            assert {row[cols.index("ticket_id")] for row in rows} <= ids, f"{table} rows of unedited tickets changed"
        assert_matches_truth(hx, db)



    def test_edits_made_during_a_sync_are_in_the_next_run(self, hx: Harness, tmp_path: Path) -> None:
        """After every committed page, one ticket is edited and another gets a reply while the clock runs on:
        edits behind the run's position, ahead of it and inside the page being read. The next quiet run
        must have them all."""
        db = tmp_path / "s.db"
        rng = random.Random(7)
        live = [t.id for t in live_tickets(hx, 10_000)]
        replies: list[tuple[int, str]] = []

        def edit(src: str, stream: str, page: Page, rows: int) -> None:
            tickets = page.records.get("tickets") or []
            hx.desk.touch(hx.sim, int(tickets[0]["id"]) if tickets and int(tickets[0]["id"]) in live
                          else rng.choice(live))
            replies.append((rng.choice(live), f"contract: written while the sync ran ({len(replies)})"))
            hx.desk.add_message(hx.sim, *replies[-1])
            hx.fake.advance(rng.choice((0, 1, 5, 30)))

        assert_ok(hx.run(db, on_page=edit))
        assert len(replies) >= 15
        hx.fake.advance()
        assert_ok(hx.run(db))
        assert_matches_truth(hx, db)
        for tid, body in replies:
            assert query(db, "SELECT count(*) FROM messages WHERE ticket_id=? AND body LIKE ?",
                         (str(tid), f"%{body}%"))[0][0] == 1, body



    def test_a_run_whose_pages_are_minutes_apart_still_completes(self, hx: Harness, tmp_path: Path) -> None:
        """A slow consumer (a long backoff on the next request, a store busy for a while): 90 s per page."""
        db = tmp_path / "s.db"
        assert_ok(hx.run(db, on_page=lambda src, stream, page, rows: hx.fake.advance(90)))
        assert_matches_truth(hx, db)



    def test_deleted_and_spam_tickets_are_marked_not_dropped(self, hx: Harness, tmp_path: Path) -> None:
        if not hx.desk.exposes_deletions:
            pytest.skip(f"{hx.desk.kind} cannot expose deletions (ContractSpec.delete is None)")
        db = tmp_path / "s.db"
        assert_ok(hx.run(db))
        gone, spam = live_tickets(hx, 2)
        kept = {i: n for i, n in query(db, "SELECT ticket_id, count(*) FROM messages GROUP BY 1")}
        hx.fake.advance()
        assert hx.desk.delete is not None
        hx.desk.delete(hx.sim, gone.id, False)
        hx.desk.delete(hx.sim, spam.id, True)
        hx.fake.advance()
        assert_ok(hx.run(db))
        rows = dict(query(db, "SELECT id, status FROM tickets WHERE id IN (?, ?)", (str(gone.id), str(spam.id))))
        assert rows == {str(gone.id): "deleted", str(spam.id): "deleted"}
        for t in (gone, spam):  # what was synced before the deletion stays (KPIs exclude it by status)
            assert query(db, "SELECT count(*) FROM messages WHERE ticket_id=?", (str(t.id),))[0][0] == kept[str(t.id)]



    def test_429_and_5xx_bursts_are_retried_to_the_same_store(
            self, hx: Harness, tmp_path: Path, clean_run: Callable[[ContractSpec], CleanRun]) -> None:
        path = hx.desk.ticket_path
        hx.sim.inject(Fault("429", count=2, path="", retry_after=1))  # the run's very first request, twice
        # then one ticket-listing request meets five failures in a row (the client allows six retries)
        hx.sim.inject(Fault("5xx", count=2, path=path, status=503))
        hx.sim.inject(Fault("429", count=1, path=path, retry_after=2))
        hx.sim.inject(Fault("drop", count=1, path=path))
        hx.sim.inject(Fault("5xx", count=1, path=path, status=502))
        db = tmp_path / "s.db"
        assert_ok(hx.run(db))
        assert hx.sim.faults == []  # every injected failure was met ...
        assert (hx.sim.statuses[429], hx.sim.statuses[503], hx.sim.statuses[502]) == (3, 2, 1)
        assert hx.fake.sleeps  # ... and waited out on the fake clock only
        assert hx.dump(db) == clean_run(hx.desk).dump



    def test_malformed_records_are_quarantined_and_the_rest_is_stored(self, hx: Harness, tmp_path: Path) -> None:
        hx.sim.inject(Fault("malformed", count=2, path=hx.desk.ticket_path))
        db = tmp_path / "s.db"
        assert_ok(hx.run(db))
        bad = query(db, "SELECT stream, record_id, error, raw FROM quarantine")
        assert len(bad) == 2, bad
        assert all(error and raw for _, _, error, raw in bad)
        want, got = truth(hx.desk, hx.sim), stored(db, hx.name)
        missing = set(want.tickets) - set(got.tickets)
        assert len(missing) <= 2 and not set(got.tickets) - set(want.tickets)
        assert {rid for _, rid, _, _ in bad if rid} <= missing | set(want.tickets)
        wrong = [i for i in got.tickets if got.messages.get(i, 0) != want.messages.get(i, 0)]
        assert not wrong
        assert (got.people, got.organizations) == (want.people, want.organizations)
        # a rating that travels inside the quarantined record (Intercom) is quarantined with it
        inside = sum(1 for t in hx.sim.world.tickets if str(t.id) in missing and t.rating)
        assert want.ratings - inside <= got.ratings <= want.ratings



    def test_a_run_with_nothing_new_costs_the_declared_requests(self, desk: ContractSpec, tmp_path: Path,
                                                                deskpulse_engine: EngineRunner) -> None:
        with harness(desk, deskpulse_engine, small_pages=False) as hx:  # production page sizes
            db = tmp_path / "s.db"
            assert_ok(hx.run(db))
            before, stored_before = hx.served(), hx.dump(db)
            hx.fake.advance()
            (report,) = hx.run(db)
            after = hx.served()
        spent = {key: n - before.get(key, 0) for key, n in after.items() if n != before.get(key, 0)}
        assert spent == dict(desk.quiet_run)
        assert report.ok and report.requests == sum(desk.quiet_run.values())
        assert hx.dump(db) == stored_before



    def test_a_refused_credential_never_leaks(self, hx: Harness, tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                              capfd: pytest.CaptureFixture[str]) -> None:
        caplog.set_level(logging.DEBUG)
        caplog.set_level(logging.DEBUG, logger="deskpulse")  # whatever level an earlier CLI test left it at
        db = tmp_path / "s.db"
        reports = hx.run(db, source={hx.desk.secret: CANARY})
        (report,) = reports
        assert not report.ok
        assert f"authentication failed for source {hx.name}" in (report.error or "")
        assert hx.sim.statuses[401] >= 1 and sum(hx.sim.statuses.values()) == hx.sim.statuses[401]
        assert any(r.name == "deskpulse.http" and r.levelno == logging.DEBUG for r in caplog.records)  # really captured
        out, err = capfd.readouterr()
        texts = {"report": repr(reports), "logs": caplog.text + repr([r.args for r in caplog.records]),
                 "stdout": out, "stderr": err}
        files = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("s.db")}
        assert "s.db" in files
        for form in encodings(CANARY):
            for where, text in texts.items():
                assert form not in text, f"credential ({form!r}) in {where}"
            for name, blob in files.items():
                assert form.encode() not in blob, f"credential ({form!r}) in {name}"

    # -- write-back ---------------------------------------------------------------------------------------
    def test_the_same_write_twice_changes_the_ticket_once(self, hx: Harness, tmp_path: Path) -> None:
        """Write-back replays a write whose outcome it did not record (a crash after the call): adding a
        tag twice must leave one tag, and removing it must take it away, as the next sync shows."""
        if not hx.plugin.writes:
            pytest.skip(f"{hx.desk.kind} does not support write-back")
        db = tmp_path / "s.db"
        assert_ok(hx.run(db))
        # a closed ticket refuses updates on some helpdesks (Zendesk: 422 RecordInvalid): write to one that is not
        ticket = next(t for t in live_tickets(hx, 10_000) if t.status != "closed")
        tid, tag = str(ticket.id), hx.desk.write_tag
        connector = hx.factory(hx.settings().sources[0], hx.settings())
        first = connector.write(WriteRequest(tid, add_tags=[tag]))
        again = connector.write(WriteRequest(tid, add_tags=[tag]))
        assert (first.outcome, again.outcome) == ("applied", "applied"), (first, again)
        hx.fake.advance()
        assert_ok(hx.run(db))
        (tags,) = query(db, "SELECT tags FROM tickets WHERE id=?", (tid,))[0]
        assert json.loads(tags).count(tag) == 1, tags
        removed = connector.write(WriteRequest(tid, remove_tags=[tag]))
        assert removed.outcome == "applied", removed
        hx.fake.advance()
        assert_ok(hx.run(db))
        (tags,) = query(db, "SELECT tags FROM tickets WHERE id=?", (tid,))[0]
        assert tag not in json.loads(tags), tags
        assert_matches_truth(hx, db)
