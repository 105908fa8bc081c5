"""Survey import at scale: rows per second and peak memory for a large NPS export.

Why: a quarterly NPS export from a survey tool can hold a million rows, and `import-survey` once read the
whole file into memory before writing (1.6 GB RSS for 1M rows). It now streams in batches, so memory
should stay flat whatever the file size. The import runs in a child process so its peak RSS
(``ru_maxrss``) is the import's own, not this script's.

Usage: ``python3 bench/bench_survey.py [--rows 1000000] [--people 20000]``
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sync.store import Store  # noqa: E402
from sync.survey import import_survey  # noqa: E402


def _write_csv(path: Path, rows: int, people: int) -> None:
    rng = random.Random(7)
    with path.open("w", encoding="utf-8") as out:
        out.write("email,score,date,comment\n")
        for i in range(rows):
            day = 1 + i % 28
            out.write(f"user{rng.randrange(people)}@example.com,{rng.randrange(11)},2026-02-{day:02d},"
                      f"comment {i}\n")


def _child(db: str, csv_path: str, queue: mp.Queue) -> None:
    store = Store(db)
    start = time.perf_counter()
    report = import_survey(store, csv_path, "nps")
    seconds = time.perf_counter() - start
    store.close()
    queue.put((report.imported, report.matched, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--people", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db, csv_path = Path(tmp) / "s.db", Path(tmp) / "nps.csv"
        store = Store(db)
        with store.transaction():
            store.upsert("people", [{"source": "zd", "id": f"p{i}", "email": f"user{i}@example.com",
                                     "role": "customer"} for i in range(0, args.people, 2)])
        store.close()
        _write_csv(csv_path, args.rows, args.people)
        size_mb = csv_path.stat().st_size / 1e6
        ctx = mp.get_context("spawn")
        queue: mp.Queue = ctx.Queue()
        proc = ctx.Process(target=_child, args=(str(db), str(csv_path), queue))
        proc.start()
        imported, matched, seconds, rss_mb = queue.get()
        proc.join()
    print(f"rows {args.rows:,} ({size_mb:.0f} MB CSV), people {args.people:,}")
    print(f"imported {imported:,} ({matched:,} matched) in {seconds:.1f} s = {imported / seconds:,.0f} rows/s")
    print(f"peak RSS of the importing process: {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
