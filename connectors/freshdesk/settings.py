"""The ``[[sources]]`` settings of a Freshdesk account (``kind = "freshdesk"``).

Lives with the vendor, not in ``config``: config knows only ``SourceBase`` and validates each source
against the models of the installed plugins (``connectors.plugin``), which sync hands to it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from config.settings import SourceBase


class FreshdeskSource(SourceBase):
    """A Freshdesk account: API key as the Basic-auth user, ``X`` as password."""

    kind: Literal["freshdesk"]
    api_key: SecretStr
    tickets_list_per_minute: int | None = Field(default=None, gt=0, description="plan sub-limit for list calls")
    conversation_workers: int = Field(default=4, ge=1, le=16)
    max_pages: int = Field(default=300, ge=2, le=300, description="Freshdesk's page cap; the connector restarts")
