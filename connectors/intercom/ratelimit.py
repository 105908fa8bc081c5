"""Intercom's rate-limit headers (API-NOTES 3.3) read into the shared :class:`RateLimitInfo` the pacer follows."""

from __future__ import annotations

import requests

from connectors.ratelimit import RateLimitInfo, int_header


def intercom_rate_headers(resp: requests.Response, *, window_s: float = 10.0) -> RateLimitInfo | None:
    """``X-RateLimit-Limit/-Remaining/-Reset`` (reset: unix seconds), per 10-second window."""
    remaining = int_header(resp, "X-RateLimit-Remaining")
    if remaining is None:
        return None
    reset = int_header(resp, "X-RateLimit-Reset")
    return RateLimitInfo(limit=int_header(resp, "X-RateLimit-Limit"), remaining=remaining,
                         reset_at=None if reset is None else float(reset), window_s=window_s)
