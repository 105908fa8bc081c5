"""VADER's compound score, computed the way vaderSentiment 3.3.2 does, without its quadratic hot spots.

Why a re-implementation: ``SentimentIntensityAnalyzer.polarity_scores`` rebuilds the lower-cased
word list inside its negation and idiom checks, up to four times per sentiment word, so a
500-character email costs O(words²) and the analyzer manages only ~3,000 such messages a
second; its "but" rule is quadratic too (a pasted 60,000-word log with one "but" takes ~20 s).
This module lower-cases once, replays the "but" rule with heaps, skips the emoji pass for text
without emoji and computes only ``compound``. Everything that decides the score (lexicon,
emoji table, booster and negation lists, special cases, constants) is taken from the installed
vaderSentiment package itself, and ``tests/test_sentiment_fast.py`` checks the result is
identical to ``polarity_scores`` on thousands of texts. If vaderSentiment changes its rules,
that test is what notices.
"""

from __future__ import annotations

import heapq
import string
from functools import lru_cache

from vaderSentiment import vaderSentiment as _vs

__all__ = ["FastVader", "get_fast_vader"]

_BOOSTERS = _vs.BOOSTER_DICT
_SPECIAL = _vs.SPECIAL_CASES
_NEGATE = frozenset(_vs.NEGATE)
_N_SCALAR = _vs.N_SCALAR
_C_INCR = _vs.C_INCR
_PUNCT = string.punctuation
_normalize = _vs.normalize
_scalar_inc_dec = _vs.scalar_inc_dec


def _but_check(lowers: list[str], sentiments: list[float]) -> list[float]:
    """VADER's ``_but_check`` with the same (quirky) result in O(n log n) instead of O(n²).

    VADER walks the list and, for each value, rescales the *first* element equal to it
    (``list.index``) by 0.5 before the first "but" and 1.5 after it, mutating as it goes. That
    is replayed here with, per distinct value, a heap of the positions holding it, so a pasted
    log of 50,000 words containing "but" takes milliseconds rather than minutes. A rescale
    that leaves the value unchanged (only ever 0 → 0) is skipped: it can only flip the sign of
    a zero, which changes no score.
    """
    bi = lowers.index("but")
    positions: dict[float, list[int]] = {}
    for i, value in enumerate(sentiments):
        positions.setdefault(value, []).append(i)  # ascending: already a valid heap
    for p in range(len(sentiments)):
        value = sentiments[p]
        heap = positions[value]
        si = heap[0]
        if si == bi:
            continue
        new = value * 0.5 if si < bi else value * 1.5
        if new == value:
            continue
        heapq.heappop(heap)
        sentiments[si] = new
        heapq.heappush(positions.setdefault(new, []), si)
    return sentiments


def _negated(word_lower: str) -> bool:
    """``vaderSentiment.negated([word])`` for one already lower-cased word."""
    return word_lower in _NEGATE or "n't" in word_lower


def _strip_punc(token: str) -> str:
    """``SentiText._strip_punc_if_word``: keep emoticons (≤ 2 chars once stripped) whole."""
    stripped = token.strip(_PUNCT)
    return token if len(stripped) <= 2 else stripped


