"""A local Slack: incoming webhooks, ``chat.postMessage`` and ``conversations.history``, faithful to
API-NOTES.md §4 and §5.4 and, for history, docs.slack.dev/reference/methods/conversations.history plus the
machine-readable copy in slack-ruby/slack-api-ref ``methods/conversations/conversations.history.json``.

What it must get right, because the client is judged against it:

* webhooks answer **plain-text** bodies (``ok``; ``invalid_payload``, ``no_text``, ``invalid_blocks``,
  ``no_service``, ``channel_is_archived``) with 200/400/404/410, never JSON;
* the Web API answers **HTTP 200** with ``{"ok": false, "error": CODE}`` for every error except rate
  limiting, which is HTTP 429 + ``Retry-After`` (1 message per second per channel, by the sim clock);
* Block Kit limits are enforced the way Slack rejects them: ``invalid_blocks`` for a structural
  violation, ``msg_blocks_too_long`` for the undocumented ~13.2k cumulative size, ``msg_too_long``
  for text over 40,000 characters.

Every accepted message is kept in ``messages`` (the payload as posted) for tests and the demo, and in
the channel's history as Slack would return it.

Fault ``"slow"`` on a posting path is Slack's worst case for a client: the message is **recorded first**,
then the answer comes ``delay`` seconds later, after the client's read timeout. (On other paths, and in the
base class, "slow" delays before serving.)
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qs

from connectors.sim.base import Fault, SimRequest, SimResponse, Simulator

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
HISTORY_DEFAULT_LIMIT = 100  # slack-api-ref conversations.history.json: limit default 100, "Maximum of 999"
HISTORY_MAX_LIMIT = 999
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
    ``scopes`` are the bot token's: without ``channels:history`` the history answers ``missing_scope``.
    """

    kind = "slack"

    def __init__(self, *, webhook_path: str = "/services/T000/B000/XXXX", bot_token: str = "xoxb-sim",
                 channels: Sequence[str] = ("#support",), clock: Callable[[], float] = time.time,
                 scopes: Sequence[str] = ("chat:write", "channels:history")) -> None:
        super().__init__(clock=clock)
        if not channels:
            raise ValueError("SlackSim needs at least one channel")
        self.webhook_path = webhook_path
        self.bot_token = bot_token
        self.channel_ids = {name.lstrip("#"): f"C0SIM{i:04d}" for i, name in enumerate(channels, start=1)}
        self.archived: set[str] = set()
        self.webhook_active = True
        self.messages: list[dict[str, Any]] = []
        self.history: dict[str, list[dict[str, Any]]] = {cid: [] for cid in self.channel_ids.values()}
        self.scopes = set(scopes)
        self._last_post: dict[str, float] = {}
        self._last_ts = 0.0
        self._local = threading.local()
        self.route("POST", r"/api/chat\.postMessage", self._post_message)
        self.route("POST", r"/services/.+", self._webhook)
        # "GET https://slack.com/api/conversations.history"; POST with form or JSON works too (docs: content
        # types application/x-www-form-urlencoded, application/json).
        self.route("GET", r"/api/conversations\.history", self._history)
        self.route("POST", r"/api/conversations\.history", self._history)

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
        """Remember which API family is answering, so base-class errors (faults, 404) use its envelope.

        A ``"slow"`` fault on a posting path records the message first and answers ``delay`` seconds later:
        the post lands although the client has given up waiting (what makes an outcome "unknown").
        """
        self._local.web_api = req.path.startswith("/api/")
        posting = req.method == "POST" and (req.path.startswith("/services/") or req.path == "/api/chat.postMessage")
        slow = self.take_fault(req.path, ("slow",)) if posting else None
        self._local.posting = posting
        try:
            resp = super().handle(req)
        finally:
            self._local.posting = False
        if slow is not None:
            time.sleep(slow.delay)
        return resp

    def take_fault(self, path: str, kinds: tuple[str, ...] | None = None) -> Fault | None:
        """As the base, except that a posting path's "slow" faults are taken by :meth:`handle` alone."""
        if getattr(self._local, "posting", False) and kinds is not None and "slow" in kinds:
            kinds = tuple(k for k in kinds if k != "slow")
        return super().take_fault(path, kinds)

    def channel_messages(self, channel: str) -> list[dict[str, Any]]:
        """The messages in ``channel`` (name or id) as history returns them, oldest first."""
        cid = self._resolve(channel) or channel
        with self.lock:
            return list(self.history.get(cid, []))

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

    def _accept(self, channel_id: str, payload: dict[str, Any], *, subtype: str = "bot_message") -> dict[str, Any]:
        """Record a posted message; returns it as chat.postMessage and conversations.history show it."""
        with self.lock:
            now = self.clock()
            self._last_post[channel_id] = now
            self._last_ts = max(now, self._last_ts + 1e-6)  # ts is the message id: unique per workspace
            self.messages.append(payload)
            message: dict[str, Any] = {"type": "message", "subtype": subtype, "bot_id": "B0SIM0001",
                                       "ts": f"{self._last_ts:.6f}", "text": payload.get("text") or ""}
            if payload.get("blocks"):
                message["blocks"] = payload["blocks"]
            if isinstance(payload.get("metadata"), dict):
                message["metadata"] = payload["metadata"]
            self.history.setdefault(channel_id, []).append(message)
            return dict(message)

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
        # metadata is not among the webhook's documented fields for every app (API-NOTES §4.2): not kept.
        self._accept(channel_id, {k: v for k, v in payload.items() if k != "metadata"})
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
        problem = self._content_error(payload) or _metadata_error(payload.get("metadata"))
        if problem is not None:
            return _api_error(problem)
        message = self._accept(channel_id, payload)
        return SimResponse.json({"ok": True, "channel": channel_id, "ts": message["ts"], "message": message})

    # -- conversations.history -----------------------------------------------------------------------
    def _history(self, req: SimRequest) -> SimResponse:
        """``conversations.history``: newest first, ``oldest``/``latest``/``inclusive`` bounds, ``limit`` and
        an opaque ``cursor`` (Slack's decodes to ``next_ts:<ts digits>``, e.g. ``bmV4dF90czoxNTEyMDg1ODYxMDAwNTQz``
        in slack-api-ref's example). Errors are HTTP 200 ``ok: false`` like every Web API method."""
        args = {k: v[-1] for k, v in req.query.items()}
        ctype = (req.header("Content-Type") or "").split(";")[0].strip().lower()
        if req.method == "POST" and req.body:
            if ctype == "application/x-www-form-urlencoded":
                args.update({k: v[-1] for k, v in parse_qs(req.body.decode("utf-8", "replace")).items()})
            elif ctype == "application/json":
                try:
                    body = json.loads(req.body.decode("utf-8"))
                except ValueError:
                    return _api_error("invalid_json")
                if isinstance(body, dict):
                    args.update({k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in body.items()})
            elif not ctype:
                return _api_error("missing_post_type")
            else:
                return _api_error("invalid_post_type")
        auth = req.header("Authorization") or ""
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else args.get("token", "")
        if not token:
            return _api_error("not_authed")
        if token != self.bot_token:
            return _api_error("invalid_auth")
        if "channels:history" not in self.scopes:
            # missing_scope answers name what was needed and what the token has (ConversationsHistoryResponse
            # in @slack/web-api carries `needed` and `provided`)
            return SimResponse.json({"ok": False, "error": "missing_scope", "needed": "channels:history",
                                     "provided": ",".join(sorted(self.scopes))})
        channel_id = args.get("channel", "")
        if channel_id not in self.history:  # an ID is required: "#support" is channel_not_found
            return _api_error("channel_not_found")
        try:
            oldest = float(args.get("oldest") or 0)
        except ValueError:
            return _api_error("invalid_ts_oldest")
        try:
            latest = float(args["latest"]) if args.get("latest") else math.inf
        except ValueError:
            return _api_error("invalid_ts_latest")
        inclusive = args.get("inclusive", "").lower() in ("1", "true")
        try:
            limit = int(args.get("limit") or HISTORY_DEFAULT_LIMIT)
        except ValueError:
            return _api_error("invalid_arguments")
        limit = min(max(limit, 1), HISTORY_MAX_LIMIT)  # UNCONFIRMED: Slack clamps rather than refuses
        before = math.inf
        if args.get("cursor"):
            try:
                decoded = base64.b64decode(args["cursor"], validate=True).decode("ascii")
                if not decoded.startswith("next_ts:"):
                    raise ValueError(decoded)
                before = int(decoded[8:]) / 1e6
            except (ValueError, binascii.Error, UnicodeDecodeError):
                return _api_error("invalid_cursor")
        include_meta = args.get("include_all_metadata", "").lower() in ("1", "true")
        with self.lock:
            window = [m for m in self.history[channel_id]
                      if (float(m["ts"]) > oldest or (inclusive and float(m["ts"]) == oldest))
                      and (float(m["ts"]) < latest or (inclusive and float(m["ts"]) == latest))
                      and float(m["ts"]) <= before]
        window.sort(key=lambda m: float(m["ts"]), reverse=True)
        page, rest = window[:limit], window[limit:]
        messages = [_history_view(m, include_meta) for m in page]
        cursor = ""
        if rest:
            cursor = base64.b64encode(f"next_ts:{rest[0]['ts'].replace('.', '')}".encode()).decode()
        return SimResponse.json({"ok": True, "messages": messages, "has_more": bool(rest), "pin_count": 0,
                                 "response_metadata": {"next_cursor": cursor}})


