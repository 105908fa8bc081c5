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
from kpi_engine.transactions import savepoint
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
SELECT m.rowid, m.source, m.id, m.body FROM messages AS m
WHERE m.rowid > ? AND m.author_role = 'customer' AND m.public = 1
  AND NOT EXISTS (SELECT 1 FROM message_sentiment AS s WHERE s.source = m.source AND s.message_id = m.id)
ORDER BY m.rowid LIMIT ?
"""
_UPSERT_SQL = """
INSERT INTO message_sentiment (source, message_id, compound, scored_at) VALUES (?, ?, ?, ?)
ON CONFLICT(source, message_id) DO UPDATE SET compound = excluded.compound, scored_at = excluded.scored_at
"""


def score_pending(
    conn: sqlite3.Connection,
    batch: int = 5000,
    *,
    now: int | None = None,
) -> int:
    """Score every public customer message not yet in ``message_sentiment``; return how many were scored.

    Walks ``messages`` in rowid order (keyset pagination, so each batch is an index range,
    not a re-scan) and commits every batch, so an interrupted run keeps its progress and a
    re-run scores only what is new. ``now`` stamps ``scored_at`` (injectable for tests).
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
        scores = score_texts([row[3] for row in rows])
        with savepoint(conn, "dp_sentiment"):
            conn.executemany(_UPSERT_SQL, [(row[1], row[2], score, stamp)
                                           for row, score in zip(rows, scores, strict=True)])
        total += len(rows)
        if len(rows) < batch:
            break
    if total:
        logger.info("scored %d customer messages", total)
    return total
