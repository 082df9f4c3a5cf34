"""`alerting status` with 30 days of history for 1,000 monitors checked every 30 s (synthetic fill).

The status view reads the monitor states and the hourly rollup (30 d x 24 h x 1,000 rows), never
the raw check rows; the fill writes the full rollup and the last day of raw rows (2.9 M), which is
what the status query could trip over. Prints figures; asserts nothing.

    .venv/bin/python bench/status_speed.py [--monitors 1000] [--days 30]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ALERTING = str(Path(sys.executable).parent / "alerting")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--monitors", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--raw-days", type=float, default=1.0)
    args = parser.parse_args()

    from alerting import latency
    from alerting.config import load_config
    from alerting.store import Store

    tmp = Path(tempfile.mkdtemp(prefix="alerting-status-"))
    config = tmp / "monitors.yaml"
    config.write_text("monitors:\n" + "".join(
        f"  - {{name: svc{i:04d}, url: 'http://127.0.0.1:9/{i}'}}\n" for i in range(args.monitors)))
    db = tmp / ".alerting" / "state.db"
    Store(load_config(config).resolved_state_url()).close()  # schema, as the tool creates it

    now = int(time.time())
    start = time.perf_counter()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executemany(
        "INSERT INTO monitor_state (monitor, status, since, consecutive_failures, consecutive_successes,"
        " notified_down, changes, flapping, updated_at) VALUES (?, 'UP', ?, 0, 5, 0, '[]', 0, ?)",
        [(f"svc{i:04d}", now - 86400 * args.days, now - 5) for i in range(args.monitors)],
    )
    rng = random.Random(7)
    hours = range(now // 3600 - 24 * args.days, now // 3600 + 1)
    hist = latency.dump({latency.bucket(20): 100, latency.bucket(25): 15, latency.bucket(80): 5})
    conn.executemany(
        "INSERT INTO check_rollup (monitor_id, hour, checks, ups, latency_hist) VALUES (?, ?, 120, ?, ?)",
        ((m, h, 120 - (rng.random() < 0.01), hist) for m in range(1, args.monitors + 1) for h in hours),
    )
    raw_checks = int(args.raw_days * 86400 / 30)
    conn.executemany(
        "INSERT INTO check_history (monitor_id, ts, ok, status, latency_ms, error) VALUES (?, ?, 1, 200, ?, NULL)",
        ((m, now - 30 * k, 20 + k % 7) for k in range(raw_checks) for m in range(1, args.monitors + 1)),
    )
    conn.commit()
    conn.close()
    fill = time.perf_counter() - start
    size = sum(p.stat().st_size for p in db.parent.iterdir())
    print(f"filled {args.monitors} monitors: {args.days} d of hourly rollup, {raw_checks * args.monitors:,} raw "
          f"checks ({args.raw_days:g} d) in {fill:.0f} s; store {size / 1e6:.0f} MB")

    times = []
    for _ in range(5):
        t = time.perf_counter()
        proc = subprocess.run([ALERTING, "status", "-c", str(config), "--json"], capture_output=True, text=True)
        times.append(time.perf_counter() - t)
        assert proc.returncode == 0, proc.stderr[-500:]
    print(f"alerting status --json (whole command, process start included): median {statistics.median(times):.2f} s, "
          f"min {min(times):.2f} s")
    from alerting.models import utcnow
    from alerting.status_view import status_rows

    cfg = load_config(config)
    store = Store(cfg.resolved_state_url())
    t = time.perf_counter()
    rows = status_rows(store, cfg, utcnow())
    print(f"status query alone (uptime 24h/7d/30d and p50/p95 for {len(rows)} monitors): {time.perf_counter() - t:.2f} s")
    store.close()


if __name__ == "__main__":
    main()
