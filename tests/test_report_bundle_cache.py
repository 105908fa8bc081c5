"""The report's inlined Vega bundle is kept in the user's cache folder: the same text without vl-convert's 1.3 s."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import vl_convert

from kpi_engine import report_html
from kpi_engine.report_html import vega_script


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    vega_script.cache_clear()
    yield tmp_path / "cache" / "deskpulse"
    vega_script.cache_clear()


def test_the_bundle_is_kept_and_read_back_unchanged(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = vega_script()
    (kept,) = cache.glob("vega-bundle-*.js")
    assert vl_convert.__version__ in kept.name
    assert kept.read_text(encoding="utf-8") == first and "vegaEmbed" in first

    def no_bundling(**_: object) -> str:
        raise AssertionError("bundled again although it is kept")

    monkeypatch.setattr(vl_convert, "javascript_bundle", no_bundling)
    vega_script.cache_clear()  # a new process, as far as the function knows
    assert vega_script() == first


def test_a_cache_folder_that_cannot_be_written_only_costs_time(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache.parent.mkdir(parents=True)
    cache.write_text("a file where the folder should be", encoding="utf-8")
    script = vega_script()
    assert "vegaEmbed" in script and cache.is_file()


def test_without_any_cache_folder_the_bundle_is_still_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

    def homeless() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(report_html.Path, "home", staticmethod(homeless))
    vega_script.cache_clear()
    try:
        assert "vegaEmbed" in vega_script()
    finally:
        vega_script.cache_clear()
