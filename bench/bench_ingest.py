"""Ingest benchmark: end-to-end sync speed per connector, against the floor measured in the same run.

Run on demand: ``python3 bench/bench_ingest.py [--kinds zendesk,freshdesk,intercom] [--tickets 20000]
[--profile]``. It prints figures and asserts nothing about timings.

Per helpdesk:

1. its simulator starts in another process (unthrottled, a world of ``--tickets`` tickets with messages);
2. the real ``SyncEngine`` with the real connector syncs it into a fresh SQLite store (``sync.store.Store``):
   tickets/s end to end, and requests per 1,000 tickets;
3. the floor: a second, cold simulator process over the same world; the exact requests the sync sent
   are replayed with a plain ``requests.Session`` (sequentially), each body ``json.loads``-ed, and after
   the rows the sync stored are ``executemany``-ed into a fresh store of the same tables (without the
   KPI change-log triggers, which are deskpulse's own cost), one
   transaction per page the engine committed; each stream inserts as many rows of each table as its
   pages carried. No mapping, no retries, no pacing: what any implementation pays for
   the same pages and rows. Per stream and in total;
4. the ratio engine/floor (targets: >= 0.5 of the floor; Zendesk >= 20,000 tickets/s).

``--profile`` adds one more sync under cProfile (main thread: the whole Zendesk path; Freshdesk and
Intercom fetch conversations on worker threads, which cProfile does not see) and prints where the time
goes, by area and by function.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import SimProcess, fmt_rate  # noqa: E402
from config.settings import Settings  # noqa: E402
from connectors.base import Connector, Page, Stream  # noqa: E402
from sync.engine import SourceReport, SyncEngine  # noqa: E402
from sync.registry import build_connector  # noqa: E402
from sync.store import TABLES, Store  # noqa: E402

DATA_TABLES = [name for name in TABLES if name not in ("sync_state", "outbox", "quarantine")]
TARGET_RATIO = 0.5
TARGET_ZENDESK_TPS = 20_000


@dataclass
class Sent:
    """One HTTP request as the connector sent it (replayed verbatim for the floor)."""

    stream: str
    method: str
    url: str
    params: Any
    json: Any
    headers: Any
    auth: Any


class _Current:
    """The stream the engine is running (streams run one after another; their worker threads share it)."""

    stream = ""


class _TaggedStream(Stream):
    def __init__(self, inner: Stream) -> None:
        self.inner, self.name = inner, inner.name  # type: ignore[misc]

    def pages(self, cursor: Any | None) -> Iterator[Page]:
        _Current.stream = self.name
        yield from self.inner.pages(cursor)


def tagging_factory(source: Any, settings: Settings) -> Connector:
    """The engine's own connector, with each stream tagging the requests it causes."""
    connector = build_connector(source, settings)
    streams = connector.streams
    connector.streams = lambda: [_TaggedStream(s) for s in streams()]  # type: ignore[method-assign]
    return connector


@contextmanager
def recording(into: list[Sent]) -> Iterator[None]:
    """Record every request any ``requests.Session`` sends (the connectors' HttpClient uses one)."""
    original = requests.Session.request

    def request(self: requests.Session, method: str, url: str, params: Any = None, **kwargs: Any) -> Any:
        into.append(Sent(_Current.stream, method, url, params, kwargs.get("json"), kwargs.get("headers"),
                         kwargs.get("auth")))
        return original(self, method, url, params=params, **kwargs)

    requests.Session.request = request  # type: ignore[method-assign]
    try:
        yield
    finally:
        requests.Session.request = original  # type: ignore[method-assign]


@dataclass
class EngineRun:
    seconds: float
    report: SourceReport
    rows: dict[str, int]  # stored, per table
    written: dict[str, Counter[str]]  # rows the pages carried, per stream and table (re-reads included)
    pages: Counter[str]  # pages committed per stream
    sent: list[Sent] = field(default_factory=list)


