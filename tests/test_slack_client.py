"""Posting the digest: webhook and chat.postMessage answers, 429 waits, one-line errors, and no leaked secrets."""

from __future__ import annotations

import json
import logging
import re
import socket
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
import responses

from config.errors import ConfigError
from config.settings import SlackSettings
from connectors.errors import FatalAPIError, RetriableAPIError
from connectors.sim.base import SimServer
from connectors.sim.slack import SlackSim
from connectors.slack import HINTS, TRANSIENT, PostResult, SlackClient, SlackError, SlackUnavailableError
from tests.conftest import FIXTURES
from tests.fake_time import FakeTime

HOOK_PATH = "/services/TSEKRIT42/BSEKRIT42/zq9WebhookSecretXy7"
HOOK_URL = f"https://hooks.slack.com{HOOK_PATH}"
TOKEN = "xoxb-1111-2222-SekritBotTokenQw3"
API = "https://slack.com/api/chat.postMessage"
PAYLOAD = {"text": "Support weekly digest 2026-W47",
           "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*hello*"}}]}


def _fixture(name: str) -> Any:
    path = FIXTURES / name
    return json.loads(path.read_text()) if path.is_file() else None


def _webhook_table() -> list[Any]:
    data = _fixture("slack_incoming_webhook_errors.json")
    if data is None:
        return [pytest.param(0, "", marks=pytest.mark.skip(reason="shared fixtures missing"))]
    rows = [(e["status"], e["body"]) for e in data["errors"]]
    for entry in data["also_seen_in_client_code_UNCONFIRMED_status"]:   # "no_service (404)", "no_team"
        match = re.match(r"^(\w+)(?: \((\d+)\))?$", entry)
        assert match, entry
        rows.append((int(match.group(2) or 400), match.group(1)))
    return rows




@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


def _webhook_client(fake: FakeTime, url: str = HOOK_URL, **kw: Any) -> SlackClient:
    return SlackClient(SlackSettings(webhook_url=url), sleep=fake.sleep, clock=fake.clock, **kw)


def _bot_client(fake: FakeTime, base: str = "https://slack.com", **kw: Any) -> SlackClient:
    settings = SlackSettings(bot_token=TOKEN, channel="#support", api_base_url=base)
    return SlackClient(settings, sleep=fake.sleep, clock=fake.clock, **kw)


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


# -- incoming webhook ----------------------------------------------------------------------------------
def test_webhook_success_posts_the_payload_as_json(mocked: responses.RequestsMock, fake: FakeTime) -> None:
    mocked.add(responses.POST, HOOK_URL, body="ok", status=200, content_type="text/plain")
    result = _webhook_client(fake).post({**PAYLOAD, "channel": "#ignored"})
    assert result == PostResult(ok=True, ts=None, channel=None, via="webhook")
    sent = mocked.calls[0].request
    assert json.loads(sent.body) == PAYLOAD                       # legacy "channel" is not sent to a webhook
    assert sent.headers["Content-Type"] == "application/json; charset=utf-8"
    assert "Authorization" not in sent.headers


@pytest.mark.parametrize(("status", "code"), _webhook_table())
def test_webhook_documented_errors_become_one_clear_line(mocked: responses.RequestsMock, fake: FakeTime,
                                                         status: int, code: str) -> None:
    mocked.add(responses.POST, HOOK_URL, body=code, status=status, content_type="text/plain")
    expected = SlackUnavailableError if status >= 500 else SlackError
    with pytest.raises(expected) as info:
        _webhook_client(fake).post(PAYLOAD)
    message = str(info.value)
    verb = "could not take" if status >= 500 else "rejected"
    assert message.startswith(f"Slack incoming webhook {verb} the digest: {code} (HTTP {status}; ")
    assert HINTS[code] in message and "\n" not in message
    assert (info.value.code, info.value.status) == (code, status)
    assert "hooks.slack.com" not in message and "SEKRIT" not in message
    assert len(mocked.calls) == 1                                    # a refusal or a 5xx is never re-posted


