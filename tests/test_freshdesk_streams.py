"""The small Freshdesk streams: since-filtered listings, their fallback, and the full listings."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import responses

from connectors.normalize import to_epoch
from connectors.sim.freshdesk import FreshdeskSim
from tests.freshdesk_kit import API_KEY, BASE, NOW, FakeTime, make_connector, make_source, make_world, mounted, run


def test_contacts_use_the_underscore_filter_and_advance_only_after_the_listing() -> None:
    world = make_world(3)
    fake = FakeTime()
    no_lookback = make_source(lookback="0")  # the listing mechanics alone; the lookback has its own tests
    with mounted(FreshdeskSim(world, api_key=API_KEY)) as rsps:
        got = run(make_connector(no_lookback, fake=fake, per_page=2).stream("contacts"))
        sent = [parse_qs(urlsplit(c.request.url).query) for c in rsps.calls]
    assert got.ids("people") == {"301", "302", "303"}
    assert all(r["role"] == "customer" for r in got.tables["people"].values())
    assert sent[0]["_updated_since"] == ["1970-01-01T00:00:00Z"]
    assert [p.cursor for p in got.pages[:-1]] == [{"since": "1970-01-01T00:00:00Z"}] * (len(got.pages) - 1)
    newest = max(p.updated_at for p in world.people if p.role == "customer")
    assert to_epoch(got.cursor["since"]) == newest
    # A contact edited later comes back in the next run, the others do not.
    world.person(302).updated_at = newest + 500  # type: ignore[union-attr]
    with mounted(FreshdeskSim(world, api_key=API_KEY)):
        again = run(make_connector(no_lookback, fake=fake).stream("contacts"), got.cursor)
    assert again.ids("people") == {"302", "303"}  # 303 holds the cursor's second: the inclusive re-read


def test_a_refused_since_filter_falls_back_to_a_full_listing_and_remembers_it() -> None:
    entries = [{"id": 1, "ticket_id": 5, "agent_id": 2, "time_spent": "00:45", "executed_at": "2024-01-01T10:00:00Z",
                "created_at": "2024-01-01T10:00:00Z"}]

    def reply(request: object) -> tuple[int, dict[str, str], str]:
        query = parse_qs(urlsplit(request.url).query)  # type: ignore[attr-defined]
        if "executed_after" in query:
            body = {"description": "Validation failed",
                    "errors": [{"field": "executed_after", "message": "Unexpected/invalid field in request",
                                "code": "invalid_field"}]}
            return 400, {"Content-Type": "application/json"}, json.dumps(body)
        return 200, {"Content-Type": "application/json"}, json.dumps(entries)

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.GET, BASE + "/api/v2/time_entries", callback=reply)
        conn = make_connector()
        first = run(conn.stream("time_entries"))
        again = run(conn.stream("time_entries"), first.cursor)
        statuses = [c.response.status_code for c in rsps.calls]
    assert first.tables["time_entries"]["1"]["seconds"] == 45 * 60
    assert first.cursor["full"] is True and again.ids("time_entries") == {"1"}
    assert statuses == [400, 200, 200]  # the refusal is not repeated on the next run


def test_time_entries_re_read_a_week_before_the_cursor() -> None:
    world = make_world(10)
    with mounted(FreshdeskSim(world, api_key=API_KEY)) as rsps:
        conn = make_connector()
        got = run(conn.stream("time_entries"))
        run(conn.stream("time_entries"), got.cursor)
        last = parse_qs(urlsplit(rsps.calls[-1].request.url).query)
    assert got.ids("time_entries") == {str(7_000_000_000 + t.id) for t in world.tickets if t.time_spent_s}
    assert to_epoch(last["executed_after"][0]) == to_epoch(got.cursor["since"]) - 7 * 86400


def test_ratings_groups_agents_companies() -> None:
    world = make_world(10)
    with mounted(FreshdeskSim(world, api_key=API_KEY)):
        conn = make_connector(value_field="arr")
        got = run(conn.stream("satisfaction_ratings"))
        ratings_cursor = got.cursor
        for name in ("groups", "agents", "companies"):
            run(conn.stream(name), into=got)
    ratings = got.tables["ratings"]
    assert set(ratings) == {str(t.rating.id) for t in world.tickets if t.rating}  # type: ignore[union-attr]
    for tk in world.tickets:
        if tk.rating:
            assert ratings[str(tk.rating.id)]["score_1_5"] == tk.rating.score  # the sim's 5-point scale round-trips
    newest = max(t.rating.created_at for t in world.tickets if t.rating)  # type: ignore[union-attr]
    assert to_epoch(ratings_cursor["since"]) == newest - 3600 < NOW  # min(newest, run start) - lookback (1h)
    assert got.ids("groups") == {"401", "402"}
    assert {p["role"] for p in got.tables["people"].values()} == {"agent"}
    assert {o["id"]: o["value"] for o in got.tables["organizations"].values()} == {"101": 12000.0, "102": 500.5}
    assert conn.ctx.agent_ids == {"201", "202"}  # conversations will use them
