"""HttpClient: status policy, retries and their waits, pacing through the client, origins, secrets, threads.

No real sockets (``responses``) and no real sleeping: ``sleep``/``clock`` are a
fake clock that records every wait, so each test asserts the exact waits.
"""

from __future__ import annotations

import json
import logging
import threading
import traceback
from email.utils import formatdate

import pytest
import requests
import responses

from connectors.errors import (
    AuthenticationError,
    FatalAPIError,
    RetriableAPIError,
    SkippableAPIError,
)
from connectors.http import Budget, HttpClient, classify_status, vendor_code
from connectors.intercom.ratelimit import intercom_rate_headers
from connectors.zendesk.ratelimit import zendesk_rate_headers
from tests.fake_time import FakeTime

BASE = "https://acme.example.com"
URL = f"{BASE}/api/v2/tickets.json"


FakeClock = FakeTime  # the one fake clock (tests/fake_time.py)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def make(clock: FakeClock, **kwargs: object) -> HttpClient:
    options: dict[str, object] = {"source": "acme", "base_url": BASE, "sleep": clock.sleep, "clock": clock}
    options.update(kwargs)
    return HttpClient(**options)  # type: ignore[arg-type]


# -- status policy ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("status", "expected"), [
    (200, None), (400, FatalAPIError), (401, AuthenticationError), (403, AuthenticationError),
    (404, SkippableAPIError), (409, SkippableAPIError), (422, SkippableAPIError), (429, RetriableAPIError),
    (500, RetriableAPIError), (502, RetriableAPIError), (503, RetriableAPIError), (504, RetriableAPIError),
])
def test_status_classification(rsps, clock, status, expected):
    rsps.add(responses.GET, URL, json={"ok": True}, status=status)
    client = make(clock, max_retries=0)
    assert classify_status(status) is expected
    if expected is None:
        assert client.request("GET", "/api/v2/tickets.json").json() == {"ok": True}
        return
    with pytest.raises(expected) as info:
        client.request("GET", "/api/v2/tickets.json")
    assert type(info.value) is expected  # e.g. a 400 is Fatal, not Authentication
    assert info.value.status == status
    assert info.value.source == "acme" and info.value.endpoint == "/api/v2/tickets.json"
    assert f"HTTP {status} on" in str(info.value) and "/api/v2/tickets.json" in str(info.value)


def test_auth_message_names_source_status_and_path(rsps, clock):
    rsps.add(responses.GET, URL, json={"error": "Couldn't authenticate you"}, status=401)
    with pytest.raises(AuthenticationError) as info:
        make(clock).request("GET", "/api/v2/tickets.json", params={"page": 2})
    assert str(info.value).startswith("authentication failed for source acme (HTTP 401 on /api/v2/tickets.json)")
    assert "page=2" not in str(info.value)
    assert vendor_code(info.value) == "Couldn't authenticate you"


@pytest.mark.parametrize(("body", "code"), [
    ({"type": "error.list", "errors": [{"code": "tag_not_found", "message": "Tag not found"}]}, "tag_not_found"),
    ({"error": "RecordNotFound", "description": "Not found"}, "RecordNotFound"),
    ({"code": "invalid_credentials", "message": "You have to be logged in"}, "invalid_credentials"),
    ("channel_is_archived", "channel_is_archived"),  # Slack webhooks answer in plain text
])
def test_vendor_error_code_is_carried(rsps, clock, body, code):
    if isinstance(body, str):
        rsps.add(responses.GET, URL, body=body, status=404, content_type="text/plain")
    else:
        rsps.add(responses.GET, URL, json=body, status=404)
    with pytest.raises(SkippableAPIError) as info:
        make(clock).request("GET", "/api/v2/tickets.json")
    assert vendor_code(info.value) == code
    assert code in str(info.value)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 410, 422])
def test_4xx_is_never_retried(rsps, clock, status):
    rsps.add(responses.GET, URL, status=status)
    client = make(clock, max_retries=6)
    with pytest.raises((FatalAPIError, SkippableAPIError)):
        client.request("GET", "/api/v2/tickets.json")
    assert len(rsps.calls) == 1 and client.requests_sent == 1
    assert clock.sleeps == []


