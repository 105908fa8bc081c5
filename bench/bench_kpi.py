"""Benchmark the KPI catalog on a large store, against a naive Python baseline measured in the same run.

Prints: the one-time rebuild of the stored per-ticket facts (in a child process, with its peak RSS;
``--rebuild`` forces it), the incremental refresh after 1% of the tickets changed, the catalog time
for one period (the last 30 days of the store), for ``--by month`` over two years, peak RSS (this
process and its shard workers), and a naive baseline (tickets, messages and ratings loaded into
Python, the main KPIs computed in Python) with the ratio, after checking that the baseline's
numbers equal the engine's.

Usage: ``python3 bench/gen_store.py`` once (1M tickets, ~5M messages), then
``python3 bench/bench_kpi.py [--db /tmp/deskpulse_bench.db] [--workers N]``.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from config.settings import CostSettings, KpiSettings, SlaSettings  # noqa: E402
from kpi_engine import fact_store  # noqa: E402
from kpi_engine.engine import compute  # noqa: E402
from kpi_engine.periods import Period, local_date  # noqa: E402
from kpi_engine.stats import percentile  # noqa: E402
from sync.store import Store  # noqa: E402

KPI = KpiSettings(timezone="Europe/Berlin",
                  business_hours={d: "09:00-17:00" for d in ("mon", "tue", "wed", "thu", "fri")})
SLA = SlaSettings(first_reply={3: 60, 2: 240, 1: 480}, resolution={3: 480, 2: 1440, 1: 4320})
COSTS = CostSettings(monthly_total=42_000)
MAIN = ("tickets_created", "tickets_solved", "first_response_time_median_s", "first_response_time_mean_s",
        "full_resolution_time_median_s", "full_resolution_time_mean_s", "backlog_size", "csat_pct")


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def naive(conn: Any, period: Period) -> dict[str, Any]:
    """The main KPIs the obvious way: every needed row loaded into Python, loops over them."""
    since, until = period.since, period.until
    tickets = conn.execute("SELECT source, id, created_at, status, solved_at, is_spam, is_merged FROM tickets"
                           ).fetchall()
    valid = {(s, i): (c, st, sv) for s, i, c, st, sv, sp, mg in tickets
             if st != "deleted" and not sp and not mg}
    first_reply: dict[tuple[str, str], int] = {}
    for s, tid, at, role, public, kind in conn.execute(
            "SELECT source, ticket_id, created_at, author_role, public, kind FROM messages"):
        if role == "agent" and public == 1 and kind != "description":
            key = (s, tid)
            if key not in first_reply or at < first_reply[key]:
                first_reply[key] = at
    created = sum(1 for c, _, _ in valid.values() if since <= c < until)
    solved_times = sorted(sv - c for c, st, sv in valid.values()
                          if st in ("solved", "closed") and sv is not None and since <= sv < until)
    frt = sorted(max(fr - valid[k][0], 0) for k, fr in first_reply.items() if k in valid and since <= fr < until)
    backlog = sum(1 for c, st, _ in valid.values() if st in ("new", "open", "pending", "on_hold") and c < until)
    ratings = [(s,) for src, tid, s in conn.execute(
        "SELECT source, ticket_id, score_1_5 FROM ratings WHERE kind = 'csat' AND created_at >= ? AND created_at < ? "
        "AND score_1_5 BETWEEN 1 AND 5", [since, until]) if (src, tid) in valid]
    return {
        "tickets_created": created, "tickets_solved": len(solved_times),
        "first_response_time_median_s": round(percentile(frt, 50), 1) if frt else None,
        "first_response_time_mean_s": round(sum(frt) / len(frt), 1) if frt else None,
        "full_resolution_time_median_s": round(percentile(solved_times, 50), 1) if solved_times else None,
        "full_resolution_time_mean_s": round(sum(solved_times) / len(solved_times), 1) if solved_times else None,
        "backlog_size": backlog,
        "csat_pct": round(100 * sum(1 for (s,) in ratings if s >= 4) / len(ratings), 2) if ratings else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="/tmp/deskpulse_bench.db")
    ap.add_argument("--workers", type=int, default=None, help="shard processes (default: automatic)")
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--rebuild", action="store_true", help="force the one-time rebuild of the stored facts")
    ap.add_argument("--refresh-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not Path(args.db).exists():
        sys.exit(f"{args.db} does not exist: run python3 bench/gen_store.py first")
    store = Store(args.db)
    conn = store.conn
    if args.refresh_only:  # the child process of rebuild(): its peak RSS is the rebuild's alone
        _, wall, _ = timed(fact_store.refresh, conn, KPI)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"stored facts rebuilt (one-time: new store, upgrade or changed settings): {wall:.1f} s, "
              f"peak RSS {rss:.0f} MB")
        return
    if args.rebuild:
        conn.execute("DELETE FROM kpi_facts_meta")
    if fact_store.stale(conn, KPI)[0]:
        subprocess.run([sys.executable, __file__, "--db", args.db, "--refresh-only"], check=True)
    touched = conn.execute("SELECT COUNT(*) FROM tickets").fetchone()[0] // 100
    conn.execute("UPDATE tickets SET updated_at = updated_at WHERE rowid % 100 = 0")  # the triggers log them
    _, wall0, _ = timed(fact_store.refresh, conn, KPI)
    print(f"incremental refresh after {touched:,} tickets (1%) changed: {wall0:.2f} s")
    counts = store.counts()
    end = conn.execute("SELECT MAX(created_at) FROM tickets").fetchone()[0] + 1
    today = local_date(end, KPI.timezone)
    one = Period.from_dates(today - timedelta(days=29), today + timedelta(days=1), KPI.timezone)
    first = today.replace(day=1)
    two = Period.from_dates(first.replace(year=first.year - 2), first, KPI.timezone)  # 24 whole months
    print(f"store: {counts['tickets']:,} tickets, {counts['messages']:,} messages, "
          f"{counts['ticket_events']:,} events, {counts['ratings']:,} ratings")
    base = {"kpi": KPI, "sla": SLA, "costs": COSTS, "now": end, "workers": args.workers}
    compute(conn, since=one.since, until=one.until, **base)  # warm the page cache like a second run would
    result, wall, cpu = timed(compute, conn, since=one.since, until=one.until, **base)
    print(f"one period ({one.as_json()['since']} .. {one.as_json()['until']}): {wall:.2f} s wall, {cpu:.2f} s CPU")
    by_month, wall2, cpu2 = timed(compute, conn, since=two.since, until=two.until, by="month", **base)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"--by month over two years ({len(by_month['breakdown'])} months): {wall2:.2f} s wall, {cpu2:.2f} s CPU "
          f"here + {children.ru_utime + children.ru_stime:.2f} s CPU in shard workers")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {rss:.0f} MB (this process), {children.ru_maxrss / 1024:.0f} MB (largest shard worker)")
    if args.skip_naive:
        return
    baseline, wall3, _ = timed(naive, conn, one)
    engine = {name: result["kpis"][name] for name in MAIN}
    same = all(baseline[n] == engine[n] for n in MAIN)
    print(f"naive Python baseline, one period, main KPIs only: {wall3:.2f} s -> engine is {wall3 / wall:.1f}x "
          f"faster with the whole catalog ({'same numbers' if same else 'DIFFERENT numbers'})")
    if not same:
        for name in MAIN:
            print(f"  {name}: naive {baseline[name]} engine {engine[name]}")


if __name__ == "__main__":
    main()
