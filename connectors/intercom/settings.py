"""The ``[[sources]]`` settings of an Intercom workspace (``kind = "intercom"``).

Lives with the vendor, not in ``config``: config knows only ``SourceBase`` and validates each source
against the models of the installed plugins (``connectors.plugin``), which sync hands to it.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from config.settings import SourceBase


class IntercomSource(SourceBase):
    """An Intercom workspace (US/EU/AU host via base_url)."""

    kind: Literal["intercom"]
    access_token: SecretStr
    admin_id: str | None = Field(default=None, description="admin recorded as the tagger on write-back")
    intercom_version: str = Field(
        default="2.16", description="Intercom-Version header; 2.16 is the newest the connector is checked against "
        "(before 2.16 there is no adjusted_handling_time, so Intercom AHT is null)")
    per_page: int = Field(default=150, ge=1, le=150)
    value_attribute: str | None = Field(default=None, description="company custom attribute holding value")

    @field_validator("intercom_version")
    @classmethod
    def _check_version(cls, value: str) -> str:
        """Only the 2.x REST API has the search endpoints the connector reads (API-NOTES 3.1)."""
        if not re.fullmatch(r"2\.\d{1,2}", value.strip()):
            raise ValueError(f"'{value}' is not an Intercom REST API version 2.x (e.g. 2.16)")
        return value.strip()
