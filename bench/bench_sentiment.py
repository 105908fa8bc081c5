"""Sentiment throughput: messages scored per second, end to end (read, clean, score, write).

Why these messages: support mail is longer than a tweet and drags quoted history and a
signature along, and VADER's cost grows faster than linearly with length. Each generated
message is 1–4 sentences the customer wrote (mixed tone), and about a third carry a quoted
reply and/or a signature, as e-mail replies do; a random account id and name make nearly
every text distinct, so the in-batch dedup cache does not flatter the figure.

Prints, for N messages: vaderSentiment's own ``polarity_scores`` on the cleaned text (the
reference), the fast path alone, and ``score_pending`` on a real store (SQLite read + write
included).

Usage: ``python3 bench/bench_sentiment.py [--messages 100000] [--batch 5000]``
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # noqa: E402

from kpi_engine.sentiment import score_pending  # noqa: E402
from kpi_engine.textclean import clean_message  # noqa: E402
from kpi_engine.vader_fast import get_fast_vader  # noqa: E402
from sync.store import Store  # noqa: E402

SENTENCES = (
    "The export is still broken and we are losing data every day.",
    "I tried clearing the cache as suggested but nothing changed.",
    "Thank you so much for the quick help, everything works perfectly now!",
    "Our invoice for March shows the wrong amount again, please correct it.",
    "This is the third time I am writing about this and nobody answers.",
    "Could you tell me how to add a new user to our workspace?",
    "The dashboard takes more than thirty seconds to load for the whole team.",
    "Honestly this is unacceptable, we pay a lot for this service.",
    "Great, that did the trick. Appreciate it!",
    "We are seriously considering cancelling our contract if this isn't fixed.",
    "Here is the screenshot you asked for, the error appears after login.",
    "It happens on Chrome and Firefox, on Windows and on Mac.",
    "Very disappointed with how this has been handled so far.",
    "No rush, but could you check whether the webhook fires for archived records?",
    "The mobile app crashes every time I open a report, which is really frustrating.",
    "Sure, a call tomorrow at 10 works for us.",
)
QUOTE = ("\n\nOn Tue, Mar 3, 2026 at 10:12 AM Support <support@vendor.example> wrote:\n"
         "> Hi {name}, sorry for the trouble! Could you send us a screenshot of the error?\n"
         "> We are looking into it and will update you shortly.\n> Best,\n> The support team\n")
SIGNATURE = "\n\nBest regards,\n{name}\nOperations Lead, {org}\n+1 555 {n:04d}\n"
MOBILE = "\n\nSent from my iPhone"
NAMES = ("Jane Doe", "Ahmed Khan", "Li Chen", "Maria Rossi", "Tom Baker", "Priya Patel")
ORGS = ("Acme Logistics", "Globex Health", "Initech Labs", "Umbrella Foods")


def make_messages(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        name = rng.choice(NAMES)
        text = " ".join(rng.sample(SENTENCES, rng.randint(1, 4)))
        text = f"Hi team, account {rng.randint(1000, 999_999)} here. {text}"
        roll = rng.random()
        if roll < 0.20:
            text += SIGNATURE.format(name=name, org=rng.choice(ORGS), n=rng.randint(0, 9999)) + QUOTE.format(name=name)
        elif roll < 0.30:
            text += MOBILE
        elif roll < 0.40:
            text += QUOTE.format(name=name)
        out.append(text)
    return out


def _load(store: Store, bodies: list[str]) -> None:
    with store.transaction():
        store.upsert("messages", ({"source": "bench", "id": str(i), "ticket_id": str(i // 4), "author_id": "c",
                                   "author_role": "customer", "public": 1, "body": b, "created_at": i}
                                  for i, b in enumerate(bodies)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5_000)
    args = parser.parse_args()
    bodies = make_messages(args.messages)
    print(f"{len(bodies):,} messages, mean {statistics.mean(map(len, bodies)):.0f} chars raw, "
          f"{statistics.mean(len(clean_message(b)) for b in bodies[:5000]):.0f} chars after cleaning")

    sample = bodies[: min(len(bodies), 10_000)]
    cleaned = [clean_message(b) for b in sample]
    ref = SentimentIntensityAnalyzer()
    t0 = time.perf_counter()
    ref_scores = [ref.polarity_scores(c)["compound"] for c in cleaned]
    print(f"vaderSentiment polarity_scores (cleaned text): {len(sample) / (time.perf_counter() - t0):,.0f} msgs/s")
    fast = get_fast_vader()
    t0 = time.perf_counter()
    fast_scores = [fast.compound(c) for c in cleaned]
    print(f"fast path alone (cleaned text):                {len(sample) / (time.perf_counter() - t0):,.0f} msgs/s")
    t0 = time.perf_counter()
    for b in sample:
        clean_message(b)
    print(f"cleaning alone:                                {len(sample) / (time.perf_counter() - t0):,.0f} msgs/s")
    print(f"identical compound scores: {ref_scores == fast_scores}")

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        _load(store, bodies)
        t0 = time.perf_counter()
        scored = score_pending(store.conn, batch=args.batch)
        elapsed = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = score_pending(store.conn, batch=args.batch)
        rerun = time.perf_counter() - t0
        store.close()
    print(f"score_pending batch={args.batch:,} (read + clean + score + write): {scored:,} in {elapsed:.2f} s = "
          f"{scored / elapsed:,.0f} msgs/s; re-run scored {again} in {rerun:.2f} s")
    # VADER's own _but_check is quadratic (minutes for a pasted 60,000-word log); the fast path is not
    paste = "but " + "awful great ok " * 20_000
    t0 = time.perf_counter()
    get_fast_vader().compound(paste)
    print(f"fast path on a 60,000-word pasted log containing 'but': {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
