"""redact_url / redact_text / the urllib3 log filter: credentials never survive, everything else does."""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.redact import RedactingFilter, is_sensitive_name, redact_path, redact_text, redact_url, scrub


@pytest.mark.parametrize(("url", "expected"), [
    ("https://user:pw@acme.zendesk.com/api/v2/tickets.json", "https://acme.zendesk.com/api/v2/tickets.json"),
    ("https://acme.freshdesk.com/api/v2/tickets?page=2&per_page=100",
     "https://acme.freshdesk.com/api/v2/tickets?page=2&per_page=100"),
    ("https://x.example/cb?api_key=abc&token=def&password=ghi&signature=jkl&auth=mno&client_secret=pqr&q=keep",
     "https://x.example/cb?api_key=***&token=***&password=***&signature=***&auth=***&client_secret=***&q=keep"),
    ("https://x.example/a?access_token=abc#frag=xyz", "https://x.example/a?access_token=***"),
    ("https://hooks.slack.com/services/T000/B000/XXXX", "https://hooks.slack.com/services/***"),
    ("https://hooks.slack.com/triggers/T000/123/abcd", "https://hooks.slack.com/triggers/***"),
    ("http://127.0.0.1:8765/services/T000/B000/XXXX", "http://127.0.0.1:8765/services/***"),
    ("https://x.example/a?opaquesecretvalue", "https://x.example/a?***"),
    ("http://[::1]:8080/x?key=v", "http://[::1]:8080/x?key=***"),
])
def test_redact_url_examples(url, expected):
    assert redact_url(url) == expected


def test_redact_url_never_raises_and_never_echoes_garbage():
    assert redact_url("http://[::1:80/secret") == "<unparseable url>"


def test_redact_path_masks_webhook_paths_only():
    assert redact_path("/api/v2/tickets/12.json") == "/api/v2/tickets/12.json"
    assert redact_path("/services/T/B/X") == "/services/***"
    assert redact_path("/anything/here", "hooks.slack.com") == "/anything/***"


def test_redact_text_masks_urls_inside_log_lines():
    line = ('https://acme.example.com:443 "GET /api/v2/x.json?per_page=100&api_token=SEKRIT123 HTTP/1.1" 200 5 '
            "https://me:SEKRIT456@host/x Authorization: Bearer SEKRIT789abc hooks /services/T/B/SEKRIT000")
    cleaned = redact_text(line)
    assert "SEKRIT" not in cleaned
    assert "per_page=100" in cleaned and "GET /api/v2/x.json" in cleaned


def test_redacting_filter_rewrites_only_records_that_need_it():
    args = ("GET", "/x?key=S3CR3T")
    record = logging.LogRecord("urllib3.connectionpool", logging.DEBUG, __file__, 1, '"%s %s"', args, None)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == '"GET /x?key=***"'
    plain = logging.LogRecord("x", logging.DEBUG, __file__, 1, "count=%d", (3,), None)
    RedactingFilter().filter(plain)
    assert (plain.msg, plain.args) == ("count=%d", (3,))


def test_scrub_replaces_known_secret_values():
    assert scrub("bad token abcd1234 here", {"abcd1234", "x"}) == "bad token *** here"


# -- properties ---------------------------------------------------------------------------------------
names = st.from_regex(r"[a-z][a-z_]{0,11}", fullmatch=True)
values = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
secrets = st.from_regex(r"S3CRET[A-Za-z0-9]{6,12}", fullmatch=True)
sensitive_names = st.sampled_from(["api_key", "token", "access_token", "password", "signature", "auth", "secret",
                                   "apiKey", "client_secret", "X-Auth", "sig"])
hosts = st.sampled_from(["acme.zendesk.com", "api.intercom.io", "127.0.0.1:8080", "acme.freshdesk.com"])
paths = st.lists(st.from_regex(r"[a-z0-9_.-]{1,10}", fullmatch=True), max_size=4).map(lambda p: "/" + "/".join(p))


@given(hosts, paths, st.lists(st.tuples(names, values), max_size=4), sensitive_names, secrets,
       st.booleans(), st.integers(min_value=0, max_value=4))
def test_redact_url_hides_secrets_and_keeps_the_rest(host, path, plain, secret_name, secret, userinfo, position):
    plain = [(name, value) for name, value in plain if not is_sensitive_name(name)]
    params = list(plain)
    params.insert(min(position, len(params)), (secret_name, secret))
    auth = f"agent:{secret}@" if userinfo else ""
    url = f"https://{auth}{host}{path}?{urlencode(params)}"
    red = redact_url(url)
    assert secret not in red
    parts = urlsplit(red)
    assert parts.netloc == host and parts.path == path
    assert [pair for pair in parse_qsl(parts.query, keep_blank_values=True) if pair[0] != secret_name] == plain
    assert redact_url(red) == red  # idempotent: redacting twice changes nothing
