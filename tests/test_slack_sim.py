"""The Slack simulator answers like Slack: plain-text webhooks, HTTP-200 Web API errors, 429s, Block Kit rules."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from connectors.sim.base import Fault, SimRequest, SimResponse
from connectors.sim.slack import MAX_CUMULATIVE, SlackSim, cumulative_size, validate_blocks
from tests.fake_time import FakeTime

HOOK = "/services/T000/B000/XXXX"


Clock = FakeTime  # the one fake clock (tests/fake_time.py)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock: Clock) -> SlackSim:
    return SlackSim(webhook_path=HOOK, bot_token="xoxb-sim", channels=("#support", "ops"), clock=clock)


def _post(sim: SlackSim, path: str, body: Any, *, ctype: str = "application/json",
          token: str | None = None) -> SimResponse:
    headers = {"Content-Type": ctype} if ctype else {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return sim.handle(SimRequest("POST", path, {}, headers, raw))


def _api(sim: SlackSim, body: Any, token: str | None = "xoxb-sim", **kw: Any) -> tuple[int, dict[str, Any]]:
    resp = _post(sim, "/api/chat.postMessage", body, token=token, **kw)
    return resp.status, json.loads(resp.body)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


# -- Block Kit rules -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("blocks", "problem"), [
    ([_section("x")] * 51, "51 blocks (max 50)"),
    ([_section("x" * 3001)], "3,001 characters (max 3,000)"),
    ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "151 characters (max 150)"),
    ([{"type": "header", "text": {"type": "mrkdwn", "text": "*h*"}}], "must be plain_text"),
    ([{**_section("x"), "block_id": "b" * 256}], "block_id"),
    ([{**_section("x"), "block_id": "a"}, {"type": "divider", "block_id": "a"}], "duplicate block_id"),
    ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}], "11 fields (max 10)"),
    ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}], "2,001 characters (max 2,000)"),
    ([{"type": "section"}], "needs text or fields"),
    ([_section("")], "must not be empty"),
    ([{"type": "context", "elements": []}], "elements must be 1-10"),
    ([{"type": "markdown", "text": "m" * 6001}] * 2, "12,002 characters (max 12,000)"),
    ([{"type": "table"}], "unknown block type"),
    ({"type": "section"}, "must be a JSON array"),
])
def test_validate_blocks_reports_each_limit(blocks: Any, problem: str) -> None:
    problems = validate_blocks(blocks)
    assert any(problem in p for p in problems), problems


def test_validate_blocks_accepts_blocks_at_the_limits() -> None:
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": "h" * 150}},
              {"type": "section", "text": {"type": "mrkdwn", "text": "s" * 3000},
               "fields": [{"type": "mrkdwn", "text": "f" * 2000}] * 10, "block_id": "b" * 255},
              {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 10},
              {"type": "divider"}] + [{"type": "divider"}] * 46
    assert len(blocks) == 50
    assert validate_blocks(blocks) == []
    assert SlackSim.validate_blocks(blocks) == []


# -- incoming webhook ----------------------------------------------------------------------------------
def test_webhook_accepts_and_records_with_a_plain_text_ok(sim: SlackSim) -> None:
    resp = _post(sim, HOOK, {"text": "hello", "blocks": [_section("hi")]})
    assert (resp.status, resp.body, resp.headers["Content-Type"].split(";")[0]) == (200, b"ok", "text/plain")
    assert sim.messages == [{"text": "hello", "blocks": [_section("hi")]}]


def test_webhook_accepts_the_form_encoded_payload_field(sim: SlackSim) -> None:
    body = urlencode({"payload": json.dumps({"text": "via form"})}).encode()
    resp = _post(sim, HOOK, body, ctype="application/x-www-form-urlencoded")
    assert resp.body == b"ok" and sim.messages[0]["text"] == "via form"


@pytest.mark.parametrize(("path", "body", "status", "answer"), [
    (HOOK, b"{not json", 400, b"invalid_payload"),
    (HOOK, [1, 2], 400, b"invalid_payload"),
    (HOOK, {"username": "x"}, 400, b"no_text"),
    (HOOK, {"text": "t", "blocks": [_section("x" * 3001)]}, 400, b"invalid_blocks"),
    (HOOK, {"text": "t", "blocks": [_section("x" * 2900)] * 5}, 400, b"invalid_blocks"),
    ("/services/T000/B000/WRONG", {"text": "t"}, 404, b"no_service"),
])
def test_webhook_errors_are_plain_text(sim: SlackSim, path: str, body: Any, status: int, answer: bytes) -> None:
    resp = _post(sim, path, body)
    assert (resp.status, resp.body) == (status, answer)
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert sim.messages == []


def test_archived_channel_and_revoked_webhook(sim: SlackSim) -> None:
    sim.archive("#support")
    resp = _post(sim, HOOK, {"text": "t"})
    assert (resp.status, resp.body) == (410, b"channel_is_archived")
    sim.revoke_webhook()
    assert _post(sim, HOOK, {"text": "t"}).body == b"no_service"


def test_webhook_rate_limit_is_one_per_second_by_the_sim_clock(sim: SlackSim, clock: Clock) -> None:
    assert _post(sim, HOOK, {"text": "1"}).body == b"ok"
    clock.now += 0.25
    limited = _post(sim, HOOK, {"text": "2"})
    assert (limited.status, limited.headers["Retry-After"]) == (429, "1")
    clock.now += 0.75
    assert _post(sim, HOOK, {"text": "3"}).body == b"ok"
    assert [m["text"] for m in sim.messages] == ["1", "3"]


def test_injected_server_fault_uses_the_webhook_text_envelope(sim: SlackSim) -> None:
    sim.inject(Fault("5xx", status=500, path="/services/"))
    resp = _post(sim, HOOK, {"text": "t"})
    assert (resp.status, resp.body) == (500, b"rollup_error")


# -- chat.postMessage ----------------------------------------------------------------------------------
def test_post_message_ok_has_the_documented_shape(sim: SlackSim, fixtures_dir: Any) -> None:
    status, body = _api(sim, {"channel": "#support", "text": "hello"})
    documented = json.loads((fixtures_dir / "slack_chat_postMessage_ok.json").read_text())
    assert status == 200 and set(documented) <= set(body)
    assert body["ok"] is True and body["channel"] == "C0SIM0001" and body["message"]["ts"] == body["ts"]
    assert float(body["ts"]) == pytest.approx(1_700_000_000.0)
    status, again = _api(sim, {"channel": "C0SIM0002", "text": "ops by id"})
    assert again["channel"] == "C0SIM0002" and again["ts"] != body["ts"]
    assert [m["text"] for m in sim.messages] == ["hello", "ops by id"]


@pytest.mark.parametrize(("body", "token", "error"), [
    ({"channel": "#support", "text": "t"}, None, "not_authed"),
    ({"channel": "#support", "text": "t"}, "xoxb-other", "invalid_auth"),
    ({"channel": "#random", "text": "t"}, "xoxb-sim", "channel_not_found"),
    ({"text": "t"}, "xoxb-sim", "channel_not_found"),
    ({"channel": "#support"}, "xoxb-sim", "no_text"),
    ({"channel": "#support", "text": "x" * 40_001}, "xoxb-sim", "msg_too_long"),
    ({"channel": "#support", "text": "t", "blocks": [_section("x" * 3001)]}, "xoxb-sim", "invalid_blocks"),
    ({"channel": "#support", "text": "t", "blocks": [_section("x" * 2900)] * 5}, "xoxb-sim", "msg_blocks_too_long"),
    (b"{oops", "xoxb-sim", "invalid_json"),
])
def test_post_message_errors_are_http_200_ok_false(sim: SlackSim, body: Any, token: str | None, error: str) -> None:
    status, answer = _api(sim, body, token=token)
    assert (status, answer) == (200, {"ok": False, "error": error})
    assert sim.messages == []


def test_cumulative_limit_counts_the_whole_block_json() -> None:
    blocks = [_section("x" * 2900)] * 5
    assert validate_blocks(blocks) == [] and cumulative_size(blocks) > MAX_CUMULATIVE
    assert cumulative_size([_section("x" * 2900)] * 4) < MAX_CUMULATIVE


def test_post_message_content_types(sim: SlackSim) -> None:
    assert _api(sim, {"channel": "#support", "text": "t"}, ctype="text/plain")[1]["error"] == "invalid_post_type"
    assert _api(sim, {"channel": "#support", "text": "t"}, ctype="")[1]["error"] == "missing_post_type"
    form = urlencode({"token": "xoxb-sim", "channel": "ops", "text": "form",
                      "blocks": json.dumps([_section("b")])}).encode()
    status, body = _api(sim, form, token=None, ctype="application/x-www-form-urlencoded")
    assert body["ok"] is True and sim.messages[-1] == {"channel": "ops", "text": "form", "blocks": [_section("b")]}


def test_archived_channel_via_web_api(sim: SlackSim) -> None:
    sim.archive("ops")
    assert _api(sim, {"channel": "#ops", "text": "t"})[1] == {"ok": False, "error": "is_archived"}


def test_post_message_rate_limit_is_per_channel(sim: SlackSim, clock: Clock) -> None:
    assert _api(sim, {"channel": "#support", "text": "1"})[1]["ok"] is True
    assert _api(sim, {"channel": "#ops", "text": "other channel"})[1]["ok"] is True
    resp = _post(sim, "/api/chat.postMessage", {"channel": "#support", "text": "2"}, token="xoxb-sim")
    assert resp.status == 429 and resp.headers["Retry-After"] == "1"
    assert json.loads(resp.body) == {"ok": False, "error": "rate_limited"}
    clock.now += 1.0
    assert _api(sim, {"channel": "#support", "text": "3"})[1]["ok"] is True
    assert [m["text"] for m in sim.messages] == ["1", "other channel", "3"]


def test_unknown_method_and_injected_429_use_the_json_envelope(sim: SlackSim) -> None:
    resp = _post(sim, "/api/chat.unknown", {}, token="xoxb-sim")
    assert resp.status == 404 and json.loads(resp.body) == {"ok": False, "error": "unknown_method"}
    sim.inject(Fault("429", retry_after=30, path="/api/"))
    resp = _post(sim, "/api/chat.postMessage", {"channel": "#support", "text": "t"}, token="xoxb-sim")
    assert (resp.status, resp.headers["Retry-After"]) == (429, "30")
    assert json.loads(resp.body)["error"] == "rate_limited"
