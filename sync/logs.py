"""Logging set-up for the CLI and the daemon: readable text by default, JSON lines on request.

Every handler carries the :class:`RedactingFilter`, so no log line can carry a
configured secret, whichever module wrote it.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from sync.redaction import RedactingFilter, Redactor


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg (+ exc)."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            payload["exc"] = record.exc_text
        return json.dumps(payload, ensure_ascii=False)


def setup_logging(verbose: int = 0, fmt: str = "text", redactor: Redactor | None = None) -> None:
    """Configure the ``deskpulse`` logger tree once (idempotent: replaces our previous handler)."""
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    root = logging.getLogger("deskpulse")
    for handler in list(root.handlers):
        if getattr(handler, "_deskpulse", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._deskpulse = True  # type: ignore[attr-defined]
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    handler.addFilter(RedactingFilter(redactor or Redactor()))
    root.addHandler(handler)
    root.setLevel(level)
    # The scheduler's own warnings ("skipped: maximum number of running instances") go through the same
    # handler, so a --log-format json log is JSON on every line.
    scheduler_log = logging.getLogger("apscheduler")
    for old in list(scheduler_log.handlers):
        if getattr(old, "_deskpulse", False):
            scheduler_log.removeHandler(old)
    scheduler_log.addHandler(handler)
    scheduler_log.setLevel(logging.WARNING if verbose <= 1 else logging.INFO)
    scheduler_log.propagate = False
