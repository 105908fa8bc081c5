"""The fast path must give exactly vaderSentiment's compound score, on every kind of text VADER has a rule for."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vaderSentiment.vaderSentiment import BOOSTER_DICT, NEGATE, SPECIAL_CASES, SentimentIntensityAnalyzer

from kpi_engine.vader_fast import get_fast_vader

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "twcs_amazonhelp_sentiment_300.csv"
REF = SentimentIntensityAnalyzer()
FAST = get_fast_vader()

# Tokens that trigger each of VADER's rules: negation, boosters (also in CAPS), "but", "least",
# "kind of", "no", "never so", "without doubt", special-case idioms, emoticons, emoji, punctuation.
RULE_TOKENS = (
    sorted(NEGATE)[:30] + sorted(BOOSTER_DICT)[:40]
    + [w for phrase in SPECIAL_CASES for w in phrase.split()]
    + ["but", "BUT", "least", "at", "very", "kind", "of", "no", "NO", "never", "so", "this", "without", "doubt",
       "or", "nor", "VERY", "GREAT", "BAD", "Good!", "bad.", "(good)", ":)", ":(", ":D", ";-)", "<3",
       "!!", "!!!!!", "?", "??", "????", "😁", "💘", "🙁", "👍", "—", "don't", "isn't", "n't", "kind-of", "uh-uh"]
)
LEXICON_WORDS = sorted(REF.lexicon)


def _random_texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    pool = RULE_TOKENS + LEXICON_WORDS[::5] + ["the", "order", "delivery", "support", "account", "is", "was"]
    texts = []
    for _ in range(n):
        words = [rng.choice(pool) for _ in range(rng.randint(0, 45))]
        words = [w.upper() if rng.random() < 0.05 else w for w in words]
        texts.append(" ".join(words) + rng.choice(["", ".", "!", "?", "!!", " :)"]))
    return texts


def test_identical_on_rule_heavy_random_texts() -> None:
    texts = _random_texts(4000, seed=11)
    mismatches = [t for t in texts if FAST.compound(t) != REF.polarity_scores(t)["compound"]]
    assert mismatches == []


def test_identical_on_long_texts_with_but() -> None:
    """Long texts, a small vocabulary (so many equal valences) and several "but"s: VADER's quirky
    first-equal-value rescaling is replayed exactly by the O(n log n) version."""
    rng = random.Random(5)
    vocab = ["good", "bad", "great", "awful", "ok", "not", "very", "no", "but", "the", "order", "BAD", "least"]
    texts = [" ".join(rng.choice(vocab) for _ in range(rng.randint(100, 400))) for _ in range(150)]
    assert all("but" in t.split() for t in texts)
    assert [FAST.compound(t) for t in texts] == [REF.polarity_scores(t)["compound"] for t in texts]


@pytest.mark.parametrize("text", [
    "", "   ", "VADER is smart, handsome, and funny!", "VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!",
    "The book was only kind of good.", "The plot was good, but the characters are uncompelling and the dialog is "
    "not great.", "Today only kinda sux! But I'll get by, lol", "Catch utf-8 emoji such as 💘 and 💋 and 😁",
    "Not bad at all", "Sentiment analysis has never been this good!", "With VADER, sentiment analysis is the shit!",
    "Roger Dodger is one of the least compelling variations on this theme.", "Without a doubt, an excellent idea.",
    "no good no bad no", "good but good but bad", "I am not sure it isn't NOT great???", "a😁b 😁😁 x😁",
])
def test_identical_on_vader_examples(text: str) -> None:
    assert FAST.compound(text) == REF.polarity_scores(text)["compound"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(RULE_TOKENS + LEXICON_WORDS[:400]), max_size=30), st.sampled_from([" ", "  ", "\n"]))
def test_identical_property(words: list[str], sep: str) -> None:
    text = sep.join(words)
    assert FAST.compound(text) == REF.polarity_scores(text)["compound"]


def test_identical_on_real_customer_tweets() -> None:
    if not DATA.is_file():
        pytest.skip(f"labelled tweets not found at {DATA} (shared data is local-only)")
    with DATA.open(encoding="utf-8", newline="") as fh:
        texts = [row["text"] for row in csv.DictReader(fh)]
    assert len(texts) == 300
    assert [FAST.compound(t) for t in texts] == [REF.polarity_scores(t)["compound"] for t in texts]
