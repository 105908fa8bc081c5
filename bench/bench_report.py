"""``deskpulse report`` on the large bench store: time to build the page (target <= 5 s) and its size.

Prints the split between computing (KPIs by week, the agent/group/channel tables and the per-customer SLA view,
the CDI and its 12-week line) and rendering (Altair specs, the inlined Vega bundle), for the default period
(the last twelve ISO weeks of the store), and peak RSS. The KPI facts are refreshed first and not timed
(``bench_kpi.py`` measures that). Three runs:

1. as the store is: on a store without CDI history the report fills twelve week-ends and fourteen days of it;
2. after a sync (the kept CDI dropped, as a sync makes it stale): the CDI computed beside the KPIs;
3. again, no sync in between: the kept CDI reused (the daemon's weekly report, which follows its distress job).

Usage: ``python3 bench/gen_store.py`` once, then ``python3 bench/bench_report.py [--db /tmp/deskpulse_bench.db]``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datetime import timedelta  # noqa: E402

from bench.bench_kpi import COSTS, KPI, SLA  # noqa: E402
from config.settings import Settings  # noqa: E402
from kpi_engine import fact_store  # noqa: E402
from kpi_engine.periods import local_date  # noqa: E402
from kpi_engine.report_html import render, vega_script  # noqa: E402
from sync.report_job import build, weeks_ending  # noqa: E402
from sync.store import Store  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="/tmp/deskpulse_bench.db")
    args = parser.parse_args()
    settings = Settings(kpi=KPI, sla=SLA, costs=COSTS)
    store = Store(args.db)
    now = int(store.scalar("SELECT MAX(created_at) FROM tickets")) + 3600
    fact_store.prepare(store.conn, settings.kpi, now=now)
    today = local_date(now, settings.kpi.timezone)
    period = weeks_ending(today - timedelta(days=today.weekday()), today + timedelta(days=1), settings.kpi.timezone)
    tickets = store.scalar("SELECT COUNT(*) FROM tickets")
    print(f"store: {tickets:,} tickets; period {period.since}..{period.until} (12 ISO weeks)")
    history = store.scalar("SELECT COUNT(*) FROM cdi_history")
    for run in (f"as the store is ({history:,} CDI history rows)", "after a sync (CDI computed)",
                "no sync since (CDI kept)"):
        vega_script.cache_clear()  # a new process: the bundle comes from the user's cache folder
        if run.startswith("after a sync"):
            store.conn.execute("DELETE FROM cdi_latest")
        start = time.perf_counter()
        data = build(store, settings, period, now=now)
        computed = time.perf_counter() - start
        page = render(data)
        total = time.perf_counter() - start
        with tempfile.NamedTemporaryFile("w", suffix=".html", delete=True, encoding="utf-8") as out:
            out.write(page)
        print(f"{run}: {total:.2f} s total = {computed:.2f} s computing + {total - computed:.2f} s rendering; "
              f"page {len(page.encode()) / 1e6:.2f} MB; target <= 5 s")
    store.close()
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
