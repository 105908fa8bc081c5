"""HttpClient with an auth hook that sets a bytes header (requests allows it): the secret is still scrubbed.

requests' PreparedRequest headers may hold ``bytes`` values (HTTP headers are latin-1). The client probes the
auth hook once to learn what to scrub; a bytes Authorization header used to reach ``str`` handling and fail
the client's construction with a TypeError (the type checker found it: ``set[str | bytes]`` was not ``set[str]``).
"""

from __future__ import annotations

import traceback

import pytest
import requests
import responses

from connectors.errors import AuthenticationError
from connectors.http import HttpClient

BASE = "https://acme.example.com"
SECRET = "bytes-tok-5c1e9a7f3b"


class BytesBearer(requests.auth.AuthBase):
    """A custom auth hook whose header value is bytes, as a third-party auth class may set it."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {SECRET}".encode("latin-1")
        return r


def test_a_bytes_authorization_header_is_scrubbed_from_errors():
    client = HttpClient(source="acme", base_url=BASE, auth=BytesBearer(), max_retries=0,
                        sleep=lambda _s: None, clock=lambda: 1_700_000_000.0)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{BASE}/api/v2/tickets.json", json={"error": f"bad token {SECRET}"}, status=401)
        with pytest.raises(AuthenticationError) as info:
            client.get_json("/api/v2/tickets.json")
    text = "".join(traceback.format_exception(info.value))
    assert "authentication failed for source acme" in text
    assert SECRET not in text
    assert SECRET not in repr(vars(info.value))
