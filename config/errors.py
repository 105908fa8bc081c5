"""The root of deskpulse's exception tree.

It lives in ``config`` because every other package may import ``config`` and
nothing below it: one root, so the CLI can turn any deskpulse error into a
one-line message and an exit code without knowing which package raised it.
"""

from __future__ import annotations


class DeskpulseError(Exception):
    """Root of every error deskpulse raises on purpose.

    ``exit_code`` is what the CLI exits with: 1 for runtime failures,
    2 for bad usage or configuration.
    """

    exit_code: int = 1


class ConfigError(DeskpulseError):
    """The configuration file or environment is invalid; the message names the field and the file."""

    exit_code = 2


class UsageError(DeskpulseError):
    """A command was called with arguments that cannot work (bad date, unknown source, ...)."""

    exit_code = 2
