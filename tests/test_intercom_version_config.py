"""``intercom_version``: 2.16 by default (the newest version the connector is checked against), any 2.x
accepted (a user may pin 2.11: then Intercom AHT is null), anything else refused at config load (exit 2)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.intercom_kit import make_source


def test_default_is_2_16_and_any_2x_is_accepted() -> None:
    assert make_source().intercom_version == "2.16"
    assert make_source(intercom_version="2.11").intercom_version == "2.11"
    assert make_source(intercom_version=" 2.9 ").intercom_version == "2.9"


@pytest.mark.parametrize("bad", ["Preview", "Unstable", "1.4", "3.0", "2", "2.16.1", ""])
def test_other_versions_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="intercom_version"):
        make_source(intercom_version=bad)


def test_cli_refuses_a_bad_version_with_one_line_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "deskpulse.toml"
    config.write_text(f"""[store]
path = "{tmp_path / 'd.db'}"

[[sources]]
name = "ic"
kind = "intercom"
base_url = "https://api.intercom.io"
access_token = "ic-secret-token-998877"
intercom_version = "Preview"
""", encoding="utf-8")
    done = subprocess.run(["deskpulse", "--config", str(config), "status"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "intercom_version" in lines[0] and "Preview" in lines[0], done.stderr
    assert "ic-secret-token-998877" not in done.stderr + done.stdout
