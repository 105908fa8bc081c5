"""The ``[[sources]]`` settings of a Deskette account (``kind = "deskette"``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from config.settings import SourceBase


class DesketteSource(SourceBase):
    """A Deskette account: one API key, sent as a bearer token."""

    kind: Literal["deskette"]
    api_key: SecretStr
    per_page: int = Field(default=100, ge=1, le=100)
