"""Store problems (corrupt file, unwritable path, full disk) are one line naming the store and a remedy, exit 1,
and whatever was committed before stays committed."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from connectors.base import Page
from sync.store import Store, StoreError
from tests.test_engine import DUMP, NumberStream, clean_store, run


def _deskpulse(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["deskpulse", "--config", str(cwd / "none.toml"), *args], capture_output=True, text=True,
                          timeout=60, check=False, cwd=cwd)


@pytest.mark.parametrize("content", [b"\x8f" * 5000, b"SQLite format 3\x00" + b"\x01" * 200],
                         ids=["random-bytes", "truncated-header"])
def test_corrupt_store_is_one_line_with_a_remedy(tmp_path: Path, content: bytes) -> None:
    db = tmp_path / "broken.db"
    db.write_bytes(content)
    result = _deskpulse("--db", str(db), "kpi", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"store {db}" in result.stderr and "corrupt or not a deskpulse store" in result.stderr
    assert "internal error" not in result.stderr
    assert db.read_bytes() == content  # never "repaired" by overwriting


def test_store_under_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    result = _deskpulse("--db", str(tmp_path / "afile" / "s.db"), "kpi", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "cannot create its folder" in result.stderr
    assert "internal error" not in result.stderr


def test_read_only_store_names_the_remedy(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.conn.execute("PRAGMA query_only = ON")  # what a read-only file or folder gives a writer
        with pytest.raises(StoreError, match=r"cannot be written: check that the file and its folder"):
            with store.transaction():
                store.upsert("tickets", [{"id": "1", "status": "open"}], source="x")


def test_full_disk_mid_sync_keeps_committed_pages_then_resumes(tmp_path: Path) -> None:
    """SQLITE_FULL (simulated with max_page_count) on page 3: pages 1-2 and their cursor stay, the error says
    the disk is full, and a rerun after space is freed ends equal to a clean run."""
    expected = clean_store(tmp_path)

    def fill_disk(source: str, stream: str, page: Page, rows: int) -> None:
        if page.cursor["last_id"] == 10:
            pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
            store.conn.execute(f"PRAGMA max_page_count = {pages}")

    big = [{"id": str(i), "subject": "x" * 20_000} for i in range(11, 16)]

    class BigStream(NumberStream):
        def pages(self, cursor: Any | None):  # noqa: ANN201
            for page in super().pages(cursor):
                if page.cursor["last_id"] == 15:
                    page.records["tickets"] = [dict(r, **b) for r, b in zip(page.records["tickets"], big, strict=True)]
                yield page

    store = Store(tmp_path / "s.db")
    with pytest.raises(StoreError, match=r"the disk is full: free space and run again"):
        run(store, BigStream(), on_page=fill_disk)
    store.close()
    with Store(tmp_path / "s.db") as reopened:
        assert reopened.scalar("SELECT COUNT(*) FROM tickets") == 10
        state = reopened.query("SELECT cursor FROM sync_state WHERE stream = 'tickets'")
        assert '"last_id": 10' in state[0]["cursor"].replace(":10", ": 10")
        stream = NumberStream()
        run(reopened, stream)
        assert stream.started_from == [{"last_id": 10}]
        assert reopened.query(DUMP) == expected
