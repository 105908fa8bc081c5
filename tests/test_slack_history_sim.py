"""conversations.history in the Slack simulator and the client, the late-answer fault, and which failures leave
a post's outcome unknown (so the digest job looks before posting again)."""

from __future__ import annotations

import base64
import json
import socket
from typing import Any
from urllib.parse import urlencode

import pytest
import responses

from config.settings import SlackSettings
from connectors.sim.base import Fault, SimRequest, SimServer
from connectors.sim.slack import SlackSim
from connectors.slack import (
    SlackClient,
    SlackError,
    SlackOutcomeUnknownError,
    SlackUnavailableError,
    carries_marker,
)
from tests.fake_time import FakeTime

TOKEN = "xoxb-sim"
HISTORY = "/api/conversations.history"


Clock = FakeTime  # the one fake clock (tests/fake_time.py)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock: Clock) -> SlackSim:
    return SlackSim(bot_token=TOKEN, channels=("#support", "ops"), clock=clock)


def _post_message(sim: SlackSim, body: dict[str, Any]) -> dict[str, Any]:
    resp = sim.handle(SimRequest("POST", "/api/chat.postMessage", {},
                                 {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
                                 json.dumps(body).encode()))
    return json.loads(resp.body)


def _history(sim: SlackSim, token: str | None = TOKEN, **args: Any) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    resp = sim.handle(SimRequest("GET", HISTORY, {k: [str(v)] for k, v in args.items()}, headers))
    return resp.status, json.loads(resp.body)


def _fill(sim: SlackSim, clock: Clock, n: int, channel: str = "#support") -> list[str]:
    stamps = []
    for i in range(n):
        clock.now += 2  # past the 1 message/s/channel limit
        stamps.append(_post_message(sim, {"channel": channel, "text": f"m{i}"})["ts"])
    return stamps


# -- the simulator ---------------------------------------------------------------------------------------
def test_history_is_newest_first_and_pages_with_an_opaque_next_ts_cursor(sim: SlackSim, clock: Clock) -> None:
    stamps = _fill(sim, clock, 5)
    status, first = _history(sim, channel="C0SIM0001", limit=2)
    assert status == 200 and first["ok"] is True and first["has_more"] is True
    assert [m["ts"] for m in first["messages"]] == stamps[::-1][:2]
    cursor = first["response_metadata"]["next_cursor"]
    assert base64.b64decode(cursor).decode().startswith("next_ts:")   # like Slack's bmV4dF90czo... cursors
    seen = [m["ts"] for m in first["messages"]]
    while cursor:
        _, page = _history(sim, channel="C0SIM0001", limit=2, cursor=cursor)
        seen += [m["ts"] for m in page["messages"]]
        cursor = page["response_metadata"]["next_cursor"]
        assert bool(cursor) == page["has_more"]
    assert seen == stamps[::-1]
    assert {"type", "ts", "text"} <= set(first["messages"][0]) and first["pin_count"] == 0


def test_history_oldest_latest_and_inclusive_bound_the_window(sim: SlackSim, clock: Clock) -> None:
    stamps = _fill(sim, clock, 4)
    _, exclusive = _history(sim, channel="C0SIM0001", oldest=stamps[1])
    assert [m["ts"] for m in exclusive["messages"]] == [stamps[3], stamps[2]]
    _, inclusive = _history(sim, channel="C0SIM0001", oldest=stamps[1], latest=stamps[2], inclusive="true")
    assert [m["ts"] for m in inclusive["messages"]] == [stamps[2], stamps[1]]
    _, other = _history(sim, channel="C0SIM0002")
    assert other["messages"] == [] and other["has_more"] is False


@pytest.mark.parametrize(("token", "args", "code"), [
    (None, {"channel": "C0SIM0001"}, "not_authed"),
    ("xoxb-wrong", {"channel": "C0SIM0001"}, "invalid_auth"),
    (TOKEN, {"channel": "#support"}, "channel_not_found"),      # an ID is required, not a name
    (TOKEN, {}, "channel_not_found"),
    (TOKEN, {"channel": "C0SIM0001", "oldest": "yesterday"}, "invalid_ts_oldest"),
    (TOKEN, {"channel": "C0SIM0001", "latest": "soon"}, "invalid_ts_latest"),
    (TOKEN, {"channel": "C0SIM0001", "cursor": "not-a-cursor!"}, "invalid_cursor"),
])
def test_history_errors_are_http_200_ok_false(sim: SlackSim, token: str | None, args: dict[str, str],
                                              code: str) -> None:
    assert _history(sim, token, **args) == (200, {"ok": False, "error": code})


def test_history_without_channels_history_scope_is_missing_scope(clock: Clock) -> None:
    sim = SlackSim(bot_token=TOKEN, clock=clock, scopes=("chat:write",))
    status, body = _history(sim, channel="C0SIM0001")
    assert (status, body["ok"], body["error"], body["needed"]) == (200, False, "missing_scope", "channels:history")
    assert body["provided"] == "chat:write"


def test_history_returns_event_payload_only_with_include_all_metadata(sim: SlackSim, clock: Clock) -> None:
    meta = {"event_type": "deskpulse_digest", "event_payload": {"marker": "m-1"}}
    assert _post_message(sim, {"channel": "C0SIM0001", "text": "t", "metadata": meta})["ok"] is True
    _, plain = _history(sim, channel="C0SIM0001")
    assert "event_payload" not in plain["messages"][0].get("metadata", {})
    _, full = _history(sim, channel="C0SIM0001", include_all_metadata="true")
    assert full["messages"][0]["metadata"] == meta
    clock.now += 2
    assert _post_message(sim, {"channel": "C0SIM0001", "text": "t", "metadata": {"event_type": 3}}) == \
        {"ok": False, "error": "invalid_metadata_format"}


def test_history_also_answers_a_form_post(sim: SlackSim, clock: Clock) -> None:
    stamps = _fill(sim, clock, 1)
    body = urlencode({"token": TOKEN, "channel": "C0SIM0001"}).encode()
    resp = sim.handle(SimRequest("POST", HISTORY, {}, {"Content-Type": "application/x-www-form-urlencoded"}, body))
    assert [m["ts"] for m in json.loads(resp.body)["messages"]] == stamps


def test_slow_fault_records_the_post_then_answers_after_the_read_timeout() -> None:
    fake = FakeTime()
    sim = SlackSim(bot_token=TOKEN, clock=fake.clock)
    sim.inject(Fault("slow", path="/api/chat.postMessage", delay=1.0))
    with SimServer(sim) as server:
        client = SlackClient(SlackSettings(bot_token=TOKEN, channel="C0SIM0001", api_base_url=server.url),
                             sleep=fake.sleep, clock=fake.clock, timeout=(2.0, 0.2))
        with pytest.raises(SlackOutcomeUnknownError, match="did not answer .*ReadTimeout.* may have been posted"):
            client.post({"text": "late"})
        assert [m["text"] for m in sim.messages] == ["late"]        # it landed although the client gave up
        assert sim.requests_made("chat.postMessage") == 1           # and was not re-sent
        client.close()


# -- the client ------------------------------------------------------------------------------------------
def _bot(url: str, channel: str = "C0SIM0001", **kw: Any) -> SlackClient:
    fake = FakeTime()
    return SlackClient(SlackSettings(bot_token=TOKEN, channel=channel, api_base_url=url),
                       sleep=fake.sleep, clock=fake.clock, **kw)


def test_find_message_reads_every_page_since_oldest_and_matches_the_marker(sim: SlackSim, clock: Clock) -> None:
    start = clock.now
    clock.now += 2
    _post_message(sim, {"channel": "C0SIM0001", "text": "digest",
                        "blocks": [{"type": "section", "block_id": "deskpulse-digest-2026-W47",
                                    "text": {"type": "mrkdwn", "text": "x"}}]})
    _fill(sim, clock, 230)                                            # the digest is on the third page of 100
    with SimServer(sim) as server, _bot(server.url) as client:
        found = client.find_message("deskpulse-digest-2026-W47", oldest=start)
        assert found is not None and found.channel == "C0SIM0001"
        assert found.ts == sim.channel_messages("C0SIM0001")[0]["ts"]
        assert sim.requests_made(HISTORY) == 3
        assert client.find_message("deskpulse-digest-2026-W48", oldest=start) is None
        assert client.find_message("deskpulse-digest-2026-W47", oldest=clock.now) is None   # outside the window


def test_find_message_cannot_check_without_scope_a_channel_id_or_with_a_webhook(clock: Clock) -> None:
    sim = SlackSim(bot_token=TOKEN, clock=clock, scopes=("chat:write",))
    with SimServer(sim) as server:
        with _bot(server.url) as client, pytest.raises(SlackError, match="missing_scope .*channels:history"):
            client.find_message("m", oldest=0)
        with _bot(server.url, channel="#support") as client, pytest.raises(SlackError, match="channel's ID"):
            client.find_message("m", oldest=0)
        hook = SlackClient(SlackSettings(webhook_url=server.url + "/services/T000/B000/XXXX"))
        with pytest.raises(SlackError, match="cannot read the channel"):
            hook.find_message("m", oldest=0)
        assert hook.verifiable is False and _bot(server.url).verifiable is True


def test_find_message_never_says_absent_when_the_history_stops_short() -> None:
    with responses.RequestsMock() as mocked:
        mocked.add(responses.GET, "https://slack.com" + HISTORY,
                   json={"ok": True, "messages": [], "has_more": True, "response_metadata": {"next_cursor": ""}})
        with pytest.raises(SlackUnavailableError, match="no new cursor"):
            _bot("https://slack.com").find_message("m", oldest=0)


def test_carries_marker_by_metadata_or_block_id() -> None:
    assert carries_marker({"metadata": {"event_type": "x", "event_payload": {"marker": "m"}}}, "m")
    assert carries_marker({"blocks": [{"type": "divider"}, {"type": "header", "block_id": "m"}]}, "m")
    assert not carries_marker({"text": "m", "blocks": [{"block_id": "mm"}]}, "m")


# -- which failures leave the outcome unknown ------------------------------------------------------------
def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_refused_connection_is_known_not_posted() -> None:
    client = _bot(f"http://127.0.0.1:{_closed_port()}", max_retries=0)
    with pytest.raises(SlackUnavailableError) as info:
        client.post({"text": "t"})
    assert not isinstance(info.value, SlackOutcomeUnknownError) and "could not be reached" in str(info.value)


@pytest.mark.parametrize(("status", "body"), [
    (503, {"ok": False, "error": "service_unavailable"}),
    (500, {}),
    (200, {"ok": False, "error": "fatal_error"}),       # "It's possible some aspect of the operation succeeded"
    (200, {"ok": False, "error": "internal_error"}),
])
def test_server_failures_leave_the_outcome_unknown(status: int, body: dict[str, Any]) -> None:
    with responses.RequestsMock() as mocked:
        mocked.add(responses.POST, "https://slack.com/api/chat.postMessage", json=body, status=status)
        with pytest.raises(SlackOutcomeUnknownError):
            _bot("https://slack.com").post({"text": "t"})


def test_refusals_stay_plain_failures() -> None:
    with responses.RequestsMock() as mocked:
        mocked.add(responses.POST, "https://slack.com/api/chat.postMessage", json={"ok": False, "error": "is_archived"})
        with pytest.raises(SlackError):
            _bot("https://slack.com").post({"text": "t"})


def test_post_sends_metadata_to_the_web_api_only(sim: SlackSim) -> None:
    meta = {"event_type": "deskpulse_digest", "event_payload": {"marker": "m"}}
    with SimServer(sim) as server, _bot(server.url) as client:
        client.post({"text": "t"}, metadata=meta)
    assert sim.messages[0]["metadata"] == meta