# -- retries ------------------------------------------------------------------------------------------
def test_5xx_is_retried_with_exponential_backoff_and_jitter_then_succeeds(rsps, clock):
    rsps.add(responses.GET, URL, status=500)
    rsps.add(responses.GET, URL, status=502)
    rsps.add(responses.GET, URL, json={"tickets": []})
    client = make(clock)
    assert client.get_json("/api/v2/tickets.json") == {"tickets": []}
    assert client.requests_sent == 3
    first, second = clock.sleeps
    assert 1.0 <= first <= 2.0 and 2.0 <= second <= 3.0  # initial * 2**n + jitter in [0, 1]


def test_retries_exhausted_raise_retriable(rsps, clock):
    rsps.add(responses.GET, URL, status=503, json={"error": "ServiceUnavailable"})
    client = make(clock, max_retries=3)
    with pytest.raises(RetriableAPIError) as info:
        client.request("GET", "/api/v2/tickets.json")
    assert info.value.status == 503 and vendor_code(info.value) == "ServiceUnavailable"
    assert "gave up after 4 attempts" in str(info.value)
    assert len(rsps.calls) == 4 and len(clock.sleeps) == 3


def test_backoff_is_clamped_by_max_retry_wait(rsps, clock):
    rsps.add(responses.GET, URL, status=500)
    with pytest.raises(RetriableAPIError):
        make(clock, max_retries=8, max_retry_wait=5.0).request("GET", "/api/v2/tickets.json")
    assert max(clock.sleeps) == 5.0 and len(clock.sleeps) == 8


@pytest.mark.parametrize("error", [requests.ConnectionError("reset by peer"), requests.ReadTimeout("read timed out")])
def test_connection_errors_and_timeouts_are_retried(rsps, clock, error):
    rsps.add(responses.GET, URL, body=error)
    rsps.add(responses.GET, URL, json={"ok": 1})
    client = make(clock)
    assert client.get_json("/api/v2/tickets.json") == {"ok": 1}
    assert len(rsps.calls) == 2 and len(clock.sleeps) == 1


@pytest.mark.parametrize("error", [requests.ReadTimeout("read timed out"), requests.ConnectionError("reset")])
def test_a_non_repeatable_post_is_not_resent_after_it_may_have_landed(rsps, clock, error):
    rsps.add(responses.POST, URL, body=error)
    rsps.add(responses.POST, URL, json={"ok": 1})
    with pytest.raises(RetriableAPIError):
        make(clock).request("POST", "/api/v2/tickets.json", json={}, repeatable=False)
    assert len(rsps.calls) == 1 and clock.sleeps == []


def test_a_non_repeatable_post_is_resent_after_a_connect_timeout(rsps, clock):
    rsps.add(responses.POST, URL, body=requests.ConnectTimeout("connect timed out"))
    rsps.add(responses.POST, URL, json={"ok": 1})
    resp = make(clock).request("POST", "/api/v2/tickets.json", json={}, repeatable=False)
    assert resp.json() == {"ok": 1} and len(rsps.calls) == 2


def test_connection_error_exhausted_is_retriable_without_status(rsps, clock):
    rsps.add(responses.GET, URL, body=requests.ConnectionError("refused"))
    with pytest.raises(RetriableAPIError) as info:
        make(clock, max_retries=2).request("GET", "/api/v2/tickets.json")
    assert info.value.status is None
    assert "ConnectionError on GET /api/v2/tickets.json" in str(info.value)
    assert len(rsps.calls) == 3


def test_no_retry_raises_at_once(rsps, clock):
    rsps.add(responses.GET, URL, status=504)
    client = make(clock)
    with pytest.raises(RetriableAPIError) as info:
        client.get_json("/api/v2/tickets.json", no_retry={504})
    assert info.value.status == 504
    assert len(rsps.calls) == 1 and clock.sleeps == []
    rsps.replace(responses.GET, URL, status=502)  # only the listed statuses skip the retry
    with pytest.raises(RetriableAPIError):
        make(clock, max_retries=1).get_json("/api/v2/tickets.json", no_retry={504})
    assert len(rsps.calls) == 3


def test_429_waits_retry_after_seconds(rsps, clock):
    rsps.add(responses.GET, URL, status=429, headers={"Retry-After": "7"})
    rsps.add(responses.GET, URL, json={})
    make(clock).request("GET", "/api/v2/tickets.json")
    assert clock.sleeps == [7.0]


