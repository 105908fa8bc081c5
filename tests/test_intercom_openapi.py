"""The Intercom simulator speaks the version the connector asks for, as Intercom's OpenAPI description says.

Every response the connector receives in a sync and in a write-back (every endpoint it calls) is validated
against the OpenAPI schema of the version it sent in ``Intercom-Version`` (2.16 by default, and 2.11 for a
user who pins it), with ``openapi-schema-validator``. The spec files are read in place from
``../shared/vendor-specs/intercom/`` (``tests/intercom_spec.py``), with their known defects repaired narrowly
(``DEFECTS``): the tests below also check that each repair is still needed and that the spec's own examples
validate with the repairs, so validation is exactly as strict as the spec where the spec is right.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import responses

from connectors.base import WriteRequest
from connectors.sim.base import SimRequest, responses_callback
from connectors.sim.intercom import IntercomSim
from connectors.sim.model import World
from connectors.sim.world import generate_world
from sync.store import Store
from tests.intercom_kit import BASE, TOKEN, FakeTime, make_connector, make_source, small_world, sync
from tests.intercom_spec import (
    BROKEN_EXAMPLES,
    CONNECTOR_OPERATIONS,
    DEFECTS,
    VERSIONS,
    Defect,
    SpecValidator,
    available,
    repaired_spec,
    validator,
)

pytestmark = pytest.mark.skipif(not available(), reason="Intercom OpenAPI files not found (../shared/vendor-specs)")

#: path template -> regex of the concrete paths the connector requests
TEMPLATES = [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path, method)
             for path, method in CONNECTOR_OPERATIONS]


def template(path: str, method: str) -> str:
    for regex, tpl, meth in TEMPLATES:
        if meth == method and regex.match(path):
            return tpl
    raise AssertionError(f"the connector called {method.upper()} {path}, which is not in CONNECTOR_OPERATIONS")


@functools.cache
def world() -> World:
    """A generated history (every part type, unassignments, ratings, merges), built once, copied per sim."""
    generated = generate_world(seed=3, tickets=150, now=1_719_000_000 + 200 * 86400, days=180)
    assert any(t.merged_into is not None for t in generated.tickets), "no merged ticket: merges not exercised"
    return generated


class Recorder:
    """Mounts the simulator on ``responses`` and validates each answer against the version requested."""

    def __init__(self, rm: responses.RequestsMock, sim: IntercomSim) -> None:
        self.sim = sim
        self.seen: dict[tuple[str, str, str], int] = {}
        self.problems: list[str] = []
        inner = responses_callback(sim)

        def callback(request: Any) -> tuple[int, dict[str, str], bytes]:
            status, headers, body = inner(request)
            path = request.path_url.split("?")[0]
            method = request.method.lower()
            version = request.headers.get("Intercom-Version")
            tpl = template(path, method)
            if status == 200:
                self.seen[(version, tpl, method)] = self.seen.get((version, tpl, method), 0) + 1
                for err in validator(version).errors(tpl, method, json.loads(body))[:5]:
                    self.problems.append(f"{version} {method.upper()} {path}: {err}")
            return status, headers, body

        for method in ("GET", "POST", "PUT", "DELETE"):
            rm.add_callback(method, re.compile(re.escape(BASE) + r"/.*"), callback=callback)


@pytest.fixture
def rm() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.mark.parametrize("version", [None, "2.11"])
def test_every_response_the_connector_gets_validates_against_the_version_it_sent(
        rm: responses.RequestsMock, version: str | None) -> None:
    """A full sync and a write-back (tag, untag, custom attribute) against the simulator: each 200 answer
    conforms to the OpenAPI schema of the ``Intercom-Version`` the connector sent (2.16 unless pinned)."""
    fake = FakeTime()
    sim = IntercomSim(copy.deepcopy(world()), token=TOKEN, clock=fake.clock)
    recorder = Recorder(rm, sim)
    source = make_source(per_page=60) if version is None else make_source(per_page=60, intercom_version=version)
    connector = make_connector(fake, source)
    store = Store(":memory:")
    cursors: dict[str, Any] = {}
    sync(connector, store, cursors)
    conversation = store.scalar("SELECT id FROM tickets ORDER BY id LIMIT 1")
    result = connector.write(WriteRequest(conversation, add_tags=["deskpulse-distress"], fields={"cdi": "71"}))
    assert result.outcome == "applied", result
    # a new process: it resolves the contact's company with GET /contacts/{id}, and a tag id with GET /tags
    fake.advance(3600)
    later = make_connector(fake, source)
    sync(later, store, cursors, streams=("conversations",))
    assert later.write(WriteRequest(conversation, remove_tags=["deskpulse-distress"])).outcome == "applied"
    sent = version or "2.16"
    assert {v for v, _, _ in recorder.seen} == {sent}
    assert {(tpl, m) for _, tpl, m in recorder.seen} == set(CONNECTOR_OPERATIONS), "an endpoint was not called"
    assert recorder.problems == []
    assert store.scalar("SELECT COUNT(*) FROM quarantine") == 0


@pytest.mark.parametrize("version", VERSIONS)
def test_simulator_renders_the_requested_version(rm: responses.RequestsMock, version: str) -> None:
    """Only the requested version's fields: 2.16 priority levels, 0 for unassigned, handling times and the
    rating's answer time; 2.11 none of those."""
    sim = IntercomSim(copy.deepcopy(small_world()), token=TOKEN, clock=FakeTime().clock)
    headers = {"Authorization": f"Bearer {TOKEN}", "Intercom-Version": version}
    def get(cid: int) -> dict[str, Any]:
        return json.loads(sim.handle(SimRequest("GET", f"/conversations/{cid}", {}, headers, b"")).body)

    urgent, unassigned = get(101), get(102)
    if version == "2.16":
        assert (urgent["priority"], unassigned["priority"], get(104)["priority"]) == ("urgent", "none", "low")
        assert unassigned["admin_assignee_id"] == 0
        assert urgent["statistics"]["handling_time"] == urgent["statistics"]["last_close_at"] - (
            urgent["statistics"]["first_assignment_at"])
        assert "adjusted_handling_time" in urgent["statistics"]
        assert urgent["conversation_rating"]["updated_at"] > urgent["conversation_rating"]["created_at"]
    else:
        assert (urgent["priority"], unassigned["priority"]) == ("priority", "not_priority")
        assert unassigned["admin_assignee_id"] is None
        assert "handling_time" not in urgent["statistics"] and "adjusted_handling_time" not in urgent["statistics"]
        assert "updated_at" not in urgent["conversation_rating"]
    for cid in (101, 102, 103, 104):
        assert validator(version).errors("/conversations/{conversation_id}", "get", get(cid)) == []


