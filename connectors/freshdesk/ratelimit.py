"""Freshdesk's rate-limit headers (API-NOTES 2.3) read into the shared :class:`RateLimitInfo` the pacer follows."""

from __future__ import annotations

import requests

from connectors.ratelimit import RateLimitInfo, int_header


def freshdesk_rate_headers(resp: requests.Response, *, window_s: float = 60.0) -> RateLimitInfo | None:
    """``X-RateLimit-Total`` / ``X-RateLimit-Remaining``: a per-minute, account-wide credit count, no reset header.

    ``X-RateLimit-Used-CurrentRequest`` says what the call cost (1 plus 2 per ``include``).
    """
    remaining = int_header(resp, "X-RateLimit-Remaining")
    if remaining is None:
        return None
    cost = int_header(resp, "X-RateLimit-Used-CurrentRequest")
    return RateLimitInfo(limit=int_header(resp, "X-RateLimit-Total"), remaining=remaining, reset_at=None,
                         window_s=window_s, cost=max(1, cost or 1))