def test_webhook_against_the_simulator(fake: FakeTime) -> None:
    sim = SlackSim(webhook_path=HOOK_PATH, clock=fake.clock)
    with SimServer(sim) as server:
        client = _webhook_client(fake, url=server.url + HOOK_PATH)
        assert client.post(PAYLOAD).ok
        assert client.post({"text": "second, within the same second"}).ok      # waited out the 429
        assert fake.sleeps == [1.0]
        with pytest.raises(SlackError, match="invalid_blocks"):
            fake.now += 5
            client.post({"text": "t", "blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "x"}}]})
        sim.archive("#support")
        with pytest.raises(SlackError, match=r"channel_is_archived \(HTTP 410; the channel is archived"):
            client.post(PAYLOAD)
    assert [m["text"] for m in sim.messages] == [PAYLOAD["text"], "second, within the same second"]


# -- chat.postMessage ----------------------------------------------------------------------------------
def test_post_message_ok_returns_ts_and_channel(mocked: responses.RequestsMock, fake: FakeTime) -> None:
    documented = _fixture("slack_chat_postMessage_ok.json")
    if documented is None:
        pytest.skip("shared fixtures missing")
    mocked.add(responses.POST, API, json=documented, status=200)
    result = _bot_client(fake).post(PAYLOAD)
    assert result == PostResult(ok=True, ts=documented["ts"], channel=documented["channel"], via="chat.postMessage")
    sent = mocked.calls[0].request
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert json.loads(sent.body) == {**PAYLOAD, "channel": "#support"}


def test_post_message_error_fixture(mocked: responses.RequestsMock, fake: FakeTime) -> None:
    documented = _fixture("slack_chat_postMessage_error.json")
    if documented is None:
        pytest.skip("shared fixtures missing")
    mocked.add(responses.POST, API, json=documented, status=200)
    with pytest.raises(SlackError) as info:
        _bot_client(fake).post(PAYLOAD)
    assert info.value.code == documented["error"]
    assert str(info.value) == (f"Slack chat.postMessage rejected the digest: {documented['error']} "
                               f"({HINTS[documented['error']]})")


WEB_API_CODES = ["channel_not_found", "not_in_channel", "is_archived", "msg_too_long", "no_text",
                 "restricted_action", "too_many_attachments", "not_authed", "invalid_auth", "account_inactive",
                 "token_revoked", "no_permission", "missing_scope", "invalid_arguments", "invalid_form_data",
                 "invalid_post_type", "missing_post_type", "request_timeout", "fatal_error", "invalid_blocks",
                 "msg_blocks_too_long"]


@pytest.mark.parametrize("code", WEB_API_CODES)
def test_post_message_ok_false_codes(mocked: responses.RequestsMock, fake: FakeTime, code: str) -> None:
    mocked.add(responses.POST, API, json={"ok": False, "error": code}, status=200)
    expected = SlackUnavailableError if code in TRANSIENT else SlackError
    with pytest.raises(expected) as info:
        _bot_client(fake).post(PAYLOAD)
    assert str(info.value) == f"Slack chat.postMessage {'could not take' if code in TRANSIENT else 'rejected'} " \
                              f"the digest: {code} ({HINTS[code]})"
    assert isinstance(info.value, RetriableAPIError if code in TRANSIENT else FatalAPIError)


def test_channel_not_found_reads_as_the_brief_asks(mocked: responses.RequestsMock, fake: FakeTime) -> None:
    mocked.add(responses.POST, API, json={"ok": False, "error": "channel_not_found"}, status=200)
    with pytest.raises(SlackError, match=r"rejected the digest: channel_not_found \(the channel does not exist "
                                         r"or the app is not in it"):
        _bot_client(fake).post(PAYLOAD)


def test_invalid_blocks_detail_and_unknown_answers_are_not_echoed(mocked: responses.RequestsMock,
                                                                  fake: FakeTime) -> None:
    detail = "[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text]"
    mocked.add(responses.POST, API, status=200, json={"ok": False, "error": "invalid_blocks",
                                                      "response_metadata": {"messages": [detail]}})
    mocked.add(responses.POST, API, status=200, json={"ok": False, "error": "Weird <html> stuff"})
    mocked.add(responses.POST, API, status=200, body="<html>proxy login</html>", content_type="text/html")
    client = _bot_client(fake)
    with pytest.raises(SlackError, match=re.escape(detail)):
        client.post(PAYLOAD)
    for _ in range(2):
        with pytest.raises(SlackError) as info:
            client.post(PAYLOAD)
        assert str(info.value) == "Slack chat.postMessage rejected the digest: unexpected response (no error code)"


def test_429_waits_exactly_retry_after_then_posts(mocked: responses.RequestsMock, fake: FakeTime) -> None:
    mocked.add(responses.POST, API, status=429, headers={"Retry-After": "7"},
               json={"ok": False, "error": "rate_limited"})
    mocked.add(responses.POST, API, status=200, json={"ok": True, "channel": "C1", "ts": "1.000001"})
    assert _bot_client(fake).post(PAYLOAD).ts == "1.000001"
    assert fake.sleeps == [7.0] and len(mocked.calls) == 2


def test_429_that_persists_gives_up_as_retriable(mocked: responses.RequestsMock, fake: FakeTime) -> None:
    mocked.add(responses.POST, API, status=429, headers={"Retry-After": "2"},
               json={"ok": False, "error": "rate_limited"})
    with pytest.raises(SlackUnavailableError) as info:
        _bot_client(fake, max_retries=2).post(PAYLOAD)
    assert len(mocked.calls) == 3 and fake.sleeps == [2.0, 2.0]
    assert info.value.code == "rate_limited" and info.value.status == 429
    assert str(info.value).startswith("Slack chat.postMessage could not take the digest: rate_limited (HTTP 429; ")


def test_server_errors_are_not_reposted(mocked: responses.RequestsMock, fake: FakeTime) -> None:
    mocked.add(responses.POST, API, status=503, body="upstream down", content_type="text/plain")
    with pytest.raises(SlackUnavailableError, match=r"could not take the digest: unexpected response \(HTTP 503\)"):
        _bot_client(fake).post(PAYLOAD)
    assert len(mocked.calls) == 1


def test_post_message_against_the_simulator_waits_out_the_channel_limit(fake: FakeTime) -> None:
    sim = SlackSim(bot_token=TOKEN, channels=("#support",), clock=fake.clock)
    with SimServer(sim) as server:
        client = _bot_client(fake, base=server.url)
        first, second = client.post(PAYLOAD), client.post(PAYLOAD)
    assert first.channel == second.channel == "C0SIM0001" and first.ts != second.ts
    assert fake.sleeps == [1.0] and len(sim.messages) == 2


def test_configuration_choices() -> None:
    with pytest.raises(ConfigError, match="no Slack destination"):
        SlackClient(SlackSettings())
    both = SlackClient(SlackSettings(webhook_url=HOOK_URL, bot_token=TOKEN, channel="C123"))
    assert both.via == "Slack chat.postMessage"                       # the Web API returns the message ts


# -- secrets -------------------------------------------------------------------------------------------
def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(("status", "body"), [
    (404, "no_service"), (400, f"invalid_payload for {HOOK_URL}"), (429, "rate_limited"), (500, "rollup_error"),
    (403, f"Bearer {TOKEN}"), (200, "not ok"),
])
def test_webhook_url_and_token_never_appear_in_errors_or_logs(fake: FakeTime, caplog: pytest.LogCaptureFixture,
                                                              status: int, body: str) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.add(responses.POST, HOOK_URL, body=body, status=status, content_type="text/plain")
        mocked.add(responses.POST, API, body=json.dumps({"ok": False, "error": body}), status=status)
        for client in (_webhook_client(fake, max_retries=1), _bot_client(fake, max_retries=1)):
            try:
                client.post(PAYLOAD)
            except (SlackError, SlackUnavailableError) as exc:
                texts.append("".join(traceback.format_exception(exc)) + repr(exc.args))
    assert texts, "every scenario fails at least once"
    _assert_no_secret([caplog.text, *texts])


def test_an_unreachable_webhook_is_described_without_its_url(fake: FakeTime,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    unreachable = f"http://127.0.0.1:{_closed_port()}{HOOK_PATH}"
    with pytest.raises(SlackUnavailableError, match="^Slack incoming webhook could not be reached") as info:
        _webhook_client(fake, url=unreachable, max_retries=1).post(PAYLOAD)
    _assert_no_secret([caplog.text, "".join(traceback.format_exception(info.value))])


def _assert_no_secret(texts: list[str]) -> None:
    for text in texts:
        for secret in (HOOK_PATH, "zq9WebhookSecretXy7", "SEKRIT42", TOKEN, "SekritBotTokenQw3"):
            assert secret not in text
