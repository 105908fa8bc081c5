"""Zendesk's rate-limit headers (API-NOTES 1.3) read into the shared :class:`RateLimitInfo` the pacer follows."""

from __future__ import annotations

import requests

from connectors.ratelimit import RateLimitInfo, int_header


def zendesk_rate_headers(resp: requests.Response, *, window_s: float = 60.0) -> RateLimitInfo | None:
    """``X-Rate-Limit`` / ``X-Rate-Limit-Remaining`` (no reset header: a ``window_s`` window is assumed).

    Falls back to the generic ``ratelimit-limit/-remaining/-reset`` trio (reset in seconds), whose exact
    names API-NOTES marks UNCONFIRMED for the Ticketing API.
    """
    limit = int_header(resp, "X-Rate-Limit")
    remaining = int_header(resp, "X-Rate-Limit-Remaining")
    if remaining is not None:
        return RateLimitInfo(limit=limit, remaining=remaining, reset_at=None, window_s=window_s)
    remaining = int_header(resp, "ratelimit-remaining")
    if remaining is None:
        return None
    reset = int_header(resp, "ratelimit-reset")
    return RateLimitInfo(limit=int_header(resp, "ratelimit-limit"), remaining=remaining, reset_at=None,
                         window_s=window_s, reset_in=None if reset is None else float(reset))
