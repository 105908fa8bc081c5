"""Write-back that never loops or clobbers (issue 10, item 3).

- Every accepted spelling of the CDI field (Freshdesk with or without ``cf_``, a Zendesk field by title or
  id, an Intercom attribute) is resolved to the store's key before planning, so the second apply after a
  sync sends nothing (end to end against the simulators, through the planner and through the daemon's job).
- ``remove_when_recovered`` removes only a tag deskpulse's own latest write explains: an agent's re-add
  after deskpulse removed its tag wins.
- One bad answer to a write call (HTML, garbage, a wrong shape) fails that one write with a one-line reason
  in the outbox; the other writes, of the same and of other sources, go on.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import responses

from config.settings import Settings
from connectors.base import WriteRequest
from connectors.errors import BadResponseError
from connectors.sim.base import Fault, SimServer
from connectors.sim.world import generate_world
from kpi_engine.distress import refresh
from sync.connector_pool import ConnectorPool
from sync.engine import SyncEngine
from sync.pipeline import Pipeline
from sync.simulators import build_simulator
from sync.store import Store
from sync.writeback import apply, own_tags, plan
from tests import intercom_kit
from tests.test_writeback import desk_from, seed, sync_back
from tests.test_writeback import settings as fd_settings

WRITE_METHODS = ("PUT", "POST", "DELETE")


@pytest.fixture(scope="module")
def world() -> Any:
    return generate_world(seed=5, tickets=500)


def vendor_writes(sim: Any) -> int:
    """Write calls the simulator served (Intercom's POST searches are reads)."""
    return sum(n for key, n in sim.served.items() if key.split(" ", 1)[0] in WRITE_METHODS
               and not key.endswith("/search"))


def sim_settings(source: dict[str, Any], url: str, field: str, where: str, name: str = "src") -> Settings:
    """``where``: the field set as the source's ``distress_field`` or as ``[distress] field``."""
    src = {**source, "name": name, "base_url": url, **({"distress_field": field} if where == "source" else {})}
    distress = {"field": field} if where == "distress" else {}
    return Settings(sources=[src], distress=distress, writeback={"max_writes_per_run": 10_000})


# kind, configured spelling, the key the store keeps the field under, where it is configured
SPELLINGS = [
    ("freshdesk", "deskpulse_cdi", "cf_deskpulse_cdi", "distress"),
    ("freshdesk", "cf_deskpulse_cdi", "cf_deskpulse_cdi", "source"),
    ("zendesk", "deskpulse_cdi", "360002", "source"),  # by title (the simulator's field 360002)
    ("zendesk", "360002", "360002", "distress"),
    ("intercom", "deskpulse_cdi", "deskpulse_cdi", "source"),
]


@pytest.mark.parametrize(("kind", "configured", "store_key", "where"), SPELLINGS)
def test_each_field_spelling_makes_no_write_on_the_second_apply(tmp_path: Path, world: Any, kind: str,
                                                                 configured: str, store_key: str, where: str) -> None:
    sim, source = build_simulator(kind, world, speedup=1000)
    with SimServer(sim) as server, Store(tmp_path / "s.db") as store:
        settings = sim_settings(source, server.url, configured, where)
        now = int(world.now)
        pool = ConnectorPool(settings)
        try:
            assert all(r.ok for r in SyncEngine(store, settings).sync_all())
            refresh(store.conn, settings=settings.distress, as_of=now, history_days=8)
            first = plan(store, settings, now=now, connectors=pool)
            fields = [w for w in first.writes if w.action == "set_field"]
            assert fields and all(w.value.startswith(f"{store_key}=") for w in fields)
            report = apply(store, settings, first, pool, now=lambda: now)
            assert report.applied == len(first.writes) and report.failed == 0
            assert all(r.ok for r in SyncEngine(store, settings).sync_all())  # self-writes come back
            written = vendor_writes(sim)
            second = plan(store, settings, now=now, connectors=pool)
            apply(store, settings, second, pool, now=lambda: now)
        finally:
            pool.close()
        assert second.writes == [], [w.key for w in second.writes][:5]
        assert vendor_writes(sim) == written  # not one more PUT: no updated_at bump, no loop
        stored = json.loads(store.scalar("SELECT custom_fields FROM tickets WHERE source='src' AND id=?",
                                         [fields[0].ticket_id]))
        assert str(stored[store_key]).split(" |")[0].isdigit()


def test_daemon_job_resolves_the_field_too(tmp_path: Path, world: Any) -> None:
    """The daemon's refresh job (sync -> CDI -> write-back) with Freshdesk's field given without ``cf_``."""
    sim, source = build_simulator("freshdesk", world, speedup=1000)
    with SimServer(sim) as server:
        settings = sim_settings(source, server.url, "deskpulse_cdi", "distress")
        pipeline = Pipeline(settings, tmp_path / "s.db", clock=lambda: float(world.now))
        assert pipeline.sync("src")
        pipeline.refresh(writeback=True)
        first = vendor_writes(sim)
        assert first > 0
        assert pipeline.sync("src")
        pipeline.refresh(writeback=True)
        assert vendor_writes(sim) == first


def test_unknown_zendesk_field_title_skips_field_writes_but_tags_go_out(tmp_path: Path, world: Any) -> None:
    sim, source = build_simulator("zendesk", world, speedup=1000)
    with SimServer(sim) as server, Store(tmp_path / "s.db") as store:
        settings = sim_settings(source, server.url, "No such field", "source")
        now = int(world.now)
        pool = ConnectorPool(settings)
        try:
            assert all(r.ok for r in SyncEngine(store, settings).sync_all())
            refresh(store.conn, settings=settings.distress, as_of=now, history_days=8)
            planned = plan(store, settings, now=now, connectors=pool)
        finally:
            pool.close()
    assert {w.action for w in planned.writes} == {"add_tag"}
    assert planned.skipped["field 'No such field' not found on src"] == 1


# -- removal on recovery: only deskpulse's own tag --------------------------------------------------------
DAY = 86_400


def test_an_agents_re_add_after_deskpulse_removed_its_tag_is_never_removed(tmp_path: Path) -> None:
    s = fd_settings(remove_when_recovered=True)
    t0 = 1_800_000_000
    with Store(tmp_path / "s.db") as store:
        seed(store)  # o1 red: o1-0, o1-1, o1-2 open
        desk = desk_from(store)
        assert apply(store, s, plan(store, s, now=t0), lambda src: desk, now=lambda: t0).applied == 3
        sync_back(store, desk)
        store.conn.execute("UPDATE cdi_history SET cdi = 10, band = 'green' WHERE account = 'fd:o1'")
        removal = plan(store, s, now=t0 + DAY)
        assert sorted(w.ticket_id for w in removal.writes) == ["o1-0", "o1-1", "o1-2"]
        apply(store, s, removal, lambda src: desk, now=lambda: t0 + DAY)
        sync_back(store, desk)
        assert own_tags(store, "deskpulse_distress") == []
        desk.tickets["o1-0"].append("deskpulse_distress")  # an agent puts it back by hand
        sync_back(store, desk)
        assert plan(store, s, now=t0 + 2 * DAY).writes == []  # the old done add no longer counts
        # o1 is flagged again: deskpulse adds to o1-1 and o1-2; o1-0 already carries the agent's tag
        store.conn.execute("UPDATE cdi_history SET cdi = 85, band = 'red' WHERE account = 'fd:o1'")
        again = plan(store, s, now=t0 + 3 * DAY)
        assert sorted(w.ticket_id for w in again.writes) == ["o1-1", "o1-2"]
        apply(store, s, again, lambda src: desk, now=lambda: t0 + 3 * DAY)
        sync_back(store, desk)
        store.conn.execute("UPDATE cdi_history SET cdi = 10, band = 'green' WHERE account = 'fd:o1'")
        second_removal = plan(store, s, now=t0 + 4 * DAY)
        assert sorted(w.ticket_id for w in second_removal.writes) == ["o1-1", "o1-2"]  # ours again; o1-0 not
        apply(store, s, second_removal, lambda src: desk, now=lambda: t0 + 4 * DAY)
        assert desk.tickets["o1-0"] == ["vip", "deskpulse_distress"]


def test_a_failed_removal_is_retried_it_did_not_remove_anything(tmp_path: Path) -> None:
    s = fd_settings(remove_when_recovered=True)
    t0 = 1_800_000_000
    with Store(tmp_path / "s.db") as store:
        seed(store)
        desk = desk_from(store)
        apply(store, s, plan(store, s, now=t0), lambda src: desk, now=lambda: t0)
        sync_back(store, desk)
        store.conn.execute("UPDATE cdi_history SET cdi = 10, band = 'green' WHERE account = 'fd:o1'")
        desk.fail_on = {"o1-0": "5xx"}
        apply(store, s, plan(store, s, now=t0 + DAY), lambda src: desk, now=lambda: t0 + DAY)
        assert [w.ticket_id for w in plan(store, s, now=t0 + 2 * DAY).writes] == ["o1-0"]


# -- one bad answer fails one write -------------------------------------------------------------------------
def test_bad_answer_to_intercom_post_tags_fails_one_write_and_the_rest_go_on(tmp_path: Path, world: Any) -> None:
    ic_sim, ic_source = build_simulator("intercom", world, speedup=1000)
    fd_sim, fd_source = build_simulator("freshdesk", world, speedup=1000)
    ic_sim.inject(Fault("html", count=1, path="/tags"))
    with SimServer(ic_sim) as ic, SimServer(fd_sim) as fd, Store(tmp_path / "s.db") as store:
        settings = Settings(sources=[{**ic_source, "name": "ic", "base_url": ic.url},
                                     {**fd_source, "name": "fd", "base_url": fd.url}],
                            writeback={"max_writes_per_run": 10_000})
        now = int(world.now)
        pool = ConnectorPool(settings)
        try:
            assert all(r.ok for r in SyncEngine(store, settings).sync_all())
            refresh(store.conn, settings=settings.distress, as_of=now, history_days=8)
            planned = plan(store, settings, now=now, connectors=pool)
            assert {w.source for w in planned.writes} == {"ic", "fd"}
            report = apply(store, settings, planned, pool, now=lambda: now)
        finally:
            pool.close()
    assert report.failed == 1 and report.applied == len(planned.writes) - 1
    failed = store_rows(tmp_path / "s.db", "SELECT source, status, last_error FROM outbox WHERE status != 'done'")
    assert len(failed) == 1 and failed[0]["source"] == "ic" and failed[0]["status"] == "failed"
    assert failed[0]["last_error"].startswith("source ic: answer to POST /tags is not JSON (HTTP 200, text/html")
    assert "\n" not in failed[0]["last_error"]


def store_rows(path: Path, sql: str) -> list[dict[str, Any]]:
    with Store(path) as store:
        return store.query(sql)


@pytest.mark.parametrize(("kind", "reason"), [
    ("garbage", "is not JSON (HTTP 200, application/json"),
    ("shape", "is a JSON array, not an object"),
    ("no_id", "lacks id"),
])
def test_intercom_tag_create_answer_is_checked(kind: str, reason: str) -> None:
    fake = intercom_kit.FakeTime()
    sim = intercom_kit.make_sim(fake=fake)
    sim.inject(Fault(kind, count=1, path="/tags"))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rm:
        intercom_kit.mount(rm, sim)
        connector = intercom_kit.make_connector(fake)
        expected = re.escape(f"source {intercom_kit.SOURCE}: answer to POST /tags {reason}")
        with pytest.raises(BadResponseError, match=expected):
            connector.write(WriteRequest("101", add_tags=["deskpulse_distress"]))
        assert "deskpulse_distress" not in sim.world.ticket(101).tags  # nothing attached with a made-up id
        assert connector.write(WriteRequest("101", add_tags=["deskpulse_distress"])).outcome == "applied"
        assert "deskpulse_distress" in sim.world.ticket(101).tags


def test_intercom_tag_listing_answer_is_checked_for_removal() -> None:
    fake = intercom_kit.FakeTime()
    with responses.RequestsMock() as rm:
        rm.add(responses.GET, f"{intercom_kit.BASE}/tags", body="<html>proxy error</html>", status=200,
               content_type="text/html")
        connector = intercom_kit.make_connector(fake)
        with pytest.raises(BadResponseError, match="answer to GET /tags is not JSON"):
            connector.write(WriteRequest("101", remove_tags=["deskpulse_distress"]))


def test_freshdesk_unreadable_pre_read_fails_the_write_instead_of_clobbering_tags() -> None:
    """The Freshdesk PUT replaces the tag list: a pre-read read as "no tags" would wipe the agents' tags."""
    from connectors.freshdesk import FreshdeskConnector
    from connectors.freshdesk.settings import FreshdeskSource

    base = "https://acme.freshdesk.com"
    source = FreshdeskSource(kind="freshdesk", name="fd", base_url=base, api_key="k-123456", max_retries=0)
    with responses.RequestsMock() as rm:
        rm.add(responses.GET, f"{base}/api/v2/tickets/7", body="<html>Service unavailable</html>", status=200,
               content_type="text/html")
        connector = FreshdeskConnector(source)
        with pytest.raises(BadResponseError, match="source fd: answer to GET /api/v2/tickets/7 is not JSON"):
            connector.write(WriteRequest("7", add_tags=["deskpulse_distress"]))
        assert [c.request.method for c in rm.calls] == ["GET"]  # no PUT went out


def test_an_unexpected_connector_error_fails_one_write_not_the_run(tmp_path: Path) -> None:
    s = fd_settings()
    with Store(tmp_path / "s.db") as store:
        seed(store)
        desk = desk_from(store)
        original = desk.write

        def flaky(request: WriteRequest) -> Any:
            if request.ticket_id == "o1-0":
                raise KeyError("id")  # a connector bug on one odd answer
            return original(request)

        desk.write = flaky  # type: ignore[method-assign]
        report = apply(store, s, plan(store, s), lambda src: desk)
        assert (report.failed, report.applied) == (1, 2)
        row = store.query("SELECT status, last_error FROM outbox WHERE target = 'o1-0'")[0]
        assert row["status"] == "failed" and "internal error KeyError" in row["last_error"]


def test_status_data_lists_failed_writes_with_their_reason(tmp_path: Path) -> None:
    from rich.console import Console

    from sync.cli.context import AppContext
    from sync.cli.status import show_status, status_data

    s = fd_settings()
    db = tmp_path / "s.db"
    with Store(db) as store:
        seed(store)
        desk = desk_from(store)
        desk.fail_on = {"o1-0": "5xx", "o1-1": "refused"}
        apply(store, s, plan(store, s), lambda src: desk)
    console = Console(record=True, width=200)
    actx = AppContext(db_path=db, console=console, _settings=s)
    failed = {r["target"]: r for r in status_data(actx)["failed_writes"]}
    assert set(failed) == {"o1-0", "o1-1"}
    assert failed["o1-0"]["last_error"] == "source fd: HTTP 503 on PUT /api/v2/tickets/x"
    show_status(actx)
    text = console.export_text()
    assert "write failed fd ticket o1-0 (retry after" in text and "HTTP 503 on PUT /api/v2/tickets/x" in text
    assert "write failed fd ticket o1-1 (given up after 1 attempt(s)): refused: 422 RecordInvalid" in text


def test_a_failed_write_no_longer_wanted_is_superseded_and_leaves_status(tmp_path: Path) -> None:
    from sync.cli.context import AppContext
    from sync.cli.status import status_data

    s = fd_settings()
    t0 = 1_800_000_000
    db = tmp_path / "s.db"
    with Store(db) as store:
        seed(store)
        desk = desk_from(store)
        desk.fail_on = {"o1-0": "5xx"}
        apply(store, s, plan(store, s, now=t0), lambda src: desk, now=lambda: t0)
        assert [r["target"] for r in status_data(AppContext(db_path=db, _settings=s))["failed_writes"]] == ["o1-0"]
        apply(store, s, plan(store, s, now=t0 + 10), lambda src: desk, now=lambda: t0 + 10)  # still wanted
        assert store.scalar("SELECT status FROM outbox WHERE target = 'o1-0'") == "failed"
        store.conn.execute("UPDATE cdi_history SET cdi = 10, band = 'green' WHERE account = 'fd:o1'")
        desk.fail_on = {}
        assert apply(store, s, plan(store, s, now=t0 + 900), lambda src: desk, now=lambda: t0 + 900).applied == 0
        assert store.scalar("SELECT status FROM outbox WHERE target = 'o1-0'") == "superseded"
    assert status_data(AppContext(db_path=db, _settings=s))["failed_writes"] == []