def engine_sync(sim: SimProcess, db: Path, *, profile: cProfile.Profile | None = None) -> EngineRun:
    settings = Settings(sources=[sim.source])
    sent: list[Sent] = []
    written: dict[str, Counter[str]] = {}
    pages: Counter[str] = Counter()

    def on_page(source: str, stream: str, page: Page, rows: int) -> None:
        pages[stream] += 1
        counts = written.setdefault(stream, Counter())
        for table, table_rows in page.records.items():
            counts[table] += len(table_rows)

    with Store(db) as store:
        engine = SyncEngine(store, settings, connector_factory=tagging_factory, on_page=on_page)
        with recording(sent):
            started = time.perf_counter()
            if profile is not None:
                profile.enable()
            (report,) = engine.sync_all()
            if profile is not None:
                profile.disable()
            seconds = time.perf_counter() - started
        rows = {t: int(store.scalar(f"SELECT count(*) FROM {t}")) for t in DATA_TABLES}
    if not report.ok:
        errors = [report.error] + [f"{s.stream}: {s.error}" for s in report.streams if s.error]
        raise SystemExit(f"{sim.kind}: the sync failed: {[e for e in errors if e]}")
    return EngineRun(seconds, report, rows, written, pages, sent)


@dataclass
class FloorRun:
    seconds: float
    http_s: float
    json_s: float
    sql_s: float
    requests: int
    failed: int
    body_bytes: int
    per_stream: dict[str, float] = field(default_factory=dict)


def load_rows(db: Path) -> dict[str, tuple[str, list[tuple[Any, ...]]]]:
    """Every stored row, ready for ``executemany`` into an empty store (read before the clock starts)."""
    conn = sqlite3.connect(db)
    try:
        out = {}
        for table in DATA_TABLES:
            cols = list(TABLES[table]["columns"])
            rows = conn.execute(f"SELECT {', '.join(cols)} FROM {table}").fetchall()
            if rows:
                sql = f"INSERT OR REPLACE INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
                out[table] = (sql, rows)
        return out
    finally:
        conn.close()