_WEBHOOK_CODES = {"no_text": "no_text", "invalid_blocks": "invalid_blocks", "msg_blocks_too_long": "invalid_blocks"}


def _metadata_error(metadata: Any) -> str | None:
    """chat.postMessage ``metadata`` must be ``{"event_type": str, "event_payload": {...}}``
    (docs.slack.dev/messaging/message-metadata); Slack's codes for a bad one include
    ``invalid_metadata_format`` (seen in client code; the exact split between codes is UNCONFIRMED)."""
    if metadata is None:
        return None
    if not isinstance(metadata, dict) or not isinstance(metadata.get("event_type"), str) \
            or not isinstance(metadata.get("event_payload"), dict):
        return "invalid_metadata_format"
    return None


def _history_view(message: dict[str, Any], include_metadata: bool) -> dict[str, Any]:
    """A stored message as history shows it: ``event_payload`` only with ``include_all_metadata`` (the
    docs.rs slack-web-api note and matrix-appservice-slack#8; that ``event_type`` alone still shows without
    it is UNCONFIRMED, so clients must not rely on either)."""
    out = dict(message)
    if "metadata" in out and not include_metadata:
        out["metadata"] = {"event_type": out["metadata"].get("event_type")}
    return out


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
            decoded = json.loads(body.decode("utf-8"))
        except ValueError:
            return "invalid_json"
        return decoded if isinstance(decoded, dict) else "invalid_arguments"
    payload: dict[str, Any] = {k: v[0] for k, v in form.items() if k != "token"}
    if "blocks" in payload:
        try:
            payload["blocks"] = json.loads(payload["blocks"])
        except ValueError:
            return "invalid_blocks_format"
    if "metadata" in payload:  # a JSON string in form posts
        try:
            payload["metadata"] = json.loads(payload["metadata"])
        except ValueError:
            return "invalid_metadata_format"
    return payload
