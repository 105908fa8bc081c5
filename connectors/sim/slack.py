"""A local Slack: incoming webhooks and ``chat.postMessage``, faithful to API-NOTES.md §4 and §5.4.

What it must get right, because the client is judged against it:

* webhooks answer **plain-text** bodies (``ok``; ``invalid_payload``, ``no_text``, ``invalid_blocks``,
  ``no_service``, ``channel_is_archived``) with 200/400/404/410, never JSON;
* the Web API answers **HTTP 200** with ``{"ok": false, "error": CODE}`` for every error except rate
  limiting, which is HTTP 429 + ``Retry-After`` (1 message per second per channel, by the sim clock);
* Block Kit limits are enforced the way Slack rejects them: ``invalid_blocks`` for a structural
  violation, ``msg_blocks_too_long`` for the undocumented ~13.2k cumulative size, ``msg_too_long``
  for text over 40,000 characters.

Every accepted message is kept in ``messages`` (the payload as posted) for tests and the demo.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qs

from connectors.sim.base import SimRequest, SimResponse, Simulator

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_BLOCK_ID = 255
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_CONTEXT_ELEMENTS = 10
MAX_MARKDOWN_TOTAL = 12_000
MAX_CUMULATIVE = 13_200      # undocumented; bolt-js #2509 measured ~13.2k across all blocks
MAX_TEXT = 40_000
BLOCK_TYPES = frozenset({"section", "header", "divider", "context", "actions", "image", "input", "markdown",
                         "rich_text", "file", "video"})


def cumulative_size(blocks: Sequence[Any]) -> int:
    """The size Slack's ``msg_blocks_too_long`` guards, measured as compact JSON (block containers count too:
    bolt-js #2867 saw messages rejected whose text alone summed to only 11.3k)."""
    return len(json.dumps(list(blocks), ensure_ascii=False, separators=(",", ":")))


def _check_text(obj: Any, where: str, limit: int, *, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return [f"{where}: must be a text object with a string 'text'"]
    kind = obj.get("type")
    if kind not in ("plain_text", "mrkdwn") or (plain_only and kind != "plain_text"):
        return [f"{where}: type must be {'plain_text' if plain_only else 'plain_text or mrkdwn'}, not {kind!r}"]
    text = obj["text"]
    if not text:
        return [f"{where}: text must not be empty"]
    if len(text) > limit:
        return [f"{where}: text is {len(text):,} characters (max {limit:,})"]
    return []


def validate_blocks(blocks: Any) -> list[str]:
    """Every Block Kit violation in ``blocks`` (empty list: Slack would accept it), one line each.

    Enforces: ≤ 50 blocks, known block types, ``block_id`` ≤ 255 and unique, section text ≤ 3000,
    section ``fields`` ≤ 10 of ≤ 2000, header plain_text ≤ 150, context ≤ 10 elements, and ≤ 12,000
    characters across markdown blocks. The cumulative ~13.2k size is separate (``cumulative_size``)
    because Slack reports it with its own error code.
    """
    if not isinstance(blocks, list):
        return ["blocks must be a JSON array"]
    problems: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"{len(blocks)} blocks (max {MAX_BLOCKS})")
    seen_ids: set[str] = set()
    markdown_total = 0
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            kind = block.get("type") if isinstance(block, dict) else type(block).__name__
            problems.append(f"block {i}: unknown block type {kind!r}")
            continue
        kind = block["type"]
        where = f"block {i} ({kind})"
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or not block_id or len(block_id) > MAX_BLOCK_ID:
                problems.append(f"{where}: block_id must be 1-{MAX_BLOCK_ID} characters")
            elif block_id in seen_ids:
                problems.append(f"{where}: duplicate block_id {block_id!r}")
            else:
                seen_ids.add(block_id)
        if kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append(f"{where}: needs text or fields")
            if "text" in block:
                problems += _check_text(block["text"], f"{where} text", MAX_SECTION_TEXT)
            if "fields" in block:
                fields = block["fields"]
                if not isinstance(fields, list) or not fields:
                    problems.append(f"{where}: fields must be a non-empty array")
                    continue
                if len(fields) > MAX_FIELDS:
                    problems.append(f"{where}: {len(fields)} fields (max {MAX_FIELDS})")
                for j, fld in enumerate(fields):
                    problems += _check_text(fld, f"{where} field {j}", MAX_FIELD_TEXT)
        elif kind == "header":
            problems += _check_text(block.get("text"), f"{where} text", MAX_HEADER_TEXT, plain_only=True)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements or len(elements) > MAX_CONTEXT_ELEMENTS:
                problems.append(f"{where}: elements must be 1-{MAX_CONTEXT_ELEMENTS} items")
                continue
            for j, element in enumerate(elements):
                if isinstance(element, dict) and element.get("type") == "image":
                    continue
                problems += _check_text(element, f"{where} element {j}", MAX_SECTION_TEXT)
        elif kind == "markdown":
            text = block.get("text")
            if not isinstance(text, str) or not text:
                problems.append(f"{where}: text must be a non-empty string")
            else:
                markdown_total += len(text)
    if markdown_total > MAX_MARKDOWN_TOTAL:
        problems.append(f"markdown blocks hold {markdown_total:,} characters (max {MAX_MARKDOWN_TOTAL:,})")
    return problems