def plan_rows(run: EngineRun, rows: dict[str, tuple[str, list[tuple[Any, ...]]]]
              ) -> dict[str, list[list[tuple[str, list[tuple[Any, ...]]]]]]:
    """Per stream, per request of that stream: the (sql, rows) to insert and commit after it.

    Each stream gets as many rows of each table as its pages carried in the engine's run (overlap
    re-reads included, taken again from the start of the table: INSERT OR REPLACE), in as many
    transactions as the engine committed pages for it, spread evenly over the stream's requests.
    """
    taken = dict.fromkeys(rows, 0)
    plan: dict[str, list[list[tuple[str, list[tuple[Any, ...]]]]]] = {}
    for stream in dict.fromkeys(req.stream for req in run.sent):
        n = sum(1 for req in run.sent if req.stream == stream)
        pages = max(1, min(n, run.pages.get(stream, 1)))
        commit_after = [n * (j + 1) // pages - 1 for j in range(pages)]
        slots: list[list[tuple[str, list[tuple[Any, ...]]]]] = [[] for _ in range(n)]
        for table, count in run.written.get(stream, {}).items():
            if table not in rows or not count:
                continue
            sql, table_rows = rows[table]
            picked = [table_rows[(taken[table] + k) % len(table_rows)] for k in range(count)]
            taken[table] += count
            for j, at in enumerate(commit_after):
                chunk = picked[count * j // pages:count * (j + 1) // pages]
                if chunk:
                    slots[at].append((sql, chunk))
        plan[stream] = slots
    return plan


def floor(run: EngineRun, old_url: str, sim: SimProcess, rows: dict[str, tuple[str, list[tuple[Any, ...]]]],
          db: Path) -> FloorRun:
    """Replay the requests against ``sim`` (json.loads each body) and insert the rows request by request."""
    session = requests.Session()
    plan = plan_rows(run, rows)
    cursor = dict.fromkeys(plan, 0)
    per_stream: dict[str, float] = {}
    with Store(db) as store:
        conn = store.conn
        # the floor is plain tables: the KPI change-log triggers are deskpulse's own cost, counted against it
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            conn.execute(f"DROP TRIGGER {name}")
        http_s = json_s = sql_s = 0.0
        failed = body_bytes = 0
        started = time.perf_counter()
        for req in run.sent:
            t0 = time.perf_counter()
            resp = session.request(req.method, req.url.replace(old_url, sim.url, 1), params=req.params,
                                   json=req.json, headers=req.headers, auth=req.auth, timeout=(10, 120))
            body = resp.content
            t1 = time.perf_counter()
            if resp.status_code >= 400:
                failed += 1  # e.g. an Intercom scroll_param, which is random per simulator process
            else:
                json.loads(body)
            body_bytes += len(body)
            t2 = time.perf_counter()
            batch = plan[req.stream][cursor[req.stream]]
            if batch:
                conn.execute("BEGIN IMMEDIATE")
                for sql, chunk in batch:
                    conn.executemany(sql, chunk)
                conn.execute("COMMIT")
            cursor[req.stream] += 1
            t3 = time.perf_counter()
            http_s, json_s, sql_s = http_s + t1 - t0, json_s + t2 - t1, sql_s + t3 - t2
            per_stream[req.stream] = per_stream.get(req.stream, 0.0) + t3 - t0
        seconds = time.perf_counter() - started
    session.close()
    return FloorRun(seconds, http_s, json_s, sql_s, len(run.sent), failed, body_bytes, per_stream)


# -- profile ----------------------------------------------------------------------------------------------
AREAS = (
    ("waiting for worker threads (per-ticket requests)", ("'acquire' of '_thread.lock'",)),
    ("waiting on the simulator (socket reads)", ("recv_into", "readinto", "socket.py", "select", "poll")),
    ("sqlite (execute/executemany/commit)", ("sqlite3",)),
    ("json decode/encode", ("json/", "json.", "'loads'", "'dumps'", "encode", "decode")),
    ("requests/urllib3/http.client", ("requests/", "urllib3/", "http/client.py", "email/")),
    ("connector mapping + streams", ("connectors/",)),
    ("sync engine + store (python)", ("sync/",)),
    ("tenacity/pacing", ("tenacity/", "ratelimit")),
)


def area_of(func: tuple[str, int, str]) -> str:
    text = f"{func[0]} '{func[2]}'"
    for name, needles in AREAS:
        if any(n in text for n in needles):
            return name
    return "other"


def print_profile(profile: cProfile.Profile, wall: float, top: int = 22) -> None:
    stats = pstats.Stats(profile)
    by_area: dict[str, float] = {}
    for func, (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        area = area_of(func)
        by_area[area] = by_area.get(area, 0.0) + tottime
    total = sum(by_area.values())
    print(f"  profile (main thread, {total:.2f} s of own time, {wall:.2f} s wall under the profiler):")
    for area, secs in sorted(by_area.items(), key=lambda kv: -kv[1]):
        print(f"    {secs:7.2f} s  {100 * secs / total:5.1f}%  {area}")
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(top)
    lines = [ln for ln in out.getvalue().splitlines() if ln.strip()]
    start = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls")), 0)
    print("    top functions by own time:")
    for line in lines[start:start + top + 1]:
        print("    " + line.replace(str(Path(__file__).resolve().parents[1]) + "/", ""))


# -- main -------------------------------------------------------------------------------------------------
def bench(kind: str, tickets: int, seed: int, workdir: Path, profile: bool) -> dict[str, Any]:
    print(f"\n== {kind}: {tickets:,} tickets (seed {seed}, messages on)")
    with SimProcess.start(kind, tickets, seed=seed) as sim:
        print(f"  simulator ready in another process in {sim.generate_s:.1f} s at {sim.url}")
        run = engine_sync(sim, workdir / f"{kind}-engine.db")
        stats = sim.stats()
    n = run.rows["tickets"]
    req = run.report.requests or len(run.sent)
    shown = ", ".join(f"{t} {c:,}" for t, c in run.rows.items() if c)
    print(f"  engine: {run.seconds:7.2f} s  {fmt_rate(n, run.seconds):>12} tickets  "
          f"{fmt_rate(sum(run.rows.values()), run.seconds):>12} rows  ({shown})")
    served = sum(stats["served"].values())
    print(f"          {req:,} requests ({1000 * req / max(n, 1):.1f} per 1,000 tickets; simulator served {served:,}, "
          f"statuses {stats['statuses']})")
    rows = load_rows(workdir / f"{kind}-engine.db")
    with SimProcess.start(kind, tickets, seed=seed) as cold:
        fl = floor(run, sim.url, cold, rows, workdir / f"{kind}-floor.db")
        if profile:
            prof = cProfile.Profile()
            started = time.perf_counter()
            engine_sync(cold, workdir / f"{kind}-profile.db", profile=prof)
            wall = time.perf_counter() - started
    print(f"  floor:  {fl.seconds:7.2f} s  {fmt_rate(n, fl.seconds):>12} tickets  "
          f"(http {fl.http_s:.2f} s, json.loads {fl.json_s:.2f} s, executemany+commit {fl.sql_s:.2f} s; "
          f"{fl.requests:,} requests, {fl.failed} refused on replay, {fl.body_bytes / 1e6:,.1f} MB)")
    print(f"  {'stream':<22} {'requests':>8} {'rows':>9} {'engine s':>9} {'floor s':>8} {'ratio':>6}")
    for sr in run.report.streams:
        reqs = sum(1 for r in run.sent if r.stream == sr.stream)
        fs = fl.per_stream.get(sr.stream, 0.0)
        print(f"  {sr.stream:<22} {reqs:>8,} {sr.rows:>9,} {sr.seconds:>9.2f} {fs:>8.2f} "
              f"{fs / sr.seconds if sr.seconds else 0:>6.2f}")
    ticket_stream = next((sr for sr in run.report.streams if sr.stream == "tickets"), None)
    if ticket_stream is not None and ticket_stream.seconds:
        print(f"  tickets stream alone: {fmt_rate(n, ticket_stream.seconds)} tickets "
              f"(floor {fmt_rate(n, fl.per_stream.get('tickets', 0.0))})")
    ratio = fl.seconds / run.seconds if run.seconds else 0.0
    verdict = "meets" if ratio >= TARGET_RATIO else "BELOW"
    line = f"  ratio:  {ratio:.2f} of the floor ({verdict} the {TARGET_RATIO} target)"
    if kind == "zendesk":
        tps = n / run.seconds
        line += f"; {tps:,.0f} tickets/s ({'meets' if tps >= TARGET_ZENDESK_TPS else 'BELOW'} the " \
                f"{TARGET_ZENDESK_TPS:,}/s target)"
    print(line)
    if profile:
        print_profile(prof, wall)
    return {"kind": kind, "tickets": n, "engine_s": run.seconds, "floor_s": fl.seconds, "ratio": ratio,
            "requests": req}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", default="zendesk,freshdesk,intercom")
    parser.add_argument("--tickets", type=int, default=20_000, help="tickets in each generated world")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="profile one more sync with cProfile")
    parser.add_argument("--workdir", type=Path, default=None, help="where the stores go (default: a temp dir)")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="deskpulse-ingest-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for kind in [k.strip() for k in args.kinds.split(",") if k.strip()]:
            results.append(bench(kind, args.tickets, args.seed, workdir, args.profile))
    print("\nsummary")
    print(f"  {'kind':<10} {'tickets':>8} {'engine t/s':>11} {'floor t/s':>10} {'ratio':>6} {'req/1k':>7}")
    for r in results:
        print(f"  {r['kind']:<10} {r['tickets']:>8,} {r['tickets'] / r['engine_s']:>11,.0f} "
              f"{r['tickets'] / r['floor_s']:>10,.0f} {r['ratio']:>6.2f} {1000 * r['requests'] / r['tickets']:>7.1f}")


if __name__ == "__main__":
    main()
