"""The sentiment queue (migration v6): which stored messages wait for a score, and what leaves the queue.

Why these tests: ``score_pending`` no longer looks at every stored message (a 6 s scan on the bench store
every run); it trusts triggers. Each test here is a way a message could be scored wrongly or never again.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from kpi_engine import sentiment
from kpi_engine.sentiment import score_pending, score_text
from sync import store as store_mod
from sync.store import Store


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store(":memory:")
    yield s
    s.close()


def _msg(i: int, body: str | None, role: str = "customer", public: int = 1) -> dict:
    return {"source": "zd", "id": str(i), "ticket_id": "t1", "author_id": "a", "author_role": role,
            "public": public, "body": body, "created_at": 1_700_000_000 + i}


def _scored(store: Store) -> dict[str, tuple[float, int]]:
    return {r["message_id"]: (r["compound"], r["scored_at"]) for r in store.query("SELECT * FROM message_sentiment")}


def _queued(store: Store) -> int:
    return int(store.scalar("SELECT count(*) FROM sentiment_pending"))


def test_only_public_customer_messages_are_queued(store: Store) -> None:
    store.upsert("messages", [_msg(1, "bad"), _msg(2, "fine", role="agent"), _msg(3, "angry", public=0)])
    assert _queued(store) == 1
    assert score_pending(store.conn, now=1) == 1
    assert _queued(store) == 0


def test_an_unchanged_resync_is_not_rescored(store: Store) -> None:
    store.upsert("messages", [_msg(1, "This is awful.")])
    score_pending(store.conn, now=1)
    store.upsert("messages", [_msg(1, "This is awful.")])  # every sync re-upserts an updated ticket's messages
    assert _queued(store) == 0
    assert score_pending(store.conn, now=2) == 0
    assert _scored(store)["1"][1] == 1


def test_an_edited_message_is_scored_again(store: Store) -> None:
    store.upsert("messages", [_msg(1, "This is awful.")])
    score_pending(store.conn, now=1)
    store.upsert("messages", [_msg(1, "All fixed, thank you so much!")])
    assert score_pending(store.conn, now=2) == 1
    assert _scored(store)["1"] == (score_text("All fixed, thank you so much!"), 2)


def test_a_message_that_becomes_a_public_customer_message_is_scored(store: Store) -> None:
    store.upsert("messages", [_msg(1, "terrible", role="unknown"), _msg(2, "awful", public=0)])
    assert score_pending(store.conn, now=1) == 0
    store.upsert("messages", [_msg(1, "terrible"), _msg(2, "awful")])  # roles re-derived by a later sync
    assert score_pending(store.conn, now=2) == 2
    assert set(_scored(store)) == {"1", "2"}


def test_a_queued_message_that_stops_being_a_customer_message_leaves_unscored(store: Store) -> None:
    store.upsert("messages", [_msg(1, "terrible")])
    store.upsert("messages", [_msg(1, "terrible", role="agent")])
    assert score_pending(store.conn, now=1) == 0
    assert _queued(store) == 0 and _scored(store) == {}


def test_a_message_edited_while_being_scored_stays_queued(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store.upsert("messages", [_msg(1, "This is awful."), _msg(2, "Still broken.")])
    real = sentiment.score_texts

    def edit_meanwhile(texts: Sequence[str | None], **kw: bool) -> list[float]:
        store.upsert("messages", [_msg(1, "Works now, great job!")])  # a sync commits between read and write
        return real(texts, **kw)

    monkeypatch.setattr(sentiment, "score_texts", edit_meanwhile)
    assert score_pending(store.conn, now=1) == 2
    monkeypatch.setattr(sentiment, "score_texts", real)
    assert _queued(store) == 1  # message 1's new text; message 2 is done
    assert score_pending(store.conn, now=2) == 1
    assert _scored(store)["1"] == (score_text("Works now, great job!"), 2)


def test_upgrading_a_v5_store_queues_its_unscored_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "old.db"
    v6 = store_mod.MIGRATIONS.index(next(m for m in store_mod.MIGRATIONS if m.__name__ == "v6_sentiment_queue"))
    with monkeypatch.context() as patch:
        patch.setattr(store_mod, "MIGRATIONS", store_mod.MIGRATIONS[:v6])  # a store written by the last release
        with Store(path) as old:
            old.upsert("messages", [_msg(1, "awful"), _msg(2, "great"), _msg(3, "meh", role="agent")])
            old.conn.execute("INSERT INTO message_sentiment (source, message_id, compound, scored_at) "
                             "VALUES ('zd', '1', -0.5, 7)")
            assert "sentiment_pending" not in old.db.table_names()
    with Store(path) as upgraded:
        assert _queued(upgraded) == 1  # message 2: customer, public, never scored
        assert score_pending(upgraded.conn, now=9) == 1
        assert _scored(upgraded) == {"1": (-0.5, 7), "2": (score_text("great"), 9)}
