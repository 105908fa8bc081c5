"""Errors raised while talking to an external API, split by what the caller should do.

Messages name the source, the endpoint (path only, never a query string
carrying a secret, never credentials) and the HTTP status: enough to act on,
nothing to leak.
"""

from __future__ import annotations

from config.errors import DeskpulseError


class APIError(DeskpulseError):
    """Something went wrong talking to a vendor API."""

    def __init__(self, message: str, *, status: int | None = None, source: str | None = None,
                 endpoint: str | None = None, vendor_code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.source = source
        self.endpoint = endpoint
        self.vendor_code = vendor_code  # the vendor's short error label (RecordNotFound, channel_not_found, ...)


class RetriableAPIError(APIError):
    """Transient: 429, 5xx, timeouts, dropped connections. The HTTP layer retries these."""

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = None,
                 source: str | None = None, endpoint: str | None = None, vendor_code: str | None = None) -> None:
        super().__init__(message, status=status, source=source, endpoint=endpoint, vendor_code=vendor_code)
        self.retry_after = retry_after


class SkippableAPIError(APIError):
    """One record or one call failed in a way that must not stop the sync (404 on a child, 422 on a write)."""


class BadResponseError(APIError):
    """A 2xx answer whose body is not the JSON the caller needs (an HTML page from a proxy, garbage, a wrong
    shape). Only this call failed: not retried by the HTTP layer, not fatal for the source, so one bad answer
    fails one write and the others go on."""


class FatalAPIError(APIError):
    """Authentication, permission or contract errors: stop this source's sync and tell the user."""


class AuthenticationError(FatalAPIError):
    """401/403: the credentials are wrong, expired or lack permission."""


class ParseError(DeskpulseError):
    """A record did not have the shape the connector expects; it goes to quarantine."""


class PaginationLoopError(FatalAPIError):
    """The vendor led a stream back to a page (cursor, link) it already served in this run.

    Fatal for the stream, not the source: the engine records it on the stream and runs the next one.
    Without it, a cursor that alternates A, B, A, B would keep a sync busy forever (DESIGN.md, sync contract 7).
    """


class Stopped(DeskpulseError):
    """The stop signal (SIGTERM, SIGHUP, SIGINT) interrupted a wait or a request in flight.

    Not a failure: the caller stops cleanly, the page being read is not committed and the stored cursor
    stays where it was, so the next run resumes there. ``in_flight`` says a request had been sent when the
    stop came (its outcome is unknown); otherwise the stop ended a wait and nothing was pending.
    """

    def __init__(self, message: str, *, in_flight: bool = False) -> None:
        super().__init__(message)
        self.in_flight = in_flight
