"""score_pending: which messages get scored, what is stored, and that re-runs score only new messages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kpi_engine.sentiment import label, score_pending, score_text, score_texts
from kpi_engine.vader_fast import get_fast_vader
from sync.store import Store


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store(":memory:")
    yield s
    s.close()


def _msg(i: int, body: str | None, role: str = "customer", public: int = 1, source: str = "zd") -> dict:
    return {"source": source, "id": str(i), "ticket_id": "t1", "author_id": "a", "author_role": role,
            "public": public, "body": body, "created_at": 1_700_000_000 + i}


def _scores(store: Store) -> dict[tuple[str, str], tuple[float, int]]:
    return {(r["source"], r["message_id"]): (r["compound"], r["scored_at"])
            for r in store.query("SELECT * FROM message_sentiment")}


def test_label_thresholds_are_inclusive() -> None:
    assert label(-0.05) == "negative"
    assert label(-0.0499) == "neutral"
    assert label(0.0) == "neutral"
    assert label(0.0499) == "neutral"
    assert label(0.05) == "positive"


def test_scores_only_public_customer_messages(store: Store) -> None:
    store.upsert("messages", [
        _msg(1, "This is awful and broken."),
        _msg(2, "Sorry for the terrible trouble!", role="agent"),
        _msg(3, "Internal: customer is angry", role="customer", public=0),
        _msg(4, "Auto-reply: we love hearing from you", role="bot"),
        _msg(5, "Thank you, works great!", source="fd"),
    ])
    assert score_pending(store.conn, now=1234) == 2
    scores = _scores(store)
    assert set(scores) == {("zd", "1"), ("fd", "5")}
    assert scores[("zd", "1")] == (get_fast_vader().compound("This is awful and broken."), 1234)
    assert scores[("zd", "1")][0] < 0 < scores[("fd", "5")][0]


def test_second_call_scores_nothing_then_only_new(store: Store) -> None:
    store.upsert("messages", [_msg(i, f"message {i} is great") for i in range(7)])
    assert score_pending(store.conn, batch=3, now=1) == 7  # three batches: keyset pagination walks them all
    assert score_pending(store.conn, batch=3, now=2) == 0
    store.upsert("messages", [_msg(100, "new and terrible")])
    assert score_pending(store.conn, batch=3, now=3) == 1
    stamps = {k: v[1] for k, v in _scores(store).items()}
    assert stamps[("zd", "100")] == 3
    assert {stamps[("zd", str(i))] for i in range(7)} == {1}  # old scores untouched


def test_empty_and_missing_bodies_are_stored_as_neutral(store: Store) -> None:
    store.upsert("messages", [_msg(1, None), _msg(2, ""), _msg(3, "On Mon, Jan 5 Ann <a@x.example> wrote:\n> bad")])
    assert score_pending(store.conn) == 3
    assert {v[0] for v in _scores(store).values()} == {0.0}
    assert score_pending(store.conn) == 0  # and they are not picked up again


def test_scores_the_cleaned_text(store: Store) -> None:
    body = "All good now, thanks!\n\nOn Mon, 2 Mar 2026 at 09:00, Support <s@x.example> wrote:\n> terrible awful bug"
    store.upsert("messages", [_msg(1, body)])
    score_pending(store.conn)
    assert _scores(store)[("zd", "1")][0] == score_text(body) == get_fast_vader().compound("All good now, thanks!")


def test_writes_inside_a_caller_transaction_roll_back_with_it(store: Store) -> None:
    store.upsert("messages", [_msg(1, "bad")])
    with pytest.raises(RuntimeError), store.transaction():
        assert score_pending(store.conn) == 1
        raise RuntimeError("caller fails after scoring")
    assert _scores(store) == {}


def test_batch_must_be_positive(store: Store) -> None:
    with pytest.raises(ValueError):
        score_pending(store.conn, batch=0)


def test_score_texts_keeps_order_and_dedups_consistently() -> None:
    texts = ["great", None, "awful", "great", ""]
    out = score_texts(texts)
    assert out[0] == out[3] > 0
    assert out[1] == out[4] == 0.0
    assert out[2] < 0
