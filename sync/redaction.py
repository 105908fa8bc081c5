"""Last line of defence for secrets: mask every configured secret value in any text we output.

Connectors build their messages from method + path only (redaction by
construction); this catches what nobody thought of, e.g. a third-party
exception that echoes a URL, before it reaches a log line, the terminal or the
``sync_state.last_error`` column.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pydantic import BaseModel, SecretStr

from config.settings import Settings

MASK = "***"


def _secrets_of(model: BaseModel) -> Iterable[str]:
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            text = value.get_secret_value()
            if text:
                yield text
                if "/services/" in text:  # a webhook URL: its path alone is the secret too
                    yield text.split("/services/", 1)[1]
        elif isinstance(value, BaseModel):
            yield from _secrets_of(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, BaseModel):
                    yield from _secrets_of(item)


class Redactor:
    """Replaces known secret strings (longest first) with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> Redactor:
        return cls(_secrets_of(settings))

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


class RedactingFilter(logging.Filter):
    """A logging filter that formats the record and masks secrets in the final message."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        if self.redactor.secrets:
            message = record.getMessage()
            clean = self.redactor.redact(message)
            if clean != message:
                record.msg, record.args = clean, None
            if record.exc_info and record.exc_info[1] is not None:
                text = self.redactor.redact(logging.Formatter().formatException(record.exc_info))
                record.exc_info, record.exc_text = None, text
        return True
