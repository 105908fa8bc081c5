"""Memory benchmark: peak RSS of a real ``deskpulse sync`` as the account grows (target: flat, <= 150 MB).

Run on demand: ``python3 bench/bench_rss.py [--sizes 100000,1000000] [--kind zendesk]
[--messages-up-to 100000]``. The 1M run takes several minutes (world generation in the simulator
process, then the sync itself). It prints figures and asserts nothing.

Per size: the simulator runs in another process (unthrottled; messages on up to ``--messages-up-to``
tickets, off above, to keep a 1M-ticket world tractable); a config file points one source at it; the
real CLI (the ``deskpulse`` console script, else ``python -m sync.cli``) runs ``sync`` into a fresh store
as a child process. Its peak RSS comes from ``os.wait4`` (the kernel's ``ru_maxrss`` for exactly that
child), and ``/proc/<pid>/status`` is sampled while it runs to show whether memory stays flat.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import SimProcess  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TARGET_MB = 150.0


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(str(value))  # a JSON string of plain text is a valid TOML basic string


def write_config(path: Path, db: Path, source: dict[str, Any]) -> None:
    lines = ["[store]", f"path = {toml_value(str(db))}", "", "[[sources]]"]
    lines += [f"{key} = {toml_value(value)}" for key, value in source.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def cli() -> list[str]:
    script = shutil.which("deskpulse")
    return [script] if script else [sys.executable, "-m", "sync.cli"]


def vm_kb(pid: int, key: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


@dataclass
class RssRun:
    tickets: int
    messages: bool
    seconds: float
    exit_code: int
    peak_mb: float
    samples: list[tuple[float, float]] = field(default_factory=list)  # (seconds, RSS MB)
    rows: dict[str, int] = field(default_factory=dict)
    generate_s: float = 0.0


def run_size(kind: str, tickets: int, messages: bool, workdir: Path, interval: float) -> RssRun:
    db, cfg, log = workdir / f"rss-{tickets}.db", workdir / f"rss-{tickets}.toml", workdir / f"rss-{tickets}.log"
    with SimProcess.start(kind, tickets, messages=messages) as sim:
        write_config(cfg, db, sim.source)
        cmd = [*cli(), "--config", str(cfg), "--db", str(db), "sync"]
        started = time.monotonic()
        with open(log, "wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
            samples: list[tuple[float, float]] = []
            while True:
                done, status, usage = os.wait4(proc.pid, os.WNOHANG)  # rusage of exactly this child
                if done:
                    proc.returncode = os.waitstatus_to_exitcode(status)
                    break
                rss = vm_kb(proc.pid, "VmRSS")
                if rss is not None:
                    samples.append((time.monotonic() - started, rss / 1024))
                time.sleep(interval)
        seconds = time.monotonic() - started
    conn = sqlite3.connect(db)
    try:
        rows = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("tickets", "messages", "ticket_events", "people", "organizations", "ratings")}
    finally:
        conn.close()
    code = proc.returncode
    if code != 0:
        print(f"  the sync exited with {code}; its output:\n" + log.read_text(errors="replace")[-3000:])
    return RssRun(tickets, messages, seconds, code, usage.ru_maxrss / 1024, samples, rows, sim.generate_s)


def report(run: RssRun) -> None:
    verdict = "within" if run.peak_mb <= TARGET_MB else "ABOVE"
    print(f"  {run.tickets:>9,} tickets (messages {'on' if run.messages else 'off'}): peak RSS {run.peak_mb:6.1f} MB "
          f"({verdict} {TARGET_MB:.0f} MB), sync {run.seconds:,.0f} s, {run.tickets / run.seconds:,.0f} tickets/s, "
          f"exit {run.exit_code}; world generated in {run.generate_s:.0f} s")
    print("    stored: " + ", ".join(f"{t} {n:,}" for t, n in run.rows.items()))
    if run.samples:
        points = [run.samples[min(len(run.samples) - 1, int(len(run.samples) * q))] for q in (0.1, 0.25, 0.5, 0.75, 1)]
        print("    RSS over the run: " + ", ".join(f"{t:,.0f} s {mb:.0f} MB" for t, mb in points))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated ticket counts")
    parser.add_argument("--kind", default="zendesk")
    parser.add_argument("--messages-up-to", type=int, default=100_000,
                        help="worlds above this many tickets are generated without messages")
    parser.add_argument("--interval", type=float, default=0.5, help="RSS sampling interval, seconds")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="deskpulse-rss-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        print(f"peak RSS of `{' '.join(cli())} sync` against the {args.kind} simulator (another process)")
        for size in [int(s) for s in args.sizes.split(",") if s.strip()]:
            run = run_size(args.kind, size, size <= args.messages_up_to, workdir, args.interval)
            report(run)
            results.append(run)
    if len(results) > 1:
        growth = results[-1].peak_mb - results[0].peak_mb
        print(f"  growth from {results[0].tickets:,} to {results[-1].tickets:,} tickets: {growth:+.1f} MB")


if __name__ == "__main__":
    main()