@pytest.mark.parametrize(("version", "path", "method"),
                         [(v, p, m) for v in VERSIONS for p, m in CONNECTOR_OPERATIONS])
def test_the_specs_own_examples_validate_once_its_defects_are_repaired(version: str, path: str,
                                                                       method: str) -> None:
    """The repairs are enough: Intercom's examples for the endpoints we call validate (bar BROKEN_EXAMPLES)."""
    val = validator(version)
    checked = 0
    for name, example in val.examples(path, method):
        if (version, path, method, name) in BROKEN_EXAMPLES:
            assert val.errors(path, method, example), f"{name} is listed as broken but validates"
            continue
        assert val.errors(path, method, example) == [], name
        checked += 1
    assert checked or path == "/conversations/{conversation_id}/tags/{tag_id}" or list(val.examples(path, method))


@pytest.mark.parametrize("defect", DEFECTS, ids=lambda d: f"{d.version}-{d.kind}-{d.schema}-{d.prop}")
def test_each_listed_spec_defect_is_shown_by_its_example(defect: Defect) -> None:
    """Each repair is needed: without it, the example it cites fails against the spec."""
    unrepaired = SpecValidator(defect.version, repaired_spec(defect.version, skip=defect))
    path, method, name = defect.evidence
    example = dict(unrepaired.examples(path, method))[name]
    try:
        errors = unrepaired.errors(path, method, example)
    except Exception as exc:  # noqa: BLE001 - the dangling $ref: the reference cannot be resolved at all
        errors = [f"{type(exc).__name__}: {exc}"]
    assert errors, f"{defect} is no longer needed"


def test_validation_is_strict_where_the_spec_is_right() -> None:
    """Guards against a validator that accepts anything: the defects the API-NOTES review found in the old
    simulator (null for a non-nullable integer, a number for a string attribute, a missing required
    contact property, 2.11's priority word in 2.16) are all rejected."""
    v11, v16 = validator("2.11"), validator("2.16")
    conv = dict(next(v16.examples("/conversations/{conversation_id}", "put"))[1])
    assert v16.errors("/conversations/{conversation_id}", "put", conv) == []
    assert v16.errors("/conversations/{conversation_id}", "put", {**conv, "priority": "not_priority"})
    stats = {**conv["statistics"], "time_to_admin_reply": None} if conv.get("statistics") else {
        "type": "conversation_statistics", "time_to_admin_reply": None}
    assert v16.errors("/conversations/{conversation_id}", "put", {**conv, "statistics": stats})
    company = dict(next(v11.examples("/companies/{company_id}", "get"))[1])
    assert v11.errors("/companies/{company_id}", "get", {**company, "custom_attributes": {"arr": 1.5}})
    contact = dict(next(v11.examples("/contacts/{contact_id}", "get"))[1])
    contact.pop("browser")
    assert any("browser" in e for e in v11.errors("/contacts/{contact_id}", "get", contact))


@pytest.mark.parametrize("version", VERSIONS)
def test_rating_of_an_unassigned_conversation_names_no_teammate(version: str) -> None:
    """``conversation_rating.teammate`` is a required reference in 2.11 whose id may be null: no admin is
    invented for an unassigned conversation (the rating row then has no assignee)."""
    world = small_world()
    world.ticket(101).assignee_id = None
    sim = IntercomSim(world, token=TOKEN, clock=FakeTime().clock)
    headers = {"Authorization": f"Bearer {TOKEN}", "Intercom-Version": version}
    conv = json.loads(sim.handle(SimRequest("GET", "/conversations/101", {}, headers, b"")).body)
    assert conv["conversation_rating"]["teammate"] == {"type": "admin", "id": None}
    assert validator(version).errors("/conversations/{conversation_id}", "get", conv) == []