def test_429_waits_retry_after_http_date(rsps, clock):
    rsps.add(responses.GET, URL, status=429, headers={"Retry-After": formatdate(clock.now + 30, usegmt=True)})
    rsps.add(responses.GET, URL, json={})
    make(clock).request("GET", "/api/v2/tickets.json")
    assert clock.sleeps == [pytest.approx(30.0)]


def test_429_retry_after_is_clamped(rsps, clock):
    rsps.add(responses.GET, URL, status=429, headers={"Retry-After": "3600"})
    rsps.add(responses.GET, URL, json={})
    make(clock, max_retry_wait=120.0).request("GET", "/api/v2/tickets.json")
    assert clock.sleeps == [120.0]


def test_503_with_retry_after_is_honoured(rsps, clock):
    rsps.add(responses.GET, URL, status=503, headers={"Retry-After": "12"})
    rsps.add(responses.GET, URL, json={})
    make(clock).request("GET", "/api/v2/tickets.json")
    assert clock.sleeps == [12.0]


def test_intercom_429_without_retry_after_waits_until_reset(rsps, clock):
    clock.now = 1_700_000_003.25
    reset = 1_700_000_010
    rsps.add(responses.GET, URL, status=429, json={"type": "error.list", "errors": [{"code": "rate_limit_exceeded"}]},
             headers={"X-RateLimit-Limit": "167", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)})
    rsps.add(responses.GET, URL, json={})
    make(clock, rate_headers=intercom_rate_headers).request("GET", "/api/v2/tickets.json")
    assert clock.sleeps == [pytest.approx(reset - 1_700_000_003.25)]


def test_429_without_any_hint_backs_off(rsps, clock):
    rsps.add(responses.GET, URL, status=429, body="You have exceeded the rate limit", content_type="text/plain")
    rsps.add(responses.GET, URL, json={})
    make(clock).request("GET", "/api/v2/tickets.json")
    assert len(clock.sleeps) == 1 and 1.0 <= clock.sleeps[0] <= 2.0


def test_retry_is_logged_at_warning_and_requests_at_debug(rsps, clock, caplog):
    rsps.add(responses.GET, URL, status=429, headers={"Retry-After": "3"})
    rsps.add(responses.GET, URL, json={})
    with caplog.at_level(logging.DEBUG, logger="deskpulse.http"):
        make(clock).request("GET", "/api/v2/tickets.json")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["source acme: HTTP 429 on GET /api/v2/tickets.json, waiting 3.0s (attempt 2/7)"]
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG and "-> HTTP" in r.getMessage()]
    assert [r.name for r in debug] == ["deskpulse.http", "deskpulse.http"]


# -- pacing through the client ----------------------------------------------------------------------
def test_budget_11_requests_in_60s_budget_of_10_sleep_once(rsps, clock):
    rsps.add(responses.GET, f"{BASE}/api/v2/incremental/tickets/cursor.json", json={})
    rsps.add(responses.GET, URL, json={})
    client = make(clock, budgets=[Budget("exports", r"/api/v2/incremental/", 10, 60.0)])
    for _ in range(10):
        client.request("GET", "/api/v2/tickets.json")  # another endpoint: not under the budget
    for _ in range(11):
        client.request("GET", "/api/v2/incremental/tickets/cursor.json")
    assert clock.sleeps == [pytest.approx(60.0)]


def test_requests_per_minute_is_account_wide(rsps, clock):
    rsps.add(responses.GET, URL, json={})
    rsps.add(responses.GET, f"{BASE}/api/v2/users.json", json={})
    client = make(clock, requests_per_minute=3)
    client.request("GET", "/api/v2/tickets.json")
    clock.now += 20
    client.request("GET", "/api/v2/users.json")
    client.request("GET", "/api/v2/tickets.json")
    client.request("GET", "/api/v2/users.json")  # the first one leaves the window 40 s later
    assert clock.sleeps == [pytest.approx(40.0)]


def test_header_pacing_slows_down_before_remaining_hits_zero(rsps, clock):
    state = {"remaining": 16}
    seen: list[int] = []

    def callback(request):
        state["remaining"] -= 1
        seen.append(state["remaining"])
        return 200, {"X-Rate-Limit": "100", "X-Rate-Limit-Remaining": str(state["remaining"])}, "{}"

    rsps.add_callback(responses.GET, URL, callback=callback)
    client = make(clock, rate_headers=zendesk_rate_headers)
    waits_before: list[int] = []
    for _ in range(14):
        before = len(clock.sleeps)
        client.request("GET", "/api/v2/tickets.json")
        waits_before.append(len(clock.sleeps) - before)
    # Plenty left (15..11): full speed. Low (<= 10% of 100): spread at the sustainable 60 s / 100 rate.
    assert seen == list(range(15, 1, -1))
    assert waits_before[:6] == [0] * 6
    assert waits_before[6:] == [1] * 8
    assert clock.sleeps == [pytest.approx(0.6)] * 8
    assert 429 not in [c.response.status_code for c in rsps.calls]


