"""Pacing pieces on their own: Retry-After parsing, vendor header parsers, sliding windows, header pacing, Pacer."""

from __future__ import annotations

import functools
from email.utils import formatdate

import pytest
import requests

from connectors.freshdesk.ratelimit import freshdesk_rate_headers
from connectors.intercom.ratelimit import intercom_rate_headers
from connectors.ratelimit import (
    Budget,
    HeaderPacer,
    Pacer,
    RateLimitInfo,
    SlidingWindow,
    parse_retry_after,
)
from connectors.zendesk.ratelimit import zendesk_rate_headers
from tests.fake_time import FakeTime

NOW = 1_700_000_000.0


def response(headers: dict[str, str], status: int = 200) -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    resp.headers.update(headers)
    return resp


# -- Retry-After --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "expected"), [
    ("120", 120.0), ("1.5", 1.5), (" 3 ", 3.0), ("-4", 0.0), ("0", 0.0),
    (formatdate(NOW + 45, usegmt=True), 45.0), (formatdate(NOW - 45, usegmt=True), 0.0),
    ("soon", None), ("", None), (None, None), ("nan", None),
])
def test_parse_retry_after(value, expected):
    result = parse_retry_after(value, NOW)
    assert result == (pytest.approx(expected) if expected is not None else None)


# -- vendor header parsers ----------------------------------------------------------------------------
def test_zendesk_headers_assume_a_60s_window():
    info = zendesk_rate_headers(response({"X-Rate-Limit": "700", "X-Rate-Limit-Remaining": "699"}))
    assert info == RateLimitInfo(limit=700, remaining=699, reset_at=None, window_s=60.0)
    rescaled = functools.partial(zendesk_rate_headers, window_s=6.0)
    assert rescaled(response({"X-Rate-Limit": "120", "X-Rate-Limit-Remaining": "5"})).window_s == 6.0


def test_zendesk_falls_back_to_generic_ratelimit_headers_with_relative_reset():
    info = zendesk_rate_headers(response({"ratelimit-limit": "100", "ratelimit-remaining": "7",
                                          "ratelimit-reset": "12"}))
    assert (info.limit, info.remaining, info.reset_at, info.reset_in) == (100, 7, None, 12.0)


def test_freshdesk_headers_with_the_cost_of_the_call():
    info = freshdesk_rate_headers(response({"X-RateLimit-Total": "400", "X-RateLimit-Remaining": "398",
                                            "X-RateLimit-Used-CurrentRequest": "3"}))
    assert info == RateLimitInfo(limit=400, remaining=398, reset_at=None, window_s=60.0, cost=3)
    assert freshdesk_rate_headers(response({"X-RateLimit-Remaining": "5"})).cost == 1


def test_header_pacer_counts_credits_when_calls_cost_more_than_one():
    pacer = HeaderPacer()
    pacer.sent(NOW)
    pacer.observe(RateLimitInfo(400, 7, None, 60.0, cost=3), NOW, in_flight=0)
    assert pacer.delay(NOW) == pytest.approx(0.45)  # low: one call per 3 credits' worth of 60 s / 400
    pacer.sent(NOW + 1)
    pacer.sent(NOW + 2)  # 7 - 6 = 1 credit left: not enough for a 3-credit call
    assert pacer.delay(NOW + 2) == pytest.approx(58.0)  # until our counted call (NOW) leaves the window


def test_intercom_headers_carry_the_reset_and_a_10s_window():
    info = intercom_rate_headers(response({"X-RateLimit-Limit": "167", "X-RateLimit-Remaining": "3",
                                           "X-RateLimit-Reset": "1700000010"}))
    assert info == RateLimitInfo(limit=167, remaining=3, reset_at=1_700_000_010.0, window_s=10.0)


@pytest.mark.parametrize("parser", [zendesk_rate_headers, freshdesk_rate_headers, intercom_rate_headers])
def test_parsers_return_none_without_headers_or_with_garbage(parser):
    assert parser(response({})) is None
    garbage = {"X-Rate-Limit-Remaining": "lots", "X-RateLimit-Remaining": "lots", "ratelimit-remaining": "?"}
    assert parser(response(garbage)) is None


def test_duplicated_header_values_are_tolerated():
    info = zendesk_rate_headers(response({"X-Rate-Limit": "700, 700", "X-Rate-Limit-Remaining": "10, 10"}))
    assert (info.limit, info.remaining) == (700, 10)


# -- sliding window -----------------------------------------------------------------------------------
def admit(window: SlidingWindow, at: float) -> None:
    assert window.wait(at) == 0.0
    window.reserve().at = at


def test_sliding_window_allows_exactly_max_then_slides():
    window = SlidingWindow("exports", 10, 60.0)
    for k in range(10):
        admit(window, NOW + k)  # one request per second
    assert window.wait(NOW + 9) == pytest.approx(51.0)  # the first leaves the window at NOW + 60
    assert window.wait(NOW + 60) == 0.0
    admit(window, NOW + 60)
    assert window.wait(NOW + 60.5) == pytest.approx(0.5)  # a sliding window, not a fixed one that reset


def test_sliding_window_counts_in_flight_requests_and_says_so():
    window = SlidingWindow("w", 2, 60.0)
    window.reserve()
    window.reserve()
    assert window.wait(NOW) is None  # both still in flight: wait for a response, not a timer
    with pytest.raises(ValueError):
        SlidingWindow("bad", 0, 60.0)


