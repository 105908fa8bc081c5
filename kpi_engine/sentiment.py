"""Sentiment of customer messages: VADER's compound score, stored once per message.

Why VADER: it needs no model download or network (the lexicon ships inside
vaderSentiment), it is deterministic, and its compound score is explainable.
Why store it: the CDI's ``negative_tone_30d`` reads scores for months of messages
on every run; scoring each message once (``message_sentiment``) keeps that an SQL
aggregate. Scores are computed on the *cleaned* text (``textclean``): quoted
history, signatures and disclaimers are not what the customer said this time.

Speed: ``vader_fast.FastVader`` gives the same compound as
``SentimentIntensityAnalyzer.polarity_scores`` (tested) at ~4× the speed on
email-length text, and identical texts in a batch are scored once. That is
~15,000 e-mail-length messages/s end to end in one process
(``bench/bench_sentiment.py``), above the 10,000/s target, so there is no
process pool: forking from the daemon's threaded scheduler risks inheriting a
held lock, and on the 2-core target the measured gain was only ~1.2×.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Sequence

from kpi_engine.textclean import clean_message
from kpi_engine.transactions import writing
from kpi_engine.vader_fast import get_fast_vader

__all__ = [
    "NEGATIVE_MAX",
    "POSITIVE_MIN",
    "label",
    "score_pending",
    "score_text",
    "score_texts",
]

logger = logging.getLogger("deskpulse.kpi.sentiment")

NEGATIVE_MAX = -0.05  # compound <= this is negative (VADER's documented convention)
POSITIVE_MIN = 0.05  # compound >= this is positive


def label(compound: float) -> str:
    """``negative`` / ``neutral`` / ``positive`` by VADER's ±0.05 convention."""
    if compound <= NEGATIVE_MAX:
        return "negative"
    if compound >= POSITIVE_MIN:
        return "positive"
    return "neutral"


def score_text(text: str | None, *, strip_mentions: bool = False) -> float:
    """Compound score of one message after stripping quoted history and signatures."""
    cleaned = clean_message(text, strip_mentions=strip_mentions)
    return get_fast_vader().compound(cleaned) if cleaned else 0.0


def _score_serial(texts: Sequence[str | None], strip_mentions: bool) -> list[float]:
    vader = get_fast_vader()
    seen: dict[str, float] = {}  # templated/auto-replied messages repeat: score each distinct text once
    out: list[float] = []
    append = out.append
    for text in texts:
        if not text:
            append(0.0)
            continue
        cached = seen.get(text)
        if cached is None:
            cleaned = clean_message(text, strip_mentions=strip_mentions)
            cached = vader.compound(cleaned) if cleaned else 0.0
            seen[text] = cached
        append(cached)
    return out


def score_texts(texts: Sequence[str | None], *, strip_mentions: bool = False) -> list[float]:
    """Compound scores for many texts, in order (each distinct text scored once)."""
    return _score_serial(texts, strip_mentions)


_PENDING_SQL = """
SELECT q.message_rowid, m.source, m.id, m.body, m.author_role = 'customer' AND m.public = 1
FROM sentiment_pending AS q LEFT JOIN messages AS m ON m.rowid = q.message_rowid
WHERE q.message_rowid > ? ORDER BY q.message_rowid LIMIT ?
"""
_UPSERT_SQL = """
INSERT INTO message_sentiment (source, message_id, compound, scored_at) VALUES (?, ?, ?, ?)
ON CONFLICT(source, message_id) DO UPDATE SET compound = excluded.compound, scored_at = excluded.scored_at
"""
_DONE_SQL = """
DELETE FROM sentiment_pending
WHERE message_rowid = ? AND (SELECT body FROM messages WHERE rowid = ?) IS ?
"""


def score_pending(
    conn: sqlite3.Connection,
    batch: int = 5000,
    *,
    now: int | None = None,
) -> int:
    """Score every public customer message waiting in ``sentiment_pending``; return how many were scored.

    Triggers on ``messages`` queue a message when it is stored, or when its text, role or visibility
    changes (:data:`kpi_engine.schema.V6_SENTIMENT_QUEUE`), so a run reads only what is new instead of
    checking millions of stored messages against their scores (6 s on the bench store, every run).
    Walks the queue in rowid order (keyset pagination) and commits every batch with its queue rows
    removed, so an interrupted run keeps its progress and a re-run scores only what is left. A queued
    message that is no longer a public customer message (or no longer stored) just leaves the queue;
    one whose text changed while it was being scored stays in it.
    ``now`` stamps ``scored_at`` (injectable for tests).
    """
    if batch <= 0:
        raise ValueError("batch must be positive")
    stamp = int(time.time()) if now is None else int(now)
    last_rowid = 0
    total = 0
    while True:
        rows = conn.execute(_PENDING_SQL, (last_rowid, batch)).fetchall()
        if not rows:
            break
        last_rowid = rows[-1][0]
        wanted = [row for row in rows if row[4]]
        scores = score_texts([row[3] for row in wanted])
        with writing(conn, "dp_sentiment"):
            conn.executemany(_UPSERT_SQL, [(row[1], row[2], score, stamp)
                                           for row, score in zip(wanted, scores, strict=True)])
            # a message edited since it was read stays queued: the next run scores its new text
            conn.executemany(_DONE_SQL, [(row[0], row[0], row[3]) for row in rows])
        total += len(wanted)
        if len(rows) < batch:
            break
    if total:
        logger.info("scored %d customer messages", total)
    return total