def test_a_failing_auth_hook_does_not_leak_a_budget_slot(rsps, clock):
    class FlakyAuth(requests.auth.AuthBase):
        calls = 0

        def __call__(self, request):
            FlakyAuth.calls += 1
            if FlakyAuth.calls == 2:  # call 1 is the client's own probe for secret scrubbing
                raise RuntimeError("token refresh failed")
            return request

    rsps.add(responses.GET, URL, json={})
    client = make(clock, auth=FlakyAuth(), budgets=[Budget("b", "tickets", 1, 60.0)])
    with pytest.raises(RuntimeError):
        client.request("GET", "/api/v2/tickets.json")
    client.request("GET", "/api/v2/tickets.json")  # would wait forever on a slot still "in flight"
    assert clock.sleeps == [pytest.approx(60.0)]


def test_429_holds_other_requests_too(rsps, clock):
    rsps.add(responses.GET, URL, status=429, headers={"Retry-After": "5"})
    rsps.add(responses.GET, f"{BASE}/api/v2/users.json", json={})
    client = make(clock, max_retries=0)
    with pytest.raises(RetriableAPIError):
        client.request("GET", "/api/v2/tickets.json")
    client.request("GET", "/api/v2/users.json")  # the account is rate limited, not just one endpoint
    assert clock.sleeps == [pytest.approx(5.0)]


# -- origins, JSON ----------------------------------------------------------------------------------
def test_absolute_next_page_url_on_same_host_is_accepted(rsps, clock):
    rsps.add(responses.GET, URL, json={"page": 2},
             match=[responses.matchers.query_param_matcher({"page[after]": "abc"})])
    client = make(clock, base_url=BASE + "/")
    assert client.get_json(f"{URL}?page%5Bafter%5D=abc") == {"page": 2}
    assert client.get_json("HTTPS://ACME.example.com/api/v2/tickets.json?page%5Bafter%5D=abc") == {"page": 2}
    assert len(rsps.calls) == 2


@pytest.mark.parametrize("url", [
    "https://evil.example.net/api/v2/tickets.json",
    "http://acme.example.com/api/v2/tickets.json",
    "https://acme.example.com:8443/api/v2/tickets.json",
    "//evil.example.net/api/v2/tickets.json",
])
def test_other_origin_is_refused_before_sending(rsps, clock, url):
    client = make(clock, auth=requests.auth.HTTPBasicAuth("me/token", "SECRETSECRET"))
    with pytest.raises(FatalAPIError) as info:
        client.request("GET", url)
    assert len(rsps.calls) == 0 and client.requests_sent == 0
    assert "another origin" in str(info.value)


def test_redirect_followed_on_same_host_refused_elsewhere(rsps, clock):
    rsps.add(responses.GET, URL, status=301, headers={"Location": "/api/v2/tickets2.json"})
    rsps.add(responses.GET, f"{BASE}/api/v2/tickets2.json", status=302, headers={"Location": "https://evil.example/x"})
    client = make(clock)
    with pytest.raises(FatalAPIError):
        client.request("GET", "/api/v2/tickets.json")
    assert [c.request.url for c in rsps.calls] == [URL, f"{BASE}/api/v2/tickets2.json"]


def test_get_json_bad_json_is_fatal_and_empty_is_none(rsps, clock):
    rsps.add(responses.GET, URL, body="<html>maintenance</html>", content_type="text/html")
    rsps.add(responses.GET, f"{BASE}/api/v2/empty.json", status=204)
    client = make(clock)
    with pytest.raises(FatalAPIError, match="not valid JSON"):
        client.get_json("/api/v2/tickets.json")
    assert client.get_json("/api/v2/empty.json") is None


def test_bad_base_url_is_a_config_error():
    from config.errors import ConfigError

    with pytest.raises(ConfigError):
        HttpClient(source="x", base_url="ftp://example.com")


