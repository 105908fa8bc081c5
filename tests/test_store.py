"""The store: schema, migrations, upsert semantics, transactions."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync import store as store_mod
from sync.store import MIGRATIONS, Store, StoreError


def test_fresh_store_is_at_latest_version_with_wal(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        assert store.schema_version == len(MIGRATIONS)
        assert store.scalar("PRAGMA journal_mode") == "wal"
        tables = set(store.db.table_names())
        assert {"tickets", "messages", "people", "organizations", "ratings", "ticket_events", "sync_state",
                "quarantine", "outbox", "message_sentiment", "kpi_snapshots", "cdi_history"} <= tables


def test_forward_migration_applies_only_new_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.db"
    with Store(path) as store:
        store.upsert("tickets", [{"id": "1", "status": "open"}], source="a")
    calls = []

    def v_next(db) -> None:
        calls.append(1)
        db["extra"].create({"k": str}, pk="k")

    monkeypatch.setattr(store_mod, "MIGRATIONS", [*MIGRATIONS, v_next])
    with Store(path) as store:
        assert store.schema_version == len(MIGRATIONS) + 1
        assert store.scalar("SELECT status FROM tickets WHERE id='1'") == "open"
        assert "extra" in store.db.table_names()
    with Store(path) as store:
        pass
    assert calls == [1]


def test_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store(path) as store:
        store.conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    with pytest.raises(StoreError, match="newer than this deskpulse"):
        Store(path)


def test_upsert_keeps_columns_a_row_omits_and_encodes_json() -> None:
    store = Store(":memory:")
    store.upsert("tickets", [{"id": "1", "status": "open", "tags": ["a", "b"], "created_at": 10}], source="s")
    store.upsert("tickets", [{"id": "1", "status": "solved"}], source="s")
    row = store.query("SELECT * FROM tickets")[0]
    assert (row["status"], row["tags"], row["created_at"]) == ("solved", '["a","b"]', 10)
    assert store.scalar("SELECT count(*) FROM tickets") == 1


def test_same_id_in_two_sources_are_two_rows() -> None:
    store = Store(":memory:")
    store.upsert("tickets", [{"id": "1"}], source="a")
    store.upsert("tickets", [{"id": "1"}], source="b")
    assert store.scalar("SELECT count(*) FROM tickets") == 2


def test_unknown_column_is_an_error_not_silent() -> None:
    store = Store(":memory:")
    with pytest.raises(StoreError, match="no column 'colour'"):
        store.upsert("tickets", [{"id": "1", "colour": "red"}], source="a")


def test_transaction_rolls_back_everything_including_nested() -> None:
    store = Store(":memory:")
    with pytest.raises(RuntimeError), store.transaction():
        store.upsert("tickets", [{"id": "1"}], source="a")
        with store.transaction():
            store.upsert("tickets", [{"id": "2"}], source="a")
        raise RuntimeError("boom")
    assert store.scalar("SELECT count(*) FROM tickets") == 0
    with store.transaction():
        store.upsert("tickets", [{"id": "3"}], source="a")
        with pytest.raises(ValueError), store.transaction():
            store.upsert("tickets", [{"id": "4"}], source="a")
            raise ValueError
    assert [r["id"] for r in store.query("SELECT id FROM tickets")] == ["3"]


def test_quarantine_dedups_by_record_id_or_payload_hash() -> None:
    store = Store(":memory:")
    for _ in range(2):
        store.quarantine("a", "tickets", "7", "bad date", {"id": 7})
        store.quarantine("a", "tickets", None, "no id", {"x": 1})
    assert store.scalar("SELECT count(*) FROM quarantine") == 2


def test_a_step_another_process_ran_meanwhile_is_not_run_again(tmp_path: Path) -> None:
    """Two processes opening one new store at once (two ``digest`` commands, say): the second read the version
    before the first took the write lock; once it holds the lock it must see the steps already done."""
    path = tmp_path / "s.db"
    late = Store(path, migrate=False)  # read version 0 ...
    with Store(path):  # ... while another process migrated the store to the latest version
        pass

    class Stale(Store):
        reads = 0

        @property
        def schema_version(self) -> int:  # the first read is the stale one taken before the lock
            Stale.reads += 1
            return 0 if Stale.reads == 1 else super().schema_version

    late.__class__ = Stale
    assert late.migrate() == len(MIGRATIONS)  # before the fix: "no such column: c" (v4 re-run on v5 tables)
    late.close()
