"""Posting the weekly digest to Slack: an incoming webhook or ``chat.postMessage`` with a bot token.

Two contracts, one result (API-NOTES.md §4):

* an incoming webhook answers plain text: HTTP 200 ``ok``, or a status with a bare code
  (``400 invalid_payload``, ``404 no_service``, ``410 channel_is_archived``, ...);
* ``chat.postMessage`` answers HTTP 200 with ``{"ok": false, "error": CODE}`` for every error, and
  only rate limiting is HTTP 429.

Both go through the shared :class:`~connectors.http.HttpClient`, which waits out a 429 exactly as long
as ``Retry-After`` says. Server errors are *not* retried here: a message post is not idempotent. A post
whose outcome cannot be known (a read timeout, a connection dropped after sending, a 5xx, Slack's own
``fatal_error``) raises :class:`SlackOutcomeUnknownError`: the caller must find out whether it landed
(:meth:`SlackClient.find_message`, ``conversations.history``, Web API only) before posting again.

Every error becomes one line naming the Slack code and what to do about it. The webhook URL (its path
is the secret) and the bot token never appear in a message: the webhook is "Slack incoming webhook".
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3

from config.errors import ConfigError
from config.settings import SlackSettings
from connectors.errors import APIError, FatalAPIError, RetriableAPIError
from connectors.http import HttpClient, vendor_code

logger = logging.getLogger("deskpulse.slack")

WEBHOOK = "Slack incoming webhook"
POST_MESSAGE = "Slack chat.postMessage"
HISTORY = "Slack conversations.history"
#: A channel *ID* (conversations.history accepts only IDs: docs.slack.dev/reference/methods/conversations.history,
#: "channel: Conversation ID to fetch history for"), as opposed to a name like ``#support``.
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
_JSON = {"Content-Type": "application/json; charset=utf-8"}   # without a charset Slack warns missing_charset
_CODE = re.compile(r"^[a-z0-9_]{1,64}$")
_SERVER_ERRORS = frozenset(range(500, 600))

#: What each documented code means for the person reading the error, and what to do.
HINTS: dict[str, str] = {
    "invalid_payload": "the request body was not a JSON message Slack accepts, a deskpulse bug: please report it",
    "user_not_found": "the user who created the webhook no longer exists; create a new webhook",
    "action_prohibited": "a workspace admin restricted posting to this channel",
    "channel_not_found": "the channel does not exist or the app is not in it; check the channel and invite the app",
    "channel_is_archived": "the channel is archived; unarchive it or create a webhook for another channel",
    "is_archived": "the channel is archived; unarchive it or set [slack] channel to another one",
    "not_in_channel": "the app is not a member of the channel; /invite it there",
    "rollup_error": "Slack had an internal error; try again later",
    "no_service": "the webhook was disabled, removed or mistyped; create a new one and update [slack] webhook_url",
    "no_text": "the message had neither text nor blocks, a deskpulse bug: please report it",
    "posting_to_general_channel_denied": "only admins may post to this channel; use a webhook for another channel",
    "invalid_token": "the webhook's token is invalid; create a new webhook and update [slack] webhook_url",
    "no_team": "the Slack workspace no longer exists",
    "team_disabled": "the Slack workspace is disabled",
    "invalid_blocks": "the message broke a Block Kit rule, a deskpulse bug: run 'deskpulse digest --format json' "
                      "and report it",
    "invalid_blocks_format": "the blocks were not valid Block Kit JSON, a deskpulse bug: please report it",
    "msg_blocks_too_long": "the blocks exceed Slack's ~13k-character limit, a deskpulse bug: please report it",
    "msg_too_long": "the text is over Slack's 40,000-character limit",
    "too_many_attachments": "the message has more than 100 attachments",
    "not_authed": "no bot token was sent; set [slack] bot_token",
    "invalid_auth": "the bot token is invalid; check [slack] bot_token",
    "account_inactive": "the bot token belongs to a deactivated user or app; reinstall the app",
    "token_revoked": "the bot token was revoked; reinstall the app and update [slack] bot_token",
    "missing_scope": "the bot token lacks the chat:write scope; add it and reinstall the app",
    "no_permission": "the workspace does not let this app post there",
    "restricted_action": "a workspace preference prevents this app from posting in the channel",
    "rate_limited": "Slack's rate limit (about 1 message per second per channel) held after retrying",
    "ratelimited": "Slack's rate limit (about 1 message per second per channel) held after retrying",
    "request_timeout": "Slack timed out handling the post; try again later",
    "fatal_error": "Slack had an internal error; try again later",
    "internal_error": "Slack had an internal error; try again later",
    "service_unavailable": "Slack is unavailable; try again later",
    "invalid_arguments": "Slack did not accept the request's arguments, a deskpulse bug: please report it",
    "invalid_json": "Slack could not parse the request body, a deskpulse bug: please report it",
    "invalid_form_data": "Slack could not parse the request body, a deskpulse bug: please report it",
    "invalid_post_type": "Slack did not accept the request's content type, a deskpulse bug: please report it",
    "missing_post_type": "Slack did not accept the request's content type, a deskpulse bug: please report it",
}
#: Codes that say "not now" rather than "not like this": the caller may post the same digest again later.
TRANSIENT = frozenset({"rate_limited", "ratelimited", "rollup_error", "request_timeout", "fatal_error",
                       "internal_error", "service_unavailable"})


class SlackError(FatalAPIError):
    """Slack refused the digest; posting it again unchanged will fail again (``code`` says why)."""

    def __init__(self, message: str, *, code: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.code = code


class SlackUnavailableError(RetriableAPIError):
    """Slack could not take the digest now (rate limit, 5xx, network); posting it again later may work."""

    def __init__(self, message: str, *, code: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.code = code


class SlackOutcomeUnknownError(SlackUnavailableError):
    """The post may have landed: no answer after sending (read timeout, dropped connection), a 5xx, or Slack's
    ``fatal_error``/``internal_error`` ("It's possible some aspect of the operation succeeded before the error
    was raised", slack-api-ref ``conversations.history.json`` / chat.postMessage errors). Posting again
    unchecked may post twice: look it up first (:meth:`SlackClient.find_message`)."""


#: Slack's own words for these codes admit that the operation may have partly succeeded.
MAYBE_DONE = frozenset({"fatal_error", "internal_error"})


class _SendRecorder(requests.Session):
    """A session that remembers whether its last failed send provably never reached the server.

    ``requests`` raises one ``ConnectionError`` both for "connection refused" (nothing sent: safe to post
    again) and for "connection dropped after the request went out" (maybe posted). urllib3's
    ``NewConnectionError`` (refused, DNS failure) and ``ConnectTimeout`` tell the first apart.
    """

    def __init__(self) -> None:
        super().__init__()
        self.never_sent = False

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.never_sent = False
        try:
            return super().send(request, **kwargs)
        except requests.ConnectTimeout:
            self.never_sent = True
            raise
        except requests.ConnectionError as exc:
            reason = getattr(exc.args[0], "reason", None) if exc.args else None
            self.never_sent = isinstance(reason, urllib3.exceptions.NewConnectionError)
            raise


@dataclass(frozen=True, slots=True)
class PostResult:
    """A posted message. Webhooks answer only ``ok``, so ``ts``/``channel`` are known for the Web API only."""

    ok: bool
    ts: str | None = None
    channel: str | None = None
    via: str = "webhook"


def describe(code: str | None, *, via: str, status: int | None = None) -> str:
    """One actionable line for a Slack error code, e.g. ``Slack rejected the digest: channel_not_found (...)``."""
    shown = code if code and _CODE.match(code) else None
    hint = HINTS.get(shown or "")
    http = f"HTTP {status}" if status is not None and status != 200 else ""
    if shown in TRANSIENT or (shown is None and status is not None and (status == 429 or status >= 500)):
        lead = f"{via} could not take the digest"
    else:
        lead = f"{via} rejected the digest"
    if shown is None:
        return f"{lead}: unexpected response ({http or 'no error code'})"
    detail = "; ".join(p for p in (http, hint) if p)
    return f"{lead}: {shown} ({detail})" if detail else f"{lead}: {shown}"


class SlackClient:
    """Posts a Block Kit payload to the configured destination.

    With ``bot_token`` and ``channel`` it uses ``chat.postMessage`` (the answer carries the message ``ts``,
    useful for the outbox record) and can look a message up again in ``conversations.history``; otherwise
    the incoming ``webhook_url``, which can only post. ``http`` injects a ready :class:`HttpClient`;
    ``sleep``/``clock`` are what a 429 wait uses (tests inject a fake pair); ``timeout`` is (connect, read).
    """

    def __init__(self, settings: SlackSettings, *, http: HttpClient | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time,
                 max_retries: int = 3, max_retry_wait: float = 120.0,
                 timeout: tuple[float, float] = (10.0, 30.0), stop: threading.Event | None = None) -> None:
        self._token = settings.bot_token.get_secret_value() if settings.bot_token is not None else None
        self._channel = settings.channel
        if self._token:
            self.via, base_url, self._target = POST_MESSAGE, settings.api_base_url, "/api/chat.postMessage"
        elif settings.webhook_url is not None:
            url = settings.webhook_url.get_secret_value()
            parts = urlsplit(url)
            self.via, base_url, self._target = WEBHOOK, f"{parts.scheme}://{parts.netloc}", url
        else:
            raise ConfigError("no Slack destination configured: set [slack] webhook_url, or bot_token and channel")
        headers = {**_JSON, "Authorization": f"Bearer {self._token}"} if self._token else dict(_JSON)
        self._session = _SendRecorder() if http is None else None
        self._http = http if http is not None else HttpClient(
            source="slack", base_url=base_url, headers=headers, timeout=timeout, max_retries=max_retries,
            max_retry_wait=max_retry_wait, sleep=sleep, clock=clock, session=self._session)
        self._owns_http = http is None
        if stop is not None:  # the daemon's SIGTERM ends a Retry-After wait at once (Stopped), not after 120 s
            self._http.watch_stop(stop)
        self._headers = headers  # sent per request too, so an injected client posts with our auth and charset

    @property
    def verifiable(self) -> bool:
        """Whether a post can be looked up afterwards (Web API: yes; an incoming webhook cannot read)."""
        return self.via == POST_MESSAGE

    @property
    def channel_id(self) -> str | None:
        """The configured channel when it is an ID (``C…``); a name needs an ID learnt from an earlier post."""
        return self._channel if self._channel and CHANNEL_ID.match(self._channel) else None

    def post(self, payload: dict[str, Any], *, metadata: dict[str, Any] | None = None) -> PostResult:
        """Post ``payload`` (``{"text": ..., "blocks": [...]}``); raise :class:`SlackError` or
        :class:`SlackUnavailableError` with a one-line, secret-free explanation when Slack says no, and
        :class:`SlackOutcomeUnknownError` when the post may have landed all the same.

        ``metadata`` (``{"event_type", "event_payload"}``, docs.slack.dev/messaging/message-metadata) goes with a
        Web API post only, so :meth:`find_message` can recognise the message later.
        """
        if self.via == WEBHOOK:
            body = {k: v for k, v in payload.items() if k != "channel"}
        else:
            body = {**payload, "channel": self._channel}
            if metadata is not None:
                body["metadata"] = metadata
        try:
            # 5xx and read timeouts are not retried: the post may have landed. Only 429 (never posted) and a
            # connect timeout (never sent) are waited out and resent.
            resp = self._http.request("POST", self._target, json=body, headers=self._headers,
                                      no_retry=_SERVER_ERRORS, repeatable=False)
        except APIError as exc:
            raise self._translate(exc) from None
        if self.via == WEBHOOK:
            text = resp.text.strip()
            if text != "ok":
                logger.warning("%s answered HTTP %d with an unexpected body; assuming the post landed",
                               WEBHOOK, resp.status_code)
            logger.info("digest posted via %s", WEBHOOK)
            return PostResult(ok=True, via="webhook")
        try:
            answer: Any = resp.json()
        except ValueError:  # a proxy's HTML page, an empty body: not Slack's answer
            answer = None
        return self._web_api_result(answer, resp.status_code)

    def find_message(self, marker: str, *, oldest: float, channel: str | None = None,
                     max_pages: int = 20) -> PostResult | None:
        """The message carrying ``marker`` posted at or after ``oldest`` (epoch seconds), or None when the
        channel's history since then has none: the answer to "did that unanswered post land?".

        ``conversations.history`` (docs.slack.dev/reference/methods/conversations.history): ``channel`` must be
        an ID; ``oldest``/``inclusive`` bound the window; ``limit`` ≤ 999 (15 for apps distributed outside the
        Marketplace since 2025, so fewer per page is normal); pages follow ``response_metadata.next_cursor``
        while ``has_more``; errors are HTTP 200 ``ok: false`` (``missing_scope`` without ``channels:history``).
        ``include_all_metadata`` is needed for ``event_payload`` (Automattic/matrix-appservice-slack#8); the
        marker is also matched as a ``block_id``, which history always returns with the blocks. Raises
        :class:`SlackError` (cannot check, e.g. a missing scope) or :class:`SlackUnavailableError` (try later);
        a history that cannot be read to its end is never reported as "not there".
        """
        if not self.verifiable:
            raise SlackError(f"{WEBHOOK} cannot read the channel, so whether a post landed cannot be checked",
                             source="slack")
        channel_id = channel or self.channel_id
        if not channel_id:
            raise SlackError(f"{HISTORY} needs the channel ID: set [slack] channel to the channel's ID (C…) "
                             "instead of its name", source="slack")
        auth = {"Authorization": f"Bearer {self._token}"}
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(max_pages):
            params = {"channel": channel_id, "oldest": f"{oldest:.6f}", "inclusive": "true", "limit": "100",
                      "include_all_metadata": "true", **({"cursor": cursor} if cursor else {})}
            try:
                resp = self._http.request("GET", "/api/conversations.history", params=params, headers=auth)
            except APIError as exc:
                status = exc.status
                raise SlackUnavailableError(f"{HISTORY} could not be read ({_status_or_cause(exc)}); try again "
                                            "later", status=status, source="slack") from None
            try:
                body = resp.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                raise SlackUnavailableError(f"{HISTORY} answered something that is not Slack's JSON "
                                            f"(HTTP {resp.status_code})", status=resp.status_code, source="slack")
            if body.get("ok") is not True:
                raise self._history_error(body)
            for message in body.get("messages") or []:
                if isinstance(message, dict) and carries_marker(message, marker):
                    return PostResult(ok=True, ts=_opt_str(message.get("ts")), channel=channel_id,
                                      via="chat.postMessage")
            cursor = (body.get("response_metadata") or {}).get("next_cursor") or None
            if not body.get("has_more"):
                return None
            if cursor is None or cursor in seen:
                raise SlackUnavailableError(f"{HISTORY} said there is more but gave no new cursor; try again "
                                            "later", source="slack")
            seen.add(cursor)
        raise SlackUnavailableError(f"{HISTORY} has more than {max_pages} pages since the post; cannot tell "
                                    "whether it landed", source="slack")

    def close(self) -> None:
        if self._owns_http:
            self._http.close()
            if self._session is not None:
                self._session.close()

    def __enter__(self) -> SlackClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- answers ------------------------------------------------------------------------------------
    def _web_api_result(self, body: Any, status: int) -> PostResult:
        if not isinstance(body, dict):
            raise SlackError(describe(None, via=self.via, status=status), status=status, source="slack")
        warnings = (body.get("response_metadata") or {}).get("warnings") or []
        if warnings:
            logger.info("%s warnings: %s", self.via, ", ".join(str(w)[:40] for w in warnings[:5]))
        if body.get("ok") is True:
            logger.info("digest posted via %s (channel %s, ts %s)", self.via, body.get("channel"), body.get("ts"))
            return PostResult(ok=True, ts=_opt_str(body.get("ts")), channel=_opt_str(body.get("channel")),
                              via="chat.postMessage")
        code = body.get("error") if isinstance(body.get("error"), str) else None
        message = describe(code, via=self.via)
        details = (body.get("response_metadata") or {}).get("messages") or []
        if details and code in ("invalid_blocks", "invalid_blocks_format", "invalid_arguments"):
            message += f" [{' '.join(str(details[0]).split())[:160]}]"
        cls = SlackOutcomeUnknownError if code in MAYBE_DONE else SlackUnavailableError if code in TRANSIENT \
            else SlackError
        raise cls(message, code=code if code and _CODE.match(code) else None, status=status, source="slack")

    def _translate(self, exc: APIError) -> APIError:
        """The HTTP layer's error → ours: the same status, Slack's code and a hint; nothing of the URL."""
        status = exc.status
        code = vendor_code(exc)
        code = code if code and _CODE.match(code) else None
        if code is None and status == 429:  # Slack's 429 only ever means this (the layer's give-up error has no body)
            code = "rate_limited"
        if code is None and status is None:  # no HTTP answer at all: connection refused, timeout, ...
            cause = getattr(exc, "cause", None) or "network error"
            never_sent = cause == "ConnectTimeout" or (self._session is not None and self._session.never_sent)
            if never_sent:
                return SlackUnavailableError(f"{self.via} could not be reached ({cause}); try again later",
                                             status=None, source="slack")
            return SlackOutcomeUnknownError(f"{self.via} did not answer ({cause}) after the digest was sent; "
                                            "it may have been posted", status=None, source="slack")
        message = describe(code, via=self.via, status=status)
        if (status is not None and status >= 500) or code in MAYBE_DONE:  # the server may have stored it first
            return SlackOutcomeUnknownError(message, code=code, status=status, source="slack")
        retriable = isinstance(exc, RetriableAPIError) or code in TRANSIENT
        if retriable:
            return SlackUnavailableError(message, code=code, status=status, source="slack",
                                         retry_after=getattr(exc, "retry_after", None))
        return SlackError(message, code=code, status=status, source="slack")

    def _history_error(self, body: dict[str, Any]) -> APIError:
        code = body.get("error") if isinstance(body.get("error"), str) and _CODE.match(body["error"]) else None
        if code == "missing_scope":
            needed = re.sub(r"[^a-z:_,.]", "", str(body.get("needed") or ""))[:60] or "channels:history"
            return SlackError(f"{HISTORY} refused: missing_scope (the bot token lacks {needed}, needed to check "
                              "whether an unanswered post landed; add it and reinstall the app, or check the "
                              "channel yourself and post with --force)", code=code, source="slack")
        hint = {"channel_not_found": "set [slack] channel to the ID of a channel the app is in",
                "not_in_channel": "invite the app to the channel"}.get(code or "", HINTS.get(code or ""))
        text = f"{HISTORY} refused: {code or 'unexpected response'}" + (f" ({hint})" if hint else "")
        cls = SlackUnavailableError if code in TRANSIENT or code in MAYBE_DONE else SlackError
        return cls(text, code=code, source="slack")


def carries_marker(message: dict[str, Any], marker: str) -> bool:
    """Whether a history message is ours: ``metadata.event_payload.marker`` or a block's ``block_id``."""
    meta = message.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("event_payload"), dict) \
            and meta["event_payload"].get("marker") == marker:
        return True
    return any(isinstance(b, dict) and b.get("block_id") == marker for b in message.get("blocks") or [])


def _status_or_cause(exc: APIError) -> str:
    return f"HTTP {exc.status}" if exc.status is not None else str(getattr(exc, "cause", None) or "network error")


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)

