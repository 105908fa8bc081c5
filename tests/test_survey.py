"""``deskpulse import-survey``: validated rows, line-numbered errors, idempotent re-import, requester match."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from config.errors import DeskpulseError, UsageError
from config.settings import CostSettings, KpiSettings, SlaSettings
from kpi_engine.engine import compute
from sync.cli.context import AppContext
from sync.cli.survey import register
from sync.store import Store
from sync.survey import import_survey

GOOD_AND_BAD = """Email,score,date,comment
ann@example.com,10,2026-03-02,great
BOB@example.com,6,2026-03-03T10:00:00+01:00,
,9,2026-03-02,
ann@example.com,11,2026-03-02,too high
carl@example.com,8,yesterday,
carl@example.com,7.5,2026-03-02,
dora@example.com,9,2026-03-04,

"""


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "s.db")
    s.upsert("people", [{"source": "zd", "id": "p1", "email": "Ann@Example.com", "role": "customer",
                         "organization_id": "o1"},
                        {"source": "zd", "id": "p2", "email": "bob@example.com", "role": "customer"},
                        {"source": "fd", "id": "p3", "external_id": "ext-9", "role": "customer"}])
    return s


def test_good_rows_kept_bad_rows_reported(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "nps.csv"
    path.write_text(GOOD_AND_BAD, encoding="utf-8")
    report = import_survey(store, path, "nps")
    assert (report.rows, report.imported, report.matched) == (7, 3, 2)
    assert report.errors == [(4, "neither email nor external_id is given"),
                             (5, "score 11 is outside 0-10 for nps"),
                             (6, "date 'yesterday' is not an ISO date or date-time"),
                             (7, "score 7.5 is not a whole number")]
    rows = store.query("SELECT requester_id, score, score_1_5, created_at, comment, source FROM ratings "
                       "ORDER BY created_at")
    assert rows[0] == {"requester_id": "p1", "score": 10.0, "score_1_5": 5.0, "created_at": 1772409600,
                       "comment": "great", "source": "survey"}
    assert rows[1]["requester_id"] == "p2" and rows[1]["created_at"] == 1772528400  # 10:00+01:00 = 09:00 UTC
    assert rows[2]["requester_id"] is None  # dora is not a known person: kept, unmatched
    # the same file again updates the same rows
    import_survey(store, path, "nps")
    assert store.scalar("SELECT COUNT(*) FROM ratings") == 3
    # the KPI sees them: promoters 10, 9; detractor 6 -> (2 - 1) / 3
    k = compute(store.conn, kpi=KpiSettings(), sla=SlaSettings(), costs=CostSettings(), since=1772409600,
                until=1772409600 + 7 * 86400, now=1772409600 + 7 * 86400)["kpis"]
    assert k["nps"] == 33.33


def test_external_id_and_score_ranges(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "ces.csv"
    path.write_text("external_id,score,date\next-9,7,2026-03-02\next-9,0,2026-03-02\n", encoding="utf-8")
    report = import_survey(store, path, "ces", source="ces-q1")
    assert report.imported == 1 and report.errors == [(3, "score 0 is outside 1-7 for ces")]
    assert store.query("SELECT requester_id, score_1_5, source FROM ratings") == [
        {"requester_id": "p3", "score_1_5": 5.0, "source": "ces-q1"}]


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read"),
    ("", "is empty"),
    ("email,date\na@b.c,2026-03-02\n", "lacks column(s): score"),
    ("name,score,date\nx,1,2026-03-02\n", "email or external_id"),
])
def test_unusable_files_are_usage_errors(store: Store, tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "s.csv"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        import_survey(store, path, "csat")


def test_cli(store: Store, tmp_path: Path) -> None:
    store.close()
    path = tmp_path / "csat.csv"
    path.write_text("email,score,date\nann@example.com,5,2026-03-02\nann@example.com,9,2026-03-02\n")
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context) -> None:
        ctx.obj = AppContext(db_path=tmp_path / "s.db", config_path=tmp_path / "none.toml")

    register(app)
    result = CliRunner().invoke(app, ["import-survey", str(path), "--kind", "csat"])
    assert result.exit_code == 0
    assert "1 of 2 csat responses imported" in result.stdout
    assert "line 3: score 9 is outside 1-5 for csat" in result.stderr
    bad = CliRunner().invoke(app, ["import-survey", str(path), "--kind", "xyz"])
    assert isinstance(bad.exception, DeskpulseError) and bad.exception.exit_code == 2


def test_latin1_export_is_one_clear_error_and_imports_with_encoding(tmp_path: Path) -> None:
    """Excel's CSV export is Windows-1252: the default utf-8 refuses it up front (exit 2, line named, nothing
    imported), and --encoding cp1252 reads it, through the installed console script."""
    import subprocess

    path = tmp_path / "excel.csv"
    path.write_bytes("email,score,date,comment\nann@example.com,5,2026-03-02,ok\n"
                     "zoe@example.com,4,2026-03-03,très bien\n".encode("cp1252"))
    db = tmp_path / "s.db"
    cmd = ["deskpulse", "--db", str(db), "--config", str(tmp_path / "none.toml"), "import-survey", str(path),
           "--kind", "csat"]
    bad = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 2, bad.stderr
    assert bad.stderr.count("\n") == 1 and "not utf-8-sig (line 3" in bad.stderr and "--encoding cp1252" in bad.stderr
    assert "internal error" not in bad.stderr
    good = subprocess.run([*cmd, "--encoding", "cp1252"], capture_output=True, text=True, timeout=60, check=False)
    assert good.returncode == 0, good.stderr
    with Store(db) as s:
        assert s.query("SELECT comment FROM ratings ORDER BY created_at") == [{"comment": "ok"},
                                                                              {"comment": "très bien"}]


def test_unknown_encoding_is_a_usage_error(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("email,score,date\na@b.c,5,2026-03-02\n", encoding="utf-8")
    with pytest.raises(UsageError, match="--encoding 'klingon' is not a known text encoding"):
        import_survey(store, path, "csat", encoding="klingon")


def test_oversized_field_fails_its_row_only(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("email,score,date,comment\nann@example.com,5,2026-03-02,fine\n"
                    f"bob@example.com,4,2026-03-03,{'x' * 200_000}\ncarl@example.com,3,2026-03-04,\n",
                    encoding="utf-8")
    report = import_survey(store, path, "csat")
    assert report.imported == 2 and report.skipped == 1
    assert report.errors[0][0] == 3 and "field larger than field limit" in report.errors[0][1]
    assert store.scalar("SELECT COUNT(*) FROM ratings") == 2


def test_rows_are_committed_in_batches_so_a_crash_keeps_earlier_batches(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A million-row export streams: whole batches are committed as it goes (memory flat, nothing lost
    before a failure), and only MAX_REPORTED_ERRORS reasons are kept while every bad row is counted."""
    import sync.survey as survey

    monkeypatch.setattr(survey, "BATCH_ROWS", 10)
    monkeypatch.setattr(survey, "MAX_REPORTED_ERRORS", 3)
    lines = ["email,score,date"] + [f"u{i}@example.com,{1 + i % 5},2026-03-02" for i in range(35)]
    lines += ["u@example.com,99,2026-03-02"] * 5
    path = tmp_path / "many.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = import_survey(store, path, "csat")
    assert (report.imported, report.skipped, len(report.errors)) == (35, 5, 3)

    real_upsert, calls = store.upsert, []

    def failing_upsert(table: str, rows: list, **kw: object) -> int:
        calls.append(len(rows))
        if len(calls) == 3:
            raise OSError("disk full")
        return real_upsert(table, rows, **kw)

    store.conn.execute("DELETE FROM ratings")
    monkeypatch.setattr(store, "upsert", failing_upsert)
    with pytest.raises(OSError, match="disk full"):
        import_survey(store, path, "csat")
    assert calls == [10, 10, 10]
    assert store.scalar("SELECT COUNT(*) FROM ratings") == 20
