"""Building the status page for 1,000 monitors with 90 days of history (synthetic fill); prints the
build time and the page size (also for 100 monitors). Asserts nothing: the figures go in the README.

The fill writes what a year of serving leaves in the store for the page to read: 90 days of hourly
rollups per monitor (2.16 M rows at 1,000), a few incidents each, a weekly maintenance window, the
monitor states. The build reads only those (never the raw check rows), renders index.html,
status.json and one badge per monitor, and swaps the directory in.

    .venv/bin/python bench/status_page.py [--monitors 1000] [--days 90] [--runs 5]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path


def fill(tmp: Path, monitors: int, days: int, now: int) -> Path:
    from alerting import latency
    from alerting.store import Store

    config = tmp / "monitors.yaml"
    config.write_text(
        "maintenance:\n  - {cron: '0 2 * * SUN', duration: 2h}\n"
        "status_page:\n  out: site\n  title: Example status\n"
        "monitors:\n" + "".join(f"  - {{name: svc{i:04d}, url: 'http://127.0.0.1:9/{i}'}}\n" for i in range(monitors)))
    db = tmp / ".alerting" / "state.db"
    Store(f"sqlite:///{db}").close()  # the schema, as the tool creates it
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    rng = random.Random(7)
    conn.executemany(
        "INSERT INTO monitor_state (monitor, status, since, consecutive_failures, consecutive_successes,"
        " notified_down, changes, flapping, updated_at) VALUES (?, ?, ?, 0, 5, 0, '[]', 0, ?)",
        [(f"svc{i:04d}", "DOWN" if i % 97 == 0 else "UP", now - 86400, now - 5) for i in range(monitors)],
    )
    hours = range(now // 3600 - 24 * days, now // 3600 + 1)
    def hist() -> str:  # a different histogram every hour, as real latencies give
        return latency.dump({latency.bucket(rng.uniform(10, 400)): rng.randint(1, 60) for _ in range(rng.randint(2, 7))})

    conn.executemany(
        "INSERT INTO check_rollup (monitor_id, hour, checks, ups, latency_hist) VALUES (?, ?, 120, ?, ?)",
        ((m, h, 120 - (rng.random() < 0.01) * rng.randint(1, 120), hist())
         for m in range(1, monitors + 1) for h in hours),
    )
    conn.executemany(
        "INSERT INTO incident (monitor_id, started, ended, error, status) VALUES (?, ?, ?, ?, ?)",
        ((m, float(t), float(t + rng.randint(60, 7200)), rng.choice(["timeout", "unexpected_status", "refused"]), 503)
         for m in range(1, monitors + 1) for t in sorted(rng.randint(now - days * 86400, now - 7200) for _ in range(3))),
    )
    conn.commit()
    conn.close()
    return config


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--monitors", type=int, default=1000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from alerting.config import load_config
    from alerting.cycle import open_store
    from alerting.status_page.build import build_site, site_dir

    now = int(time.time())
    for monitors in sorted({100, args.monitors}):
        tmp = Path(tempfile.mkdtemp(prefix="alerting-status-page-"))
        t = time.perf_counter()
        config = fill(tmp, monitors, args.days, now)
        print(f"{monitors} monitors: filled {args.days} days of hourly rollups and incidents in "
              f"{time.perf_counter() - t:.0f} s")
        cfg = load_config(config)
        out = site_dir(cfg)
        assert out is not None
        times = []
        for run in range(args.runs + 1):
            store = open_store(cfg)
            t = time.perf_counter()
            page = build_site(cfg, store, out, datetime.fromtimestamp(now, timezone.utc))
            took = time.perf_counter() - t
            store.close()
            if run == 0:  # this one also fills check_daily for the 90 finished days (once per store)
                print(f"  first build (fills the daily totals of {args.days} days once): {took:.2f} s")
            else:
                times.append(took)
        html = (out / "index.html").stat().st_size
        badges = sum(p.stat().st_size for p in (out / "badges").iterdir())
        print(f"  each later build (store reads, render, {len(page.monitors)} badges, atomic swap): median "
              f"{statistics.median(times):.2f} s, min {min(times):.2f} s over {args.runs} runs")
        print(f"  index.html {html / 1024:.0f} KB, status.json {(out / 'status.json').stat().st_size / 1024:.0f} KB, "
              f"badges {badges / 1024:.0f} KB; banner: {page.overall_text}; {len(page.incidents)} incidents listed")
        shutil.rmtree(tmp, ignore_errors=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
