"""The customer map is kept until an organization or a person changes (migration v9, kpi_engine.customers.resolve).

Each test is a way a kept map could be served although matching would now answer differently, or a way keeping it
could hurt (a read-only store, another writer holding the lock).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from config.settings import CustomerSettings
from kpi_engine import customers
from kpi_engine.customers import resolve
from sync.store import Store
from tests.test_customers_match import _build


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(_build(tmp_path / "customers.db"))


def _no_matching(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> customers.CustomerMap:
        raise AssertionError("matched again although nothing changed")

    monkeypatch.setattr(customers, "_resolve", refuse)


def _generation(store: Store) -> int:
    return int(store.scalar("SELECT generation FROM customer_inputs"))


def test_a_kept_map_is_the_map_matching_gives(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    first = resolve(store.conn)
    assert first.customers and first.by_member and first.notes == []
    _no_matching(monkeypatch)
    again = resolve(store.conn)
    assert again == first  # customers, members in order, by_member, notes
    assert list(again.by_member) == list(first.by_member)


def test_an_unchanged_resync_keeps_it_a_changed_person_does_not(store: Store, monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    before = resolve(store.conn)
    generation = _generation(store)
    person = store.query("SELECT * FROM people WHERE id = 'pat-fd'")[0]
    store.upsert("people", [person])  # every sync re-upserts the people it lists
    assert _generation(store) == generation
    store.upsert("people", [{**person, "email": "pat@work.example"}])  # Pat's Freshdesk account: another address
    assert _generation(store) == generation + 1
    after = resolve(store.conn)
    assert after != before  # the two Pat accounts are no longer one person
    assert after.by_member.get(("fd", "user", "pat-fd")) is None


@pytest.mark.parametrize("change", ["org raw", "org name", "new org", "deleted person", "person's org", "role"])
def test_every_input_of_matching_bumps_the_generation(store: Store, change: str) -> None:
    generation = _generation(store)
    conn = store.conn
    if change == "org raw":
        conn.execute("""UPDATE organizations SET raw = '{"domains": ["acme.example", "x.example"]}'
                        WHERE source = 'fd' AND id = '7'""")
    elif change == "org name":
        conn.execute("UPDATE organizations SET name = 'Acme Europe' WHERE source = 'fd' AND id = '7'")
    elif change == "new org":
        store.upsert("organizations", [{"source": "fd", "id": "99", "name": "New", "raw": {}}])
    elif change == "deleted person":
        conn.execute("DELETE FROM people WHERE id = 'pat-zd'")
    elif change == "person's org":
        conn.execute("UPDATE people SET organization_id = '8' WHERE id = 'pat-fd'")
    else:
        conn.execute("UPDATE people SET role = 'agent' WHERE id = 'pat-fd'")
    assert _generation(store) == generation + 1


def test_other_settings_are_matched_and_kept_apart(store: Store) -> None:
    default = resolve(store.conn)
    no_email = resolve(store.conn, CustomerSettings(match_by=["domain", "external_id"]))
    assert default != no_email and ("fd", "user", "pat-fd") not in no_email.by_member
    assert resolve(store.conn) == default
    assert store.scalar("SELECT count(*) FROM customer_map_cache") == 2


def test_a_read_only_store_matches_without_keeping(store: Store, tmp_path: Path) -> None:
    store.close()
    conn = sqlite3.connect(f"file:{tmp_path / 'customers.db'}?mode=ro", uri=True)
    try:
        assert resolve(conn).customers
        assert conn.execute("SELECT count(*) FROM customer_map_cache").fetchone()[0] == 0
    finally:
        conn.close()


def test_another_writer_holding_the_lock_costs_no_wait(store: Store, tmp_path: Path) -> None:
    other = sqlite3.connect(tmp_path / "customers.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # a sync committing a page, say
    try:
        assert resolve(store.conn).customers  # answered at once (a 30 s busy wait before giving up otherwise)
        assert store.scalar("SELECT count(*) FROM customer_map_cache") == 0
        assert store.scalar("PRAGMA busy_timeout") == 30000  # the store's own wait is back
    finally:
        other.execute("ROLLBACK")
        other.close()
