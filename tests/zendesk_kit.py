"""Helpers shared by the Zendesk connector tests: a source, a fake clock, a connector with no real sleeps."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from connectors.base import Page
from connectors.zendesk import ZendeskConnector, build_http
from connectors.zendesk.settings import ZendeskSource
from tests.fake_time import FakeTime

BASE = "https://acme.zendesk.com"
TOKEN = "zd-secret-token-9f8e7d6c"
EMAIL = "ops@acme.example"




def make_source(**overrides: Any) -> ZendeskSource:
    values: dict[str, Any] = {"kind": "zendesk", "name": "acme-zd", "base_url": BASE, "email": EMAIL,
                              "api_token": TOKEN, "max_retries": 2}
    values.update(overrides)
    return ZendeskSource(**values)


def make_connector(source: ZendeskSource | None = None, *, fake: FakeTime | None = None,
                   **kwargs: Any) -> ZendeskConnector:
    source = source or make_source()
    fake = fake or FakeTime()
    http = build_http(source, clock=fake.clock, sleep=fake.sleep)
    return ZendeskConnector(source, http=http, clock=fake.clock, **kwargs)


def load_fixture(fixtures_dir: Path, name: str) -> Any:
    return json.loads((fixtures_dir / name).read_text(encoding="utf-8"))


def query(url: str) -> dict[str, str]:
    """The query string of a request URL as a flat dict (last value wins)."""
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def json_reply(payload: Any, status: int = 200) -> tuple[int, dict[str, str], str]:
    return status, {"Content-Type": "application/json"}, json.dumps(payload)


def drain(pages: Iterator[Page]) -> list[Page]:
    return list(pages)


def rows(pages: list[Page], table: str) -> list[dict[str, Any]]:
    return [row for page in pages for row in page.records.get(table, ())]