# -- secrets ------------------------------------------------------------------------------------------
SECRET = "tok-7f3a9c1e5b2d8f4a"


def test_secrets_never_reach_messages_or_logs(rsps, clock, caplog):
    client = make(clock, auth=requests.auth.HTTPBasicAuth("agent@acme.example/token", SECRET),
                  headers={"X-Api-Key": SECRET}, max_retries=1)
    echo = {"error": f"bad credentials {SECRET}"}
    rsps.add(responses.GET, URL, json=echo, status=401)
    rsps.add(responses.GET, f"{BASE}/api/v2/users.json", json=echo, status=404)
    rsps.add(responses.GET, f"{BASE}/api/v2/groups.json", json=echo, status=500)
    rsps.add(responses.GET, f"{BASE}/api/v2/orgs.json",
             body=requests.ConnectionError(f"Max retries exceeded with url: /api/v2/orgs.json?api_token={SECRET}"))
    rsps.add(responses.GET, f"{BASE}/api/v2/moved.json", status=302,
             headers={"Location": f"https://evil.example/steal?token={SECRET}"})
    rsps.add(responses.GET, f"{BASE}/api/v2/html.json", body=f"<p>{SECRET}</p>", content_type="text/plain")
    calls = [
        lambda: client.get_json("/api/v2/tickets.json", {"api_token": SECRET}),
        lambda: client.get_json(f"{BASE}/api/v2/users.json?access_token={SECRET}"),
        lambda: client.get_json("/api/v2/groups.json", [("password", SECRET)]),
        lambda: client.get_json("/api/v2/orgs.json", {"api_token": SECRET}),
        lambda: client.get_json("/api/v2/moved.json"),
        lambda: client.get_json("/api/v2/html.json", {"signature": SECRET}),
        lambda: client.get_json(f"https://user:{SECRET}@evil.example/x?auth={SECRET}"),
    ]
    with caplog.at_level(logging.DEBUG):
        for call in calls:
            with pytest.raises(Exception) as info:  # noqa: PT011 - each call fails differently; we check the text
                call()
            assert SECRET not in "".join(traceback.format_exception(info.value))
            chain: list[BaseException | None] = [info.value]
            while chain:  # every linked exception, even a suppressed __context__
                exc = chain.pop()
                if exc is not None:
                    assert SECRET not in f"{exc} {exc!r} {vars(exc)!r}"
                    chain += [exc.__cause__, exc.__context__]
        logging.getLogger("urllib3.connectionpool").debug(  # what urllib3 logs for a real request
            '%s://%s:%s "%s %s %s" %s %s', "https", "acme.example.com", 443, "GET",
            f"/api/v2/tickets.json?api_token={SECRET}", "HTTP/1.1", 200, 10)
    assert len(caplog.records) > 10
    assert SECRET not in caplog.text
    assert all(SECRET not in r.getMessage() for r in caplog.records)


def test_slack_webhook_path_never_shown(rsps, clock, caplog):
    hook = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXX"
    rsps.add(responses.POST, hook, body="channel_is_archived", status=410, content_type="text/plain")
    client = make(clock, base_url="https://hooks.slack.com")
    with caplog.at_level(logging.DEBUG), pytest.raises(FatalAPIError) as info:
        client.request("POST", hook, json={"text": "hi"})
    assert "/services/***" in str(info.value) and "XXXXXXXX" not in str(info.value)
    assert "XXXXXXXX" not in caplog.text and "B000" not in caplog.text
    assert vendor_code(info.value) == "channel_is_archived"


# -- threads ------------------------------------------------------------------------------------------
def test_threads_sharing_a_client_never_exceed_the_budget(rsps, clock):
    arrivals: list[float] = []
    lock = threading.Lock()

    def callback(request):
        with lock:
            arrivals.append(clock())
        return 200, {}, json.dumps({"ok": True})

    rsps.add_callback(responses.GET, URL, callback=callback)
    client = make(clock, budgets=[Budget("list", r"tickets", 5, 60.0)])
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(8):
                client.get_json("/api/v2/tickets.json")
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == [] and len(arrivals) == 48 and client.requests_sent == 48
    arrivals.sort()
    # any 6 consecutive arrivals span at least the window: never 6 in 60 s
    assert all(later - earlier >= 60.0 - 1e-6 for earlier, later in zip(arrivals, arrivals[5:], strict=False))
