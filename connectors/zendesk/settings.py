"""The ``[[sources]]`` settings of a Zendesk Support account (``kind = "zendesk"``).

Lives with the vendor, not in ``config``: config knows only ``SourceBase`` and validates each source
against the models of the installed plugins (``connectors.plugin``), which sync hands to it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from config.settings import SourceBase


class ZendeskSource(SourceBase):
    """A Zendesk Support account: API token (email/token Basic auth) or an OAuth bearer token."""

    kind: Literal["zendesk"]
    email: str | None = None
    api_token: SecretStr | None = None
    oauth_token: SecretStr | None = None
    per_page: int = Field(default=1000, ge=10, le=1000)
    export_requests_per_minute: int = Field(default=10, gt=0, description="incremental export budget")
    time_tracking_field: str | None = Field(
        default=None, description="ticket field id holding total time spent in seconds (Time Tracking app)")
    escalation_group_ids: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_auth(self) -> ZendeskSource:
        if self.oauth_token is None and (self.api_token is None or not self.email):
            raise ValueError("needs email + api_token, or oauth_token")
        return self
