"""The pieces every connector shares (issue 12 item 1): one JSON decoding path, one map-or-quarantine,
one ``html_to_text``, one redaction module. Each test fails on the code where each vendor had its own copy."""

from __future__ import annotations

import logging
import time

import pytest
import responses

from connectors.errors import FatalAPIError, ParseError
from connectors.freshdesk.streams import ListContext
from connectors.http import HttpClient
from connectors.intercom.streams import ContactsStream, StreamContext
from connectors.mapping import MAPPING_ERRORS, map_records
from connectors.normalize import html_to_text
from connectors.redact import RedactingFilter, Redactor

BASE = "https://acme.example.com"


def _client(source: str = "src") -> HttpClient:
    return HttpClient(source=source, base_url=BASE, max_retries=0, sleep=lambda _s: None)


# -- JSON decoding ----------------------------------------------------------------------------------
@responses.activate
def test_a_freshdesk_page_that_is_not_an_array_is_fatal_and_names_source_and_endpoint() -> None:
    responses.get(f"{BASE}/api/v2/groups", json={"oops": 1})
    ctx = ListContext(http=_client("fd"), source="fd")
    with pytest.raises(FatalAPIError) as caught:
        ctx.get_page("/api/v2/groups", {"per_page": 100})
    # before: a bare APIError (neither retriable, skippable nor fatal) without an endpoint
    assert caught.value.source == "fd" and caught.value.endpoint == "/api/v2/groups"
    assert str(caught.value) == "source fd: response to GET /api/v2/groups is a JSON object, not an array (HTTP 200)"


@responses.activate
def test_a_freshdesk_page_that_is_not_json_is_fatal_and_an_empty_one_is_no_records() -> None:
    responses.get(f"{BASE}/api/v2/groups", body="<html>proxy</html>", content_type="text/html")
    responses.get(f"{BASE}/api/v2/agents", body="")
    ctx = ListContext(http=_client("fd"), source="fd")
    with pytest.raises(FatalAPIError, match=r"^source fd: response to GET /api/v2/groups is not valid JSON"):
        ctx.get_page("/api/v2/groups", None)
    assert ctx.get_page("/api/v2/agents", None) == ([], None)


@responses.activate
def test_an_intercom_search_answer_that_is_not_json_names_source_and_endpoint() -> None:
    responses.post(f"{BASE}/contacts/search", body="not json", content_type="text/plain")
    ctx = StreamContext(source="ic", http=_client("ic"), clock=time.time, workers=1)
    with pytest.raises(FatalAPIError) as caught:
        list(ContactsStream(ctx).pages(None))
    # before: "Intercom answered with a body that is not JSON", no source, no endpoint
    assert caught.value.source == "ic" and caught.value.endpoint == "/contacts/search"
    assert "source ic: response to POST /contacts/search is not valid JSON" in str(caught.value)


@responses.activate
def test_get_json_with_expect_refuses_the_wrong_shape_and_an_empty_body() -> None:
    responses.get(f"{BASE}/list", json=[1, 2])
    responses.get(f"{BASE}/empty", body="")
    http = _client()
    with pytest.raises(FatalAPIError, match=r"/list is a JSON array, not an object \(HTTP 200\)"):
        http.get_json("/list", expect=dict)
    with pytest.raises(FatalAPIError, match=r"/empty is empty"):
        http.get_json("/empty", expect=dict)
    assert http.get_json("/empty") is None  # without expect, an empty body is None as before


# -- map or quarantine ------------------------------------------------------------------------------
def test_map_records_quarantines_each_bad_record_with_one_error_format() -> None:
    def to_rows(record: dict[str, object]) -> dict[str, list[dict[str, object]]]:
        if record.get("bad"):
            raise ParseError("created_at: not a timestamp")
        return {"tickets": [{"id": str(record["id"])}]}

    rows, bad = map_records("tickets", [{"id": 1}, {"id": 2, "bad": True}, "junk", {"no_id": 1}], to_rows,
                            ("tickets", "messages"))
    assert rows == {"tickets": [{"id": "1"}], "messages": []}
    assert [(q.record_id, q.error) for q in bad] == [
        ("2", "ParseError: created_at: not a timestamp"),
        (None, "ParseError: expected an object, got str"),
        (None, "KeyError: 'id'"),
    ]


@responses.activate
def test_intercom_quarantine_errors_read_like_the_other_vendors() -> None:
    responses.post(f"{BASE}/contacts/search", json={"type": "list", "data": [{"id": "c1"}], "pages": {}})
    ctx = StreamContext(source="ic", http=_client("ic"), clock=time.time, workers=1)
    [page] = list(ContactsStream(ctx).pages(None))
    assert [q.record_id for q in page.quarantine] == ["c1"]
    assert page.quarantine[0].error.split(":")[0] in {cls.__name__ for cls in MAPPING_ERRORS}  # before: no type


# -- text -------------------------------------------------------------------------------------------
def test_one_html_to_text_for_every_vendor() -> None:
    from connectors.freshdesk import mapping as freshdesk_map
    from connectors.intercom import mapping as intercom_map

    assert freshdesk_map.html_to_text is intercom_map.html_to_text is html_to_text
    assert html_to_text("<div>Hello &amp;  <b>help</b></div><div>  </div><p>bye</p>") == "Hello & help\nbye"


# -- redaction --------------------------------------------------------------------------------------
def test_sync_redaction_is_the_connectors_module() -> None:
    import sync.redaction

    assert sync.redaction.Redactor is Redactor and sync.redaction.RedactingFilter is RedactingFilter


def _record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("deskpulse.x", logging.WARNING, __file__, 1, msg, args, None)


def test_one_filter_masks_patterns_configured_secrets_or_both() -> None:
    line = "GET /x?api_key=abcdef token tok-SECRET-42"
    patterns, secrets = _record(line), _record(line)
    both = _record("%s", line)
    RedactingFilter().filter(patterns)
    RedactingFilter(Redactor(["tok-SECRET-42"])).filter(secrets)
    RedactingFilter(Redactor(["tok-SECRET-42"]), patterns=True).filter(both)
    assert patterns.getMessage() == "GET /x?api_key=*** token tok-SECRET-42"
    assert secrets.getMessage() == "GET /x?api_key=abcdef token ***"
    assert both.getMessage() == "GET /x?api_key=*** token ***"