class FastVader:
    """Compound scores identical to ``SentimentIntensityAnalyzer().polarity_scores(text)["compound"]``."""

    def __init__(self, analyzer: _vs.SentimentIntensityAnalyzer | None = None) -> None:
        analyzer = analyzer or _vs.SentimentIntensityAnalyzer()
        self.analyzer = analyzer
        self.lexicon: dict[str, float] = analyzer.lexicon
        self.emojis: dict[str, str] = analyzer.emojis
        # Only one-character keys can ever match VADER's per-character emoji loop.
        self._emoji_chars = frozenset(k for k in self.emojis if len(k) == 1)

    def _replace_emoji(self, text: str) -> str:
        """VADER's emoji-to-description pass, verbatim (only run when the text has an emoji)."""
        out: list[str] = []
        prev_space = True
        emojis = self.emojis
        for char in text:
            if char in emojis:
                if not prev_space:
                    out.append(" ")
                out.append(emojis[char])
                prev_space = False
            else:
                out.append(char)
                prev_space = char == " "
        return "".join(out)

    def compound(self, text: str) -> float:
        """The compound score in [-1, 1], rounded to 4 places like VADER."""
        if not text.isascii() and not self._emoji_chars.isdisjoint(text):
            text = self._replace_emoji(text)
        text = text.strip()
        words = [_strip_punc(w) for w in text.split()]
        if not words:
            return 0.0
        lowers = [w.lower() for w in words]
        allcaps = sum(1 for w in words if w.isupper())
        is_cap_diff = 0 < len(words) - allcaps < len(words)
        lex = self.lexicon
        n = len(words)
        sentiments: list[float] = []
        append = sentiments.append
        for i, low in enumerate(lowers):
            if low in _BOOSTERS:
                append(0)
                continue
            if i < n - 1 and low == "kind" and lowers[i + 1] == "of":
                append(0)
                continue
            if low in lex:
                append(self._valence(words, lowers, i, is_cap_diff))
            else:
                append(0)
        if "but" in lowers:
            sentiments = _but_check(lowers, sentiments)
        sum_s = float(sum(sentiments))
        ep = min(text.count("!"), 4) * 0.292
        qm_count = text.count("?")
        qm = 0 if qm_count <= 1 else (qm_count * 0.18 if qm_count <= 3 else 0.96)
        amplifier = ep + qm
        if sum_s > 0:
            sum_s += amplifier
        elif sum_s < 0:
            sum_s -= amplifier
        return round(_normalize(sum_s), 4)

    def _valence(self, words: list[str], lowers: list[str], i: int, is_cap_diff: bool) -> float:
        """``sentiment_valence`` for a lexicon word, same operations in the same order."""
        lex = self.lexicon
        item = words[i]
        low = lowers[i]
        n = len(words)
        valence = lex[low]
        if low == "no" and i != n - 1 and lowers[i + 1] in lex:
            valence = 0.0
        if (i > 0 and lowers[i - 1] == "no") or (i > 1 and lowers[i - 2] == "no") \
                or (i > 2 and lowers[i - 3] == "no" and lowers[i - 1] in ("or", "nor")):
            valence = lex[low] * _N_SCALAR
        if item.isupper() and is_cap_diff:
            if valence > 0:
                valence += _C_INCR
            else:
                valence -= _C_INCR
        for start_i in range(3):
            prev = i - (start_i + 1)
            if i > start_i and lowers[prev] not in lex:
                s = _scalar_inc_dec(words[prev], valence, is_cap_diff)
                if start_i == 1 and s != 0:
                    s = s * 0.95
                if start_i == 2 and s != 0:
                    s = s * 0.9
                valence = valence + s
                valence = self._negation_check(valence, lowers, start_i, i)
                if start_i == 2:
                    valence = self._special_idioms_check(valence, lowers, i)
        return self._least_check(valence, lowers, i)

    @staticmethod
    def _negation_check(valence: float, lw: list[str], start_i: int, i: int) -> float:
        if start_i == 0:
            if _negated(lw[i - 1]):
                valence = valence * _N_SCALAR
        elif start_i == 1:
            if lw[i - 2] == "never" and (lw[i - 1] == "so" or lw[i - 1] == "this"):
                valence = valence * 1.25
            elif lw[i - 2] == "without" and lw[i - 1] == "doubt":
                pass
            elif _negated(lw[i - 2]):
                valence = valence * _N_SCALAR
        else:
            # Same (odd) precedence as VADER: (never and (so|this)) or (so|this right before).
            if lw[i - 3] == "never" and (lw[i - 2] == "so" or lw[i - 2] == "this") or \
                    (lw[i - 1] == "so" or lw[i - 1] == "this"):
                valence = valence * 1.25
            elif lw[i - 3] == "without" and (lw[i - 2] == "doubt" or lw[i - 1] == "doubt"):
                pass
            elif _negated(lw[i - 3]):
                valence = valence * _N_SCALAR
        return valence

    @staticmethod
    def _special_idioms_check(valence: float, lw: list[str], i: int) -> float:
        onezero = f"{lw[i - 1]} {lw[i]}"
        twoonezero = f"{lw[i - 2]} {lw[i - 1]} {lw[i]}"
        twoone = f"{lw[i - 2]} {lw[i - 1]}"
        threetwoone = f"{lw[i - 3]} {lw[i - 2]} {lw[i - 1]}"
        threetwo = f"{lw[i - 3]} {lw[i - 2]}"
        for seq in (onezero, twoonezero, twoone, threetwoone, threetwo):
            if seq in _SPECIAL:
                valence = _SPECIAL[seq]
                break
        if len(lw) - 1 > i:
            zeroone = f"{lw[i]} {lw[i + 1]}"
            if zeroone in _SPECIAL:
                valence = _SPECIAL[zeroone]
        if len(lw) - 1 > i + 1:
            zeroonetwo = f"{lw[i]} {lw[i + 1]} {lw[i + 2]}"
            if zeroonetwo in _SPECIAL:
                valence = _SPECIAL[zeroonetwo]
        for n_gram in (threetwoone, threetwo, twoone):
            if n_gram in _BOOSTERS:
                valence = valence + _BOOSTERS[n_gram]
        return valence

    def _least_check(self, valence: float, lw: list[str], i: int) -> float:
        least_before = lw[i - 1] == "least" and "least" not in self.lexicon if i > 0 else False
        if i > 1 and least_before:
            if lw[i - 2] != "at" and lw[i - 2] != "very":
                valence = valence * _N_SCALAR
        elif i > 0 and least_before:
            valence = valence * _N_SCALAR
        return valence


@lru_cache(maxsize=1)
def get_fast_vader() -> FastVader:
    """One analyzer per process: loading the 7,500-word lexicon takes ~50 ms."""
    return FastVader()
