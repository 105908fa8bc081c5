"""``deskpulse distress`` through a tiny Typer app: table, JSON, --top, --source, the min-max note, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from sync.cli.context import AppContext
from sync.cli.distress import register
from sync.store import Store
from tests.distress_kit import DAY, T, message, org, ticket


def _distressed(store: Store, org_id: str) -> None:
    """Six tickets open for ten days, every customer message angry: red under the min-max scaling."""
    for _ in range(6):
        tid = ticket(store, org_id=org_id, created=T - 10 * DAY, updated=T - DAY)
        message(store, tid, "This is awful, still broken and we are angry.", T - DAY)


def _app(db: Path, config: Path | None = None) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context) -> None:
        ctx.obj = AppContext(db_path=db, config_path=config, clock=lambda: float(T))

    register(app)
    return app


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "store.db"
    store = Store(path)
    org(store, "A", name="Acme Logistics", value=90_000, created_at=T - 900 * DAY)
    _distressed(store, "A")
    ticket(store, org_id="A", created=T - 20 * DAY, status="solved", solved=T - 13 * DAY)
    org(store, "B", name="Bluth Foods", value=1_000, created_at=T - 100 * DAY)
    ticket(store, org_id="B", created=T - 20 * DAY, status="solved", solved=T - 19 * DAY)
    ticket(store, org_id=None, requester="fd-7", created=T - DAY, source="fd")
    store.close()
    return path


def _run(db: Path, *args: str, config: Path | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(_app(db, config), ["distress", *args])
    return result.exit_code, result.output


def test_table_lists_accounts_by_priority_with_reasons_and_the_minmax_note(db: Path) -> None:
    code, out = _run(db)
    assert code == 0, out
    assert out.index("Acme Logistics") < out.index("Bluth Foods")
    assert "red" in out and "tone 100%" in out  # short reasons at CliRunner's 80 columns (sync/cli/fit.py)
    assert "min-max" in out and "fewer than 20" in out
    assert "bands: 1 red, 0 yellow, 2 green" in out


def test_json_is_stable_and_complete(db: Path) -> None:
    code, out = _run(db, "--format", "json")
    assert code == 0, out
    doc = json.loads(out)
    assert list(doc) == ["as_of", "day", "source", "method", "note", "active_accounts", "weights", "bands",
                         "accounts", "total_accounts"]
    assert doc["method"] == "minmax" and "fewer than 20" in doc["note"] and doc["as_of"] == "2026-03-01T12:00:00Z"
    first = doc["accounts"][0]
    assert first["account"] == "zd:org:A" and first["name"] == "Acme Logistics" and first["band"] == "red"
    assert first["components"]["negative_tone_30d"] == 1.0 and first["components"]["tickets_30d"] == 7
    assert len(first["top_reasons"]) == 3 and first["top_reasons"][0].startswith("negative tone")
    assert doc["total_accounts"] == 3
    user = next(a for a in doc["accounts"] if a["source"] == "fd")  # no organization: the requester stands for itself
    assert (user["account"], user["organization_id"], user["requester_id"]) == ("fd:user:fd-7", None, "fd-7")
    # The run recorded today's snapshot (and backfilled history) for the trend.
    with Store(db) as store:
        assert store.scalar("SELECT count(*) FROM cdi_history WHERE day = '2026-03-01'") == 3
        assert store.scalar("SELECT count(DISTINCT day) FROM cdi_history") == 15


def test_top_and_source(db: Path) -> None:
    code, out = _run(db, "--format", "json", "--top", "1")
    assert [a["account"] for a in json.loads(out)["accounts"]] == ["zd:org:A"]
    full = {a["account"]: a["cdi"] for a in json.loads(_run(db, "--format", "json")[1])["accounts"]}
    code, out = _run(db, "--format", "json", "--source", "fd")
    doc = json.loads(out)
    assert code == 0 and [a["account"] for a in doc["accounts"]] == ["fd:user:fd-7"]
    # A view, not a different population: same CDI as in the full list, history still has every account.
    assert doc["accounts"][0]["cdi"] == full["fd:user:fd-7"] and "ranks are among all 3" in doc["note"]
    with Store(db) as store:
        assert store.scalar("SELECT count(*) FROM cdi_history WHERE day = '2026-03-01'") == 3


def test_hidden_red_accounts_are_announced(db: Path) -> None:
    with Store(db) as store:
        org(store, "C", name="Tiny Startup", value=10, created_at=T - 30 * DAY)
        _distressed(store, "C")
    code, out = _run(db, "--top", "1")
    assert code == 0, out
    assert "Tiny Startup" not in out and "+1 more red account" in out


@pytest.mark.parametrize(("args", "needle"), [(("--format", "xml"),  "--format"),
                                              (("--source", "nope"), "no tickets from source 'nope'")])
def test_usage_errors(db: Path, args: tuple[str, ...], needle: str) -> None:
    result = CliRunner().invoke(_app(db), ["distress", *args])
    assert result.exit_code != 0
    assert needle in str(result.exception)


def test_missing_store_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    result = CliRunner().invoke(_app(missing), ["distress"])
    assert result.exit_code != 0 and "no store at" in str(result.exception)
    assert not missing.exists()


def test_config_weights_are_used(db: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "deskpulse.toml"
    cfg.write_text("[distress]\ngreen_max = 10\nyellow_max = 20\n[distress.weights]\nnegative_tone = 0\n",
                   encoding="utf-8")
    code, out = _run(db, "--format", "json", config=cfg)
    assert code == 0, out
    doc = json.loads(out)
    assert "negative_tone_30d" not in doc["weights"]
    assert all(not r.startswith("negative tone") for a in doc["accounts"] for r in a["top_reasons"])
