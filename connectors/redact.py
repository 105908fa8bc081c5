"""Keep secrets out of every message, log line and exception, by construction.

The HTTP layer builds its messages from the method and the URL *path* only,
passed through :func:`redact_path`, so a token in a query string or a Slack
webhook URL (whose path *is* the secret) never reaches a log or the database.
:func:`redact_url` is for the rare place that must show a whole URL (a
pagination-loop error, a refused cross-host link); :func:`redact_text` and
:class:`RedactingFilter` are the safety net for text we do not build ourselves,
such as urllib3's DEBUG line that quotes the full request target.

:class:`Redactor` is the last line of defence: it masks every configured secret *value* (a token, a
webhook URL) in any text we output (log lines, the terminal, ``sync_state.last_error``), built from the
settings by the CLI and the daemon. This is the one redaction module; ``sync/redaction.py`` re-exports it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from pydantic import BaseModel, SecretStr

MASK = "***"

#: Query parameter names whose values are credentials (api_key, access_token, client_secret, sig, auth, ...).
SENSITIVE_NAME = re.compile(r"token|key|secret|passw|pwd|signature|^sig$|auth|credential|session|jwt|bearer", re.I)

_SLACK_HOOK_HOST = re.compile(r"^hooks\.slack(-gov)?\.com$", re.I)
_USERINFO_IN_TEXT = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)[^/\s@'\"]*@", re.I)
_PARAM_IN_TEXT = re.compile(r"(?P<name>[A-Za-z0-9_.\-\[\]%]+)=(?P<value>[^&\s'\"#;]*)")
_SERVICES_IN_TEXT = re.compile(r"/(?P<kind>services|triggers|workflows)/[^\s'\"?#]+")
_SCHEME_CREDENTIAL = re.compile(r"\b(?P<scheme>bearer|basic)(?P<sep>\s+)[A-Za-z0-9._~+/=-]{8,}", re.I)


def is_sensitive_name(name: str) -> bool:
    """True when a query parameter or header called ``name`` carries a credential."""
    return bool(SENSITIVE_NAME.search(name))


def redact_path(path: str, host: str | None = None) -> str:
    """Return ``path`` with secret-bearing parts masked (Slack webhook ``/services/T/B/X`` -> ``/services/***``).

    Slack incoming webhooks carry their secret in the path; simulators serve the
    same path on 127.0.0.1, so ``/services/...`` is masked on any host, and every
    path on ``hooks.slack.com`` is masked after its first segment.
    """
    if host is not None and _SLACK_HOOK_HOST.match(host):
        first = path.lstrip("/").split("/", 1)[0]
        return f"/{first}/{MASK}" if first else path
    if path.startswith("/services/"):
        return f"/services/{MASK}"
    return path


def redact_url(url: str) -> str:
    """Return ``url`` without userinfo, fragment, or the values of credential-named query parameters.

    Never raises: an unparseable URL comes back as a placeholder rather than as
    itself (it might be a secret that merely failed to parse).
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = host if ":" not in host else f"[{host}]"
        if parts.port is not None:
            netloc = f"{netloc}:{parts.port}"
    except ValueError:
        return "<unparseable url>"
    return urlunsplit((parts.scheme, netloc, redact_path(parts.path, host or None), _redact_query(parts.query), ""))


def _redact_query(query: str) -> str:
    """Mask credential-named values; keep every other parameter exactly as encoded.

    A part without ``=`` (``?abcdef``) cannot be judged by its name, so it is masked whole.
    """
    out = []
    for part in query.split("&"):
        name, sep, _ = part.partition("=")
        if not sep:
            out.append(MASK if part else part)
        elif is_sensitive_name(unquote_plus(name)):
            out.append(f"{name}={MASK}")
        else:
            out.append(part)
    return "&".join(out)


def redact_text(text: str) -> str:
    """Mask secrets inside free text: URL userinfo, credential query values, webhook paths, ``Bearer <token>``."""

    def _param(match: re.Match[str]) -> str:
        name = match.group("name")
        return f"{name}={MASK}" if is_sensitive_name(name) else match.group(0)

    text = _USERINFO_IN_TEXT.sub(lambda m: m.group("scheme"), text)
    text = _SERVICES_IN_TEXT.sub(lambda m: f"/{m.group('kind')}/{MASK}", text)
    text = _SCHEME_CREDENTIAL.sub(lambda m: f"{m.group('scheme')}{m.group('sep')}{MASK}", text)
    return _PARAM_IN_TEXT.sub(_param, text)


def scrub(text: str, secrets: frozenset[str] | set[str]) -> str:
    """Replace every occurrence of a known secret value in ``text`` (belt and braces for vendor-supplied text)."""
    return Redactor(secrets).redact(text)


def secrets_of(model: BaseModel) -> Iterable[str]:
    """Every non-empty :class:`SecretStr` value in ``model`` and its nested models (a webhook's path too)."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            text = value.get_secret_value()
            if text:
                yield text
                if "/services/" in text:  # a webhook URL: its path alone is the secret too
                    yield text.split("/services/", 1)[1]
        elif isinstance(value, BaseModel):
            yield from secrets_of(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, BaseModel):
                    yield from secrets_of(item)


class Redactor:
    """Replaces known secret strings (longest first, so a secret containing another is masked whole) with ``***``.

    Values shorter than 4 characters are ignored: masking them would garble ordinary text.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    @classmethod
    def from_settings(cls, settings: BaseModel) -> Redactor:
        """The redactor for every secret configured in ``settings`` (``config.settings.Settings``)."""
        return cls(secrets_of(settings))

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


class RedactingFilter(logging.Filter):
    """A logging filter that rewrites records whose text would carry a secret.

    Without a :class:`Redactor` it masks what *looks* like a credential (:func:`redact_text`): installed on
    urllib3's connection-pool logger by the HTTP layer, whose DEBUG line ``"GET /path?api_key=... HTTP/1.1"``
    would otherwise leak into ``--verbose`` output. With one (the CLI's and daemon's log handlers) it masks
    every configured secret value in the formatted message and in a logged traceback; ``patterns=True``
    applies both rules.
    """

    def __init__(self, redactor: Redactor | None = None, *, patterns: bool | None = None) -> None:
        super().__init__()
        self.redactor = redactor
        self.patterns = redactor is None if patterns is None else patterns

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self.redactor is not None and bool(self.redactor.secrets)
        if not (secrets or self.patterns):
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        cleaned = redact_text(message) if self.patterns else message
        if secrets:
            assert self.redactor is not None
            cleaned = self.redactor.redact(cleaned)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if secrets and record.exc_info and record.exc_info[1] is not None:
            assert self.redactor is not None
            text = self.redactor.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info, record.exc_text = None, text
        return True


_installed: set[str] = set()


def install_log_redaction(logger_name: str = "urllib3.connectionpool") -> None:
    """Attach one :class:`RedactingFilter` to ``logger_name`` (idempotent)."""
    if logger_name in _installed:
        return
    logging.getLogger(logger_name).addFilter(RedactingFilter())
    _installed.add(logger_name)