class SlackSim(Simulator):
    """Slack's incoming webhook and ``chat.postMessage`` on one simulator.

    ``channels`` are names (with or without ``#``); each gets a stable id ``C0SIM0001``, ... . The
    webhook posts to the first channel. ``archive(name)`` makes a channel answer ``is_archived`` /
    ``410 channel_is_archived``; ``revoke_webhook()`` makes the webhook answer ``404 no_service``.
    """

    kind = "slack"

    def __init__(self, *, webhook_path: str = "/services/T000/B000/XXXX", bot_token: str = "xoxb-sim",
                 channels: Sequence[str] = ("#support",), clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock=clock)
        if not channels:
            raise ValueError("SlackSim needs at least one channel")
        self.webhook_path = webhook_path
        self.bot_token = bot_token
        self.channel_ids = {name.lstrip("#"): f"C0SIM{i:04d}" for i, name in enumerate(channels, start=1)}
        self.archived: set[str] = set()
        self.webhook_active = True
        self.messages: list[dict[str, Any]] = []
        self._last_post: dict[str, float] = {}
        self._last_ts = 0.0
        self._local = threading.local()
        self.route("POST", r"/api/chat\.postMessage", self._post_message)
        self.route("POST", r"/services/.+", self._webhook)

    validate_blocks = staticmethod(validate_blocks)

    @property
    def webhook_url(self) -> str:
        return f"{self.base_url}{self.webhook_path}"

    def archive(self, channel: str) -> None:
        self.archived.add(self._resolve(channel) or channel)

    def revoke_webhook(self) -> None:
        self.webhook_active = False

    # -- plumbing ------------------------------------------------------------------------------------
    def handle(self, req: SimRequest) -> SimResponse:
        """Remember which API family is answering, so base-class errors (faults, 404) use its envelope."""
        self._local.web_api = req.path.startswith("/api/")
        return super().handle(req)

    def error(self, status: int, message: str) -> SimResponse:
        """Slack's envelope for base-class answers (injected 429/5xx faults, unknown paths)."""
        web_api = getattr(self._local, "web_api", False)
        if status == 429:
            code = "rate_limited"
        elif status >= 500:
            code = "fatal_error" if web_api else "rollup_error"
        elif status == 404:
            code = "unknown_method" if web_api else "no_service"
        else:
            code = message
        return SimResponse.json({"ok": False, "error": code}, status) if web_api else SimResponse.text(code, status)

    def _resolve(self, channel: str) -> str | None:
        if channel in self.channel_ids.values():
            return channel
        return self.channel_ids.get(channel.lstrip("#"))

    def _throttle(self, channel_id: str) -> float | None:
        """Seconds until ``channel_id`` may post again (1 message/s/channel), or None when it may now."""
        with self.lock:
            last = self._last_post.get(channel_id)
            now = self.clock()
            if last is not None and now - last < 1.0:
                return max(1.0 - (now - last), 0.001)
        return None

    def _accept(self, channel_id: str, payload: dict[str, Any]) -> str:
        with self.lock:
            now = self.clock()
            self._last_post[channel_id] = now
            self._last_ts = max(now, self._last_ts + 1e-6)  # ts is the message id: unique per workspace
            self.messages.append(payload)
            return f"{self._last_ts:.6f}"

    def _content_error(self, payload: dict[str, Any]) -> str | None:
        text, blocks = payload.get("text"), payload.get("blocks")
        if not text and not blocks:
            return "no_text"
        if text is not None and not isinstance(text, str):
            return "invalid_arguments"
        if isinstance(text, str) and len(text) > MAX_TEXT:
            return "msg_too_long"
        if blocks is not None:
            if validate_blocks(blocks):
                return "invalid_blocks"
            if cumulative_size(blocks) > MAX_CUMULATIVE:
                return "msg_blocks_too_long"
        return None

    # -- incoming webhook ----------------------------------------------------------------------------
    def _webhook(self, req: SimRequest) -> SimResponse:
        if req.path != self.webhook_path or not self.webhook_active:
            return SimResponse.text("no_service", 404)
        payload = _webhook_payload(req)
        if payload is None:
            return SimResponse.text("invalid_payload", 400)
        channel_id = next(iter(self.channel_ids.values()))
        if channel_id in self.archived:
            return SimResponse.text("channel_is_archived", 410)
        wait = self._throttle(channel_id)
        if wait is not None:
            return SimResponse.text("rate_limited", 429, {"Retry-After": str(math.ceil(wait))})
        problem = self._content_error(payload)
        if problem is not None:  # webhooks have fewer codes: every block problem is invalid_blocks (UNCONFIRMED)
            return SimResponse.text(_WEBHOOK_CODES.get(problem, "invalid_payload"), 400)
        self._accept(channel_id, payload)
        return SimResponse.text("ok")

    # -- chat.postMessage ----------------------------------------------------------------------------
    def _post_message(self, req: SimRequest) -> SimResponse:
        ctype = (req.header("Content-Type") or "").split(";")[0].strip().lower()
        if not ctype:
            return _api_error("missing_post_type")
        if ctype not in ("application/json", "application/x-www-form-urlencoded"):
            return _api_error("invalid_post_type")
        form = parse_qs(req.body.decode("utf-8", "replace")) if ctype.endswith("urlencoded") else {}
        auth = req.header("Authorization") or ""
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else (form.get("token") or [""])[0]
        if not token:
            return _api_error("not_authed")
        if token != self.bot_token:
            return _api_error("invalid_auth")
        payload = _api_payload(ctype, req.body, form)
        if isinstance(payload, str):
            return _api_error(payload)
        channel_id = self._resolve(str(payload.get("channel") or ""))
        if channel_id is None:
            return _api_error("channel_not_found")
        if channel_id in self.archived:
            return _api_error("is_archived")
        wait = self._throttle(channel_id)
        if wait is not None:
            return SimResponse.json({"ok": False, "error": "rate_limited"}, 429,
                                    {"Retry-After": str(math.ceil(wait))})
        problem = self._content_error(payload)
        if problem is not None:
            return _api_error(problem)
        ts = self._accept(channel_id, payload)
        message = {"type": "message", "subtype": "bot_message", "bot_id": "B0SIM0001", "ts": ts,
                   "text": payload.get("text") or ""}
        if payload.get("blocks"):
            message["blocks"] = payload["blocks"]
        return SimResponse.json({"ok": True, "channel": channel_id, "ts": ts, "message": message})


