"""Secret redaction for the CLI and the daemon: a re-export of :mod:`connectors.redact`, the one redaction module.

Kept so ``from sync.redaction import Redactor`` goes on working; new code imports ``connectors.redact``.
"""

from __future__ import annotations

from connectors.redact import MASK, RedactingFilter, Redactor, secrets_of

__all__ = ["MASK", "RedactingFilter", "Redactor", "secrets_of"]
