"""Steady state of the served monitor: CPU per check, storage per check, peak RSS, missed checks.

Starts the target (own process), a Prefect server (with the settings `serve` gives its own) and
`alerting serve` (the default continuous mode, or --runner prefect: a process per flow run), lets it
run for --cycles cycles at --interval, and reads /proc for every process. Also counts what one
cycle costs Prefect: API calls (the server's access log), events, log lines and state rows.

    .venv/bin/python bench/steady.py --monitors 1000 --cycles 10 --interval 30
    .venv/bin/python bench/steady.py --monitors 1000,5000,10000 --cycles 4   # the issue's three sizes, one table
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    WaitTimeout,
    cpu_seconds,
    process_tree,
    rss_mb,
    spawn,
    start_prefect_server,
    start_target,
    stop,
    wait_for,
    write_config,
)

ALERTING = str(Path(sys.executable).parent / "alerting")


class Sampler(threading.Thread):
    """Peak RSS per process role, sampled every 0.25 s."""

    def __init__(self, roots: dict[str, int]):
        super().__init__(daemon=True)
        self.roots, self.running = roots, True
        self.peaks: dict[str, float] = {}

    def run(self) -> None:
        while self.running:
            for role, pid in self.roots.items():
                for i, p in enumerate(process_tree(pid)):
                    key = role if i == 0 else f"{role} child"
                    self.peaks[key] = max(self.peaks.get(key, 0.0), rss_mb(p))
            time.sleep(0.25)


def tree_cpu(pid: int) -> float:
    return sum(cpu_seconds(p) for p in process_tree(pid))


def checks_in_store(db: Path) -> tuple[int, int]:
    """(history rows, monitors) in the state store."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("select count(*) from check_history").fetchone()[0]
        monitors = conn.execute("select count(*) from monitor_state").fetchone()[0]
    return rows, monitors


def checks_started(db: Path, start: int, end: int) -> int:
    """Checks whose start (the history's ``ts``, whole seconds) is in ``[start, end)``: each monitor has
    exactly one slot per interval in such a window, whatever its phase. Read once the window is over
    and the serving process has written what it buffers (passes of monitors known UP wait up to 2 s)."""
    with sqlite3.connect(db) as conn:
        return conn.execute("select count(*) from check_history where ts >= ? and ts < ?", (start, end)).fetchone()[0]


def longest_gap(db: Path, start: int, end: int) -> int:
    """The longest time between two checks of one monitor in ``[start, end)`` (whole seconds): the
    served monitor's worst cycle time. At an interval of 30 s, 30 (+-1 for the rounding) means every
    monitor was checked on time."""
    worst, last = 0, dict[int, int]()
    with sqlite3.connect(db) as conn:
        for monitor, ts in conn.execute("select monitor_id, ts from check_history where ts >= ? and ts < ? "
                                        "order by monitor_id, ts", (start, end)):
            if monitor in last:
                worst = max(worst, ts - last[monitor])
            last[monitor] = ts
    return worst


def db_bytes(*paths: Path) -> int:
    """Bytes used by SQLite databases, after checkpointing their write-ahead logs into them (a WAL
    file is a journal that gets recycled, not growth)."""
    total = 0
    for path in paths:
        if not path.exists():
            continue
        with sqlite3.connect(path, timeout=30) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            used = conn.execute("PRAGMA page_count").fetchone()[0] - conn.execute("PRAGMA freelist_count").fetchone()[0]
        total += used * page_size
    return total


def finished_runs(api: str) -> int:
    import json
    import urllib.request

    body = json.dumps({"flow_runs": {"state": {"type": {"any_": ["COMPLETED", "FAILED", "CRASHED"]}}}}).encode()
    req = urllib.request.Request(f"{api}/flow_runs/count", data=body, headers={"Content-Type": "application/json"})
    return int(urllib.request.urlopen(req, timeout=10).read())


def access_lines(log: Path) -> int:
    try:
        return sum(1 for line in log.read_text(errors="replace").splitlines() if "uvicorn.access" in line)
    except OSError:
        return 0


def prefect_rows(db: Path) -> dict[str, int]:
    """Rows the Prefect database holds per kind (events, logs, state changes, task runs, artifacts)."""
    tables = {"events": "events", "log lines": "log", "flow run states": "flow_run_state",
              "task runs": "task_run", "artifacts": "artifact"}
    out = {}
    with sqlite3.connect(db, timeout=30) as conn:
        for label, table in tables.items():
            try:
                out[label] = conn.execute(f"select count(*) from {table}").fetchone()[0]
            except sqlite3.Error:
                out[label] = 0
    return out


