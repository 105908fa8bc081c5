"""The simulator's template-rendered audits must be exactly the reference ``render_audit`` dicts, encoded."""

from __future__ import annotations

import json

import pytest

from connectors.sim.world import generate_world
from connectors.sim.zendesk.events import audit_bytes
from connectors.sim.zendesk.render import audit_groups, render_audit


@pytest.mark.parametrize("comments", [True, False])
def test_audit_bytes_equal_the_encoded_reference_audit(comments: bool) -> None:
    world = generate_world(seed=11, tickets=300, now=1_790_000_000, messages=True)
    checked = 0
    for t in world.tickets:
        for k, (ts, items) in enumerate(audit_groups(t)):
            expected = json.dumps(render_audit(t, k, ts, items, comments), separators=(",", ":")).encode()
            assert audit_bytes(t, k, ts, items, comments) == expected
            checked += 1
    assert checked > 1000  # creation, comments, changes and ratings all went through


def test_audit_bytes_escape_non_ascii_and_quotes_like_json_dumps() -> None:
    world = generate_world(seed=3, tickets=20, now=1_790_000_000, messages=True)
    t = next(t for t in world.tickets if t.messages)
    t.messages[0].body = 'naïve "quoted" \u2603 line\nbreak'
    t.subject = "ünïcode ☃ \"subject\""
    for k, (ts, items) in enumerate(audit_groups(t)):
        got = audit_bytes(t, k, ts, items, True)
        assert got == json.dumps(render_audit(t, k, ts, items, True), separators=(",", ":")).encode()
        assert got.isascii()