_WEBHOOK_CODES = {"no_text": "no_text", "invalid_blocks": "invalid_blocks", "msg_blocks_too_long": "invalid_blocks"}


def _api_error(code: str) -> SimResponse:
    return SimResponse.json({"ok": False, "error": code})


def _webhook_payload(req: SimRequest) -> dict[str, Any] | None:
    """The JSON body, or the ``payload=`` form field webhooks also accept; None when it is not a JSON object."""
    raw = req.body.decode("utf-8", "replace")
    if (req.header("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
        raw = (parse_qs(raw).get("payload") or [""])[0]
    try:
        payload = json.loads(raw)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _api_payload(ctype: str, body: bytes, form: dict[str, list[str]]) -> dict[str, Any] | str:
    """chat.postMessage arguments from a JSON or form body, or the Slack error code for a malformed one."""
    if ctype == "application/json":
        try:
            payload = json.loads(body.decode("utf-8"))
        except ValueError:
            return "invalid_json"
        return payload if isinstance(payload, dict) else "invalid_arguments"
    payload: dict[str, Any] = {k: v[0] for k, v in form.items() if k != "token"}
    if "blocks" in payload:
        try:
            payload["blocks"] = json.loads(payload["blocks"])
        except ValueError:
            return "invalid_blocks_format"
    return payload