def measure(args: argparse.Namespace, monitors: int) -> dict:
    """One served monitor of ``monitors`` monitors, from its own Prefect server up; prints its figures
    and returns them for the summary."""
    from flows.serve import SERVER_SETTINGS

    tmp = Path(tempfile.mkdtemp(prefix="alerting-steady-"))
    target, ports = start_target(4, args.latency)
    # INFO: the server's access log counts the API calls (its own cost is in the figures)
    server, api = start_prefect_server(tmp / "prefect", {**SERVER_SETTINGS, "PREFECT_SERVER_LOGGING_LEVEL": "INFO"})
    server_log = tmp / "prefect" / "server.log"
    config = write_config(tmp / "monitors.yaml", monitors, ports, 64)
    env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_HOME": str(tmp / "prefect"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "ALERTING_APPRISE_PACING": "off",
           "PREFECT_LOGGING_LEVEL": "WARNING"}
    serve = spawn(
        [ALERTING, "serve", "-c", str(config), "--interval", f"{args.interval}s", "--name", "steady",
         "--runner", args.runner],
        env=env, log=tmp / "serve.log",
    )
    sampler = Sampler({"prefect server": server.pid, "alerting serve": serve.pid})
    sampler.start()
    store_db = tmp / ".alerting" / "state.db"
    try:
        # warm-up: wait for the first finished run, then measure from there
        wait_for(lambda: finished_runs(api) >= 1, 300, interval=1, what="the first finished run")
        runs0, cpu_srv0, cpu_mon0 = finished_runs(api), tree_cpu(server.pid), tree_cpu(serve.pid)
        store0 = checks_in_store(store_db)[0]
        dbs = (tmp / "prefect" / "prefect.db", store_db)
        bytes0 = db_bytes(*dbs)
        calls0, rows0 = access_lines(server_log), prefect_rows(dbs[0])
        start, window_start = time.monotonic(), int(time.time()) + 1
        time.sleep(args.cycles * args.interval)  # the measurement window itself
        elapsed = time.monotonic() - start
        # the run due at the end of the window may still be checking: give it up to 60 s to finish
        try:
            wait_for(lambda: finished_runs(api) - runs0 >= int(elapsed // args.interval), 60, interval=0.5)
        except WaitTimeout:
            pass  # a run that did not finish counts as missed checks below
        runs = finished_runs(api) - runs0
        cpu_srv, cpu_mon = tree_cpu(server.pid) - cpu_srv0, tree_cpu(serve.pid) - cpu_mon0
        checks = checks_in_store(store_db)[0] - store0  # CPU and storage are per check written in the window
        window_end = window_start + int(elapsed // args.interval) * args.interval
        wait_for(lambda: time.time() > window_end + 5, 30, interval=0.5)  # the buffered passes are written
        started = checks_started(store_db, window_start, window_end)
        gap = longest_gap(store_db, window_start, window_end)
        grown = db_bytes(*dbs) - bytes0
        calls = access_lines(server_log) - calls0
        rows = {k: v - rows0.get(k, 0) for k, v in prefect_rows(dbs[0]).items()}
    finally:
        sampler.running = False
        stop(serve)
        stop(server)
        stop(target)
    expected = int(elapsed // args.interval) * monitors
    mode = ("continuous: checks in the serving process, runs report" if args.runner == "continuous"
            else "Prefect runner, a process per run")
    print(f"served monitor ({mode}), {monitors} monitors every {args.interval}s, {elapsed:.0f}s measured "
          f"({runs} flow runs finished)")
    print(f"  checks started in the window {started:,} / due {expected:,}  ->  missed {max(0, expected - started):,}; "
          f"longest time between two checks of one monitor {gap} s")
    figures: dict = {"monitors": monitors, "due": expected, "started": started, "checks": checks, "gap": gap,
               "cpu server": cpu_srv, "cpu serving": cpu_mon, "bytes": grown}
    if checks:
        print(f"  CPU per check: {(cpu_srv + cpu_mon) / checks * 1000:.2f} ms "
              f"(Prefect server {cpu_srv / checks * 1000:.2f} ms, runner + flow runs {cpu_mon / checks * 1000:.2f} ms)")
        print(f"  storage per check: {grown / checks:.0f} B (Prefect database + state store, {grown / 1e6:.1f} MB)")
    cycles = max(1, int(elapsed // args.interval))
    figures["calls per cycle"] = calls / cycles
    figures["events per cycle"] = rows.get("events", 0) / cycles
    print(f"  per cycle: {calls / cycles:.0f} API calls, " + ", ".join(f"{v / cycles:.1f} {k}" for k, v in rows.items()))
    for role, peak in sorted(sampler.peaks.items()):
        print(f"  peak RSS {role}: {peak:.0f} MB")
    figures["peak rss"] = dict(sampler.peaks)
    return figures


def summary(args: argparse.Namespace, results: list[dict]) -> None:
    """One table for every size measured in this run (the figures the README's Performance shows)."""
    print(f"\nsummary: {args.runner} mode, every {args.interval}s, {args.cycles} cycles each")
    print("| monitors | CPU per check (server + serving) | storage per check | started / due (missed) "
          "| longest gap | API calls per cycle | events per cycle | peak RSS serving; server |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        checks = max(1, r["checks"])
        total = (r["cpu server"] + r["cpu serving"]) / checks * 1000
        rss = r["peak rss"]
        print(f"| {r['monitors']:,} | {total:.2f} ms ({r['cpu server'] / checks * 1000:.2f} + "
              f"{r['cpu serving'] / checks * 1000:.2f}) | {r['bytes'] / checks:.0f} B | {r['started']:,} / {r['due']:,} "
              f"({max(0, r['due'] - r['started']):,}) | {r['gap']} s | {r['calls per cycle']:.0f} | {r['events per cycle']:.1f} | "
              f"{rss.get('alerting serve', 0):.0f} MB; {rss.get('prefect server', 0):.0f} MB |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--monitors", default="1000",
                        help="how many monitors; several, comma-separated, measure one after another "
                             "(1000,5000,10000) and end with one summary table")
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--interval", type=int, default=30)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--runner", default="continuous", choices=["continuous", "prefect"])
    args = parser.parse_args()
    sizes = [int(n.replace("_", "")) for n in args.monitors.split(",") if n.strip()]
    results = [measure(args, n) for n in sizes]
    if len(results) > 1:
        summary(args, results)


if __name__ == "__main__":
    main()
