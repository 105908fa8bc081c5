"""Freshdesk write-back (tags replace on PUT, so the connector unions) and the connector inside the engine."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from config.settings import Settings
from connectors.base import WriteRequest
from connectors.errors import AuthenticationError
from connectors.freshdesk import FreshdeskConnector, build_http
from connectors.sim.base import serve
from connectors.sim.freshdesk import FreshdeskSim
from connectors.sim.world import generate_world
from sync.engine import SyncEngine
from sync.store import Store
from tests.freshdesk_kit import API_KEY, FakeTime, make_connector, make_world, mounted, run


def test_write_keeps_every_existing_tag_and_sets_the_custom_field() -> None:
    world = make_world(5)
    world.ticket(3).tags = ["vip", "billing", "old_flag"]  # type: ignore[union-attr]
    sim = FreshdeskSim(world, api_key=API_KEY)
    with mounted(sim):
        conn = make_connector()
        result = conn.write(WriteRequest("3", add_tags=["deskpulse_distress", "vip"], remove_tags=["old_flag"],
                                         fields={"deskpulse_cdi": "82: open tickets 95th pct"}))
    assert result.outcome == "applied"
    assert world.ticket(3).tags == ["vip", "billing", "deskpulse_distress"]  # type: ignore[union-attr]
    assert result.tags == ["vip", "billing", "deskpulse_distress"]
    assert world.ticket(3).custom_fields["deskpulse_cdi"] == "82: open tickets 95th pct"  # type: ignore[union-attr]
    assert sim.requests_made("GET /api/v2/tickets/3") == 1  # re-read right before the PUT
    assert sim.requests_made("PUT /api/v2/tickets/3") == 1


def test_a_write_with_nothing_to_change_sends_no_put() -> None:
    world = make_world(3)
    world.ticket(2).tags = ["deskpulse_distress"]  # type: ignore[union-attr]
    before = world.ticket(2).updated_at  # type: ignore[union-attr]
    sim = FreshdeskSim(world, api_key=API_KEY)
    with mounted(sim):
        result = make_connector().write(WriteRequest("2", add_tags=["deskpulse_distress"]))
    assert result.outcome == "applied" and result.tags == ["deskpulse_distress"]
    assert sim.requests_made("PUT") == 0 and world.ticket(2).updated_at == before  # type: ignore[union-attr]


def test_write_outcomes_gone_and_refused() -> None:
    sim = FreshdeskSim(make_world(3), api_key=API_KEY)
    with mounted(sim):
        conn = make_connector()
        gone = conn.write(WriteRequest("99", add_tags=["x"]))
        refused = conn.write(WriteRequest("1", fields={"cf_not_a_field": "1"}))
        bad_id = conn.write(WriteRequest("1/../2", add_tags=["x"]))
    assert gone.outcome == "gone"
    assert refused.outcome == "refused" and "400" in refused.detail
    assert bad_id.outcome == "refused" and sim.requests_made("1/../2") == 0


def test_wrong_key_raises_authentication_error_without_leaking_it() -> None:
    sim = FreshdeskSim(make_world(2), api_key="the-right-key")
    with mounted(sim):
        with pytest.raises(AuthenticationError) as info:
            make_connector().write(WriteRequest("1", add_tags=["x"]))
        with pytest.raises(AuthenticationError) as listing:
            run(make_connector().stream("tickets"))
    for exc in (info.value, listing.value):
        assert API_KEY not in str(exc) and "401" in str(exc)


def test_written_ticket_comes_back_in_the_next_incremental_run() -> None:
    fake = FakeTime()
    world = make_world(6)
    sim = FreshdeskSim(world, api_key=API_KEY, clock=fake.clock)
    with mounted(sim):
        conn = make_connector(fake=fake)
        first = run(conn.stream("tickets"))
        conn.write(WriteRequest("2", add_tags=["deskpulse_distress"]))
        again = run(conn.stream("tickets"), first.cursor)
    assert again.ids("tickets") == {"2"}
    assert "deskpulse_distress" in again.tables["tickets"]["2"]["tags"] and "t2" in again.tables["tickets"]["2"]["tags"]


def test_sync_engine_over_loopback_matches_ground_truth_and_keeps_secrets_out(tmp_path: Path,
                                                                              caplog: pytest.LogCaptureFixture) -> None:
    world = generate_world(seed=5, tickets=100)
    sim = FreshdeskSim(world, api_key=API_KEY, calls_per_minute=5000)
    truth = sim.ground_truth()
    server = serve(sim)
    try:
        settings = Settings(sources=[{"name": "fd", "kind": "freshdesk", "base_url": server.url, "api_key": API_KEY}])
        source = settings.sources[0]

        def factory(src: object, _settings: Settings) -> FreshdeskConnector:
            return FreshdeskConnector(source, http=build_http(source, sleep=lambda _s: None))

        with Store(tmp_path / "fd.db") as store, caplog.at_level(logging.DEBUG):
            engine = SyncEngine(store, settings, connector_factory=factory)
            report = engine.sync_all()[0]
            assert report.ok, report.streams
            count = store.scalar
            assert count("SELECT count(*) FROM tickets WHERE source='fd'") == truth["tickets_total"]
            assert count("SELECT count(*) FROM messages") == truth["messages"]
            assert count("SELECT count(*) FROM ratings") == truth["ratings"]
            assert count("SELECT count(*) FROM tickets WHERE status='deleted'") == \
                truth["deleted_tickets"] + truth["spam_tickets"]
            severities = {r["priority"]: r["severity"] for r in store.query("SELECT priority, severity FROM tickets")}
            assert severities.get("4") == 3 and severities.get("1") == 1
            cursor = json.loads(store.scalar("SELECT cursor FROM sync_state WHERE stream='tickets'"))
            assert set(cursor) == {"updated_since", "seen", "history_partial_before"}  # a finished pass
            sent, conversations = sim.requests_made(), sim.requests_made("/conversations")
            again = engine.sync_all()[0]
            assert again.ok
            assert count("SELECT count(*) FROM tickets") == truth["tickets_total"]
            assert sim.requests_made("/conversations") == conversations  # nothing changed: none re-read
            assert sim.requests_made() - sent < 20  # one listing per stream
            dump = "\n".join(str(r) for r in store.query("SELECT * FROM sync_state")) + caplog.text
            assert API_KEY not in dump
    finally:
        server.stop()
