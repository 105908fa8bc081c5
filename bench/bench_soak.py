"""Soak benchmark: does the daemon stay flat in memory and error-free over many sync cycles, and stop cleanly?

Run on demand: ``python bench/bench_soak.py [--seconds 90] [--tickets 2000]``.

The Zendesk, Freshdesk, Intercom and Slack simulators run in a separate process
(``spawn``: the daemon's RSS must not include the world), with a thread that
touches one random ticket per helpdesk every second so every sync cycle has work.
The daemon (``python -m sync.cli ... daemon``) runs as a subprocess with
``sync_every = "2s"``, write-back on, and the weekly digest set to fire about a
minute in. Its RSS is sampled every second from ``/proc/<pid>/status``; at the
end it gets SIGTERM and must exit 0 within a few seconds.

Why: a daemon that leaks a few MB per cycle, or piles up error lines, looks fine
in a one-shot test and falls over after a week. It prints figures; it asserts
nothing about timings.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HELPDESKS = ("zendesk", "freshdesk", "intercom")


# -- the simulator process ------------------------------------------------------------------------------
def _toucher(sims: dict[str, Any], ids: list[int], stop: threading.Event, counts: Counter[str]) -> None:
    """Every second, one edit per helpdesk: a fresh ``updated_at`` the next incremental sync must pick up."""
    rng = random.Random(11)
    while not stop.wait(1.0):
        for kind, sim in sims.items():
            tid = rng.choice(ids)
            try:
                sim.touch(tid)
                counts[f"{kind} ok"] += 1
            except Exception:  # noqa: BLE001 - a deleted/hidden ticket: count it, keep touching
                counts[f"{kind} failed"] += 1


def _serve(tickets: int, seed: int, conn: Connection) -> None:
    """Child process: build the world and the four simulators, serve them, answer 'stats'/'stop'."""
    from connectors.sim.base import SimServer
    from connectors.sim.world import generate_world
    from sync.simulators import SIM_SLACK_WEBHOOK, build_simulator

    world = generate_world(seed=seed, tickets=tickets)
    ids = [t.id for t in world.tickets]
    sims: dict[str, Any] = {}
    servers: list[SimServer] = []
    sources: list[dict[str, Any]] = []
    for kind in HELPDESKS:
        sim, source = build_simulator(kind, world, speedup=1000)
        server = SimServer(sim, 0).start()
        servers.append(server)
        sims[kind] = sim
        sources.append({"name": f"soak-{kind}", **source, "base_url": server.url})
    slack, _ = build_simulator("slack", None)
    slack_server = SimServer(slack, 0).start()
    servers.append(slack_server)
    stop = threading.Event()
    touches: Counter[str] = Counter()
    threading.Thread(target=_toucher, args=(sims, ids, stop, touches), daemon=True).start()
    conn.send({"sources": sources, "webhook_url": slack_server.url + SIM_SLACK_WEBHOOK})
    while True:
        command = conn.recv()
        if command == "stats":
            stats: dict[str, Any] = {"touches": dict(touches), "slack_messages": len(slack.messages)}
            for kind, sim in sims.items():
                with sim.lock:
                    stats[kind] = {"requests": sum(sim.served.values()), "statuses": dict(sim.statuses)}
            conn.send(stats)
        elif command == "stop":
            stop.set()
            for server in servers:
                server.stop()
            conn.send("stopped")
            return


# -- config -----------------------------------------------------------------------------------------------
def _toml_value(value: Any) -> str:
    return json.dumps(value)  # a JSON string/number/bool is a valid TOML basic value


def write_config(path: Path, sources: list[dict[str, Any]], webhook_url: str, digest_at: datetime) -> None:
    """A config pointing at the simulators; the digest fires at ``digest_at`` (UTC, minute precision)."""
    day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[digest_at.weekday()]
    lines = ['[kpi]', 'timezone = "UTC"', '',
             '[schedule]', 'sync_every = "2s"', f'digest = "{day} {digest_at:%H:%M}"', 'misfire_grace = "1m"', '',
             '[writeback]', 'enabled = true', '',
             '[slack]', f'webhook_url = {_toml_value(webhook_url)}', '']
    for source in sources:
        lines.append("[[sources]]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in source.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


# -- measuring --------------------------------------------------------------------------------------------
def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def slope_per_minute(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) in MB per minute; 0 with fewer than two samples."""
    if len(samples) < 2:
        return 0.0
    xs, ys = [s[0] for s in samples], [s[1] for s in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return 0.0 if var == 0 else 60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


def db_figures(db: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    conn = sqlite3.connect(db)
    try:
        out["streams"] = conn.execute("SELECT source, stream, pages_total, errors_total, rows_total, status, "
                                      "last_error FROM sync_state ORDER BY source, stream").fetchall()
        out["outbox"] = dict(conn.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall())
        out["tickets"] = dict(conn.execute("SELECT source, COUNT(*) FROM tickets GROUP BY source").fetchall())
    except sqlite3.Error as exc:
        out["error"] = str(exc)
    finally:
        conn.close()
    return out


def scan_log(path: Path) -> tuple[Counter[str], list[str], int]:
    """(lines per level, the first error messages, sync-completed lines)."""
    levels: Counter[str] = Counter()
    errors: list[str] = []
    syncs = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            levels["non-json"] += 1
            if len(errors) < 5:
                errors.append(f"non-json line: {line[:160]}")
            continue
        level = str(rec.get("level", "?"))
        levels[level] += 1
        msg = str(rec.get("msg", ""))
        if level in ("error", "critical") and len(errors) < 5:
            errors.append(f"{level}: {msg[:200]}")
        if msg.startswith("source ") and " rows in " in msg:
            syncs += 1
    return levels, errors, syncs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=90.0, help="how long the daemon runs")
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (config, db, log)")
    args = parser.parse_args()

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    sim_proc = ctx.Process(target=_serve, args=(args.tickets, args.seed, child), daemon=True, name="soak-sims")
    started = time.perf_counter()
    sim_proc.start()
    info = parent.recv()
    print(f"simulators up in {time.perf_counter() - started:.1f}s ({args.tickets:,} tickets each)")

    tmp = Path(tempfile.mkdtemp(prefix="deskpulse-soak-"))
    cfg, db, log_path = tmp / "deskpulse.toml", tmp / "soak.db", tmp / "daemon.log"
    digest_at = (datetime.now(UTC) + timedelta(seconds=75)).replace(second=0, microsecond=0)
    write_config(cfg, info["sources"], info["webhook_url"], digest_at)
    cmd = [sys.executable, "-m", "sync.cli", "--config", str(cfg), "--db", str(db), "--log-format", "json", "-v",
           "daemon"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    samples: list[tuple[float, float]] = []
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT, env=env)
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < args.seconds and proc.poll() is None:
                time.sleep(1.0)  # first sample after a second: before exec, /proc shows the forking stub
                value = rss_mb(proc.pid)
                if value is not None:
                    samples.append((time.monotonic() - t0, value))
            died_early = proc.poll() is not None
            stop_sent = time.monotonic()
            if not died_early:
                proc.send_signal(signal.SIGTERM)
            try:
                code: int | None = proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                code = None
            stop_latency = time.monotonic() - stop_sent
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    sim_stats = None
    try:
        parent.send("stats")
        sim_stats = parent.recv()
        parent.send("stop")
        parent.recv()
    except (EOFError, OSError):
        pass
    sim_proc.join(10)

    levels, first_errors, syncs = scan_log(log_path)
    figures = db_figures(db)
    ran = samples[-1][0] if samples else 0.0
    rss = [mb for _, mb in samples]
    second_half = [s for s in samples if s[0] >= ran / 2]
    print(f"\ndaemon ran {ran:.0f}s; RSS samples: {len(samples)}")
    if rss:
        print(f"  RSS MB: first {rss[0]:.1f}  median {statistics.median(rss):.1f}  max {max(rss):.1f}  "
              f"last {rss[-1]:.1f}")
        print(f"  RSS slope (second half, linear fit): {slope_per_minute(second_half):+.2f} MB/min; "
              f"whole run: {slope_per_minute(samples):+.2f} MB/min")
        marks = [samples[min(len(samples) - 1, int(i * len(samples) / 6))] for i in range(6)] + [samples[-1]]
        print("  over time: " + ", ".join(f"{t:.0f}s={mb:.1f}" for t, mb in marks))
    print(f"\nsync cycles completed (log 'source X: N rows' lines): {syncs} "
          f"(~{syncs / len(HELPDESKS):.1f} per source)")
    print(f"log lines by level: {dict(levels)} (non-json: lines a non-deskpulse logger wrote around the JSON "
          f"handler)")
    print(f"error lines (level error/critical): {levels['error'] + levels['critical']}")
    for msg in first_errors:
        print(f"  {msg}")
    streams = figures.get("streams", [])
    pages = sum(r[2] or 0 for r in streams)
    stream_errors = sum(r[3] or 0 for r in streams)
    print(f"sync_state: {len(streams)} streams, pages_total {pages}, errors_total {stream_errors}")
    for row in streams:
        if row[3] or row[5] not in (None, "ok", "idle", "done"):
            print(f"  {row[0]}/{row[1]}: errors {row[3]}, status {row[5]}, last_error {str(row[6])[:120]!r}")
    print(f"tickets stored: {figures.get('tickets')}")
    print(f"outbox by status: {figures.get('outbox')}")
    if "error" in figures:
        print(f"db read error: {figures['error']}")
    if sim_stats is not None:
        print(f"slack messages posted (digest at {digest_at:%a %H:%M} UTC): {sim_stats['slack_messages']}")
        print(f"sim touches: {sim_stats['touches']}")
        for kind in HELPDESKS:
            print(f"  {kind}: {sim_stats[kind]['requests']} requests, statuses {sim_stats[kind]['statuses']}")
    if died_early:
        print(f"\ndaemon DIED before SIGTERM with exit code {code}")
    else:
        print(f"\nSIGTERM -> exit code {code} after {stop_latency:.2f}s"
              + ("" if code == 0 and stop_latency < 5 else "  <-- NOT a clean stop"))
    if args.keep:
        print(f"kept: {tmp}")
    else:
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()


if __name__ == "__main__":
    main()