def test_budget_matches_its_path_pattern_only():
    window = SlidingWindow.from_budget(Budget("exports", r"/api/v2/incremental/", 10, 60.0))
    assert window.matches("/api/v2/incremental/tickets/cursor.json")
    assert not window.matches("/api/v2/tickets.json")


# -- header pacing ------------------------------------------------------------------------------------
def test_header_pacer_with_reset_spreads_the_last_calls_over_the_time_left():
    pacer = HeaderPacer()
    pacer.sent(NOW)
    pacer.observe(RateLimitInfo(100, 3, NOW + 8, 10.0), NOW, in_flight=0)
    assert pacer.delay(NOW) == pytest.approx(2.0)  # 3 calls, 8 s left: one every 8 / (3 + 1) s
    pacer.observe(RateLimitInfo(100, 50, NOW + 8, 10.0), NOW, in_flight=0)
    assert pacer.delay(NOW) == 0.0  # plenty left: full speed


def test_header_pacer_with_reset_waits_for_the_reset_at_zero_then_forgets():
    pacer = HeaderPacer()
    pacer.observe(RateLimitInfo(167, 0, NOW + 6.5, 10.0), NOW, in_flight=0)
    assert pacer.delay(NOW + 1) == pytest.approx(5.5)
    assert pacer.delay(NOW + 6.5) == 0.0
    assert pacer.info is None


def test_header_pacer_counts_requests_sent_since_the_last_response():
    pacer = HeaderPacer()
    pacer.observe(RateLimitInfo(167, 2, NOW + 5, 10.0), NOW, in_flight=1)  # one more already in flight
    pacer.sent(NOW)
    assert pacer.delay(NOW) == pytest.approx(5.0)  # 2 - 1 in flight - 1 just sent = 0 left


def test_header_pacer_without_reset_waits_for_our_oldest_counted_request():
    pacer = HeaderPacer()
    for k in range(5):
        pacer.sent(NOW + k)
        pacer.observe(RateLimitInfo(5, 4 - k, None, 60.0), NOW + k, in_flight=0)
    assert pacer.delay(NOW + 4) == pytest.approx(56.0)  # the first of our 5 leaves the window at NOW + 60
    assert pacer.delay(NOW + 60) == 0.0  # ... and frees exactly one slot


def test_header_pacer_without_reset_paces_at_the_sustainable_rate_when_low():
    pacer = HeaderPacer()
    pacer.sent(NOW)
    pacer.observe(RateLimitInfo(100, 8, None, 60.0), NOW, in_flight=0)
    assert pacer.delay(NOW) == pytest.approx(0.6)
    pacer.observe(RateLimitInfo(100, 11, None, 60.0), NOW, in_flight=0)
    assert pacer.delay(NOW) == 0.0
    assert pacer.delay(NOW + 61) == 0.0  # a count older than its window is stale


def test_header_pacer_only_counts_what_the_vendor_counts():
    """After a fixed window resets, older requests of ours must not be taken as slots about to free."""
    pacer = HeaderPacer()
    for k in range(10):
        pacer.sent(NOW + k)
        pacer.observe(None, NOW + k, in_flight=0)
    pacer.sent(NOW + 10)
    pacer.observe(RateLimitInfo(2, 0, None, 60.0), NOW + 10, in_flight=0)  # the vendor counts 2 of our 11
    assert pacer.counted == [NOW + 9, NOW + 10]
    assert pacer.delay(NOW + 10) == pytest.approx(59.0)


# -- the Pacer ----------------------------------------------------------------------------------------
def Clock() -> FakeTime:  # noqa: N802  # the one fake clock (tests/fake_time.py)
    return FakeTime(NOW)


def test_pacer_enforces_budget_with_one_sleep_of_the_right_length():
    clock = Clock()
    pacer = Pacer(budgets=[Budget("exports", r"incremental", 10, 60.0)], clock=clock, sleep=clock.sleep)
    for k in range(11):
        clock.now += 2 if k else 0
        pacer.release(pacer.acquire("/api/v2/incremental/tickets.json"), None)
    assert clock.sleeps == [pytest.approx(40.0)]  # 10 done by NOW + 18; the first frees at NOW + 60 (now NOW+20)


def test_pacer_dates_slots_by_response_arrival():
    clock = Clock()
    pacer = Pacer(requests_per_minute=1, clock=clock, sleep=clock.sleep)
    ticket = pacer.acquire("/x")
    clock.now += 5  # a slow response: the vendor may have counted it as late as this
    pacer.release(ticket, None)
    pacer.release(pacer.acquire("/x"), None)
    assert clock.sleeps == [pytest.approx(60.0)]


def test_pacer_hold_applies_to_every_path_and_reports_why():
    clock = Clock()
    waits: list[tuple[float, str, str]] = []
    pacer = Pacer(clock=clock, sleep=clock.sleep, on_wait=lambda w, reason, path: waits.append((w, reason, path)))
    pacer.release(pacer.acquire("/a"), None, hold_for=9.0)
    pacer.release(pacer.acquire("/b"), RateLimitInfo(10, 9, None, 60.0))
    assert clock.sleeps == [pytest.approx(9.0)]
    assert waits == [(pytest.approx(9.0), "Retry-After", "/b")]
