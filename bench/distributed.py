"""The distributed mode at steady state: CPU per check with every process counted, failover, and what a
new worker costs.

Starts the target (own process, not counted), PostgreSQL (the state store and the Prefect server's own
database), a Prefect server on it, the scheduler (`alerting serve` with `locations:` in the config) and
--workers task workers (`alerting worker --location ...`, spread over --locations locations), lets it
run --cycles cycles at --interval, and reads /proc for every process. Then it kills one worker with
SIGKILL and reports the longest gap between two checks of any monitor around the kill (failover), and
starts one more worker and reports its start time, CPU and RSS (the cost of a new worker).

    .venv/bin/python bench/distributed.py --monitors 1000 --cycles 4 --interval 30

A "check" is one monitor checked from one location (with two locations, each monitor is two checks
per cycle), which is what compares with the single-process mode (bench/steady.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
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

from toolkit import Postgres, kill

ALERTING = str(Path(sys.executable).parent / "alerting")


def tree_cpu(pid: int) -> float:
    return sum(cpu_seconds(p) for p in process_tree(pid))


def tree_rss(pid: int) -> float:
    return sum(rss_mb(p) for p in process_tree(pid))


def database(pg: Postgres, name: str) -> str:
    from sqlalchemy import create_engine, text

    admin = create_engine(pg.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return pg.url.rsplit("/", 1)[0] + f"/{name}"


def history(store_url: str, since: float = 0) -> list[tuple[str, int]]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import ProgrammingError

    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT s.monitor, h.ts FROM check_history h JOIN monitor_state s "
                                     "ON s.id = h.monitor_id WHERE h.ts >= :since"), {"since": int(since)}).all()
    except ProgrammingError:  # the scheduler has not made the schema yet
        return []
    finally:
        engine.dispose()
    return [(m, ts) for m, ts in rows]


def api_calls(log: Path) -> Counter:
    """API calls per method and path (ids folded) in the server's access log."""
    import re

    out: Counter = Counter()
    for line in log.read_text(errors="replace").splitlines():
        if "uvicorn.access" in line and (m := re.search(r'"(GET|POST|PATCH|PUT|DELETE) ([^ ?"]+)', line)):
            out[f"{m.group(1)} {re.sub(r'[0-9a-f-]{36}', '{id}', m.group(2))}"] += 1
    return out


def postmaster_pid(pg: Postgres) -> int:
    return int((pg.data / "postmaster.pid").read_text().split()[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--monitors", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=4)
    parser.add_argument("--interval", type=int, default=30)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--locations", type=int, default=1)
    args = parser.parse_args()
    from flows.serve import SERVER_SETTINGS

    tmp = Path(tempfile.mkdtemp(prefix="alerting-distributed-"))
    target, ports = start_target(4, args.latency)
    pg = Postgres()
    procs = []
    server = None
    try:
        store_url = database(pg, "alerting")
        prefect_db = database(pg, "prefect").replace("postgresql+psycopg", "postgresql+asyncpg")
        server, api = start_prefect_server(tmp / "prefect", {**SERVER_SETTINGS, "PREFECT_SERVER_LOGGING_LEVEL": "INFO",
                                                               "PREFECT_API_DATABASE_CONNECTION_URL": prefect_db})
        locations = [f"loc{i + 1}" for i in range(args.locations)]
        config = write_config(tmp / "monitors.yaml", args.monitors, ports, 64,
                              extra=f"state_url: '{store_url}'\nlocations: [{', '.join(locations)}]")
        env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_HOME": str(tmp / "prefect"),
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "ALERTING_APPRISE_PACING": "off",
               "PREFECT_LOGGING_LEVEL": "WARNING"}
        serve = spawn([ALERTING, "serve", "-c", str(config), "--interval", f"{args.interval}s", "--name", "dist"],
                      env=env, log=tmp / "serve.log")
        procs.append(serve)
        workers = []
        for i in range(args.workers):
            loc = locations[i % len(locations)]
            workers.append(spawn([ALERTING, "worker", "-c", str(config), "--location", loc], env=env,
                                 log=tmp / f"worker-{i}.log"))
        procs += workers
        roles = {"prefect server": server.pid, "scheduler": serve.pid, "postgres": postmaster_pid(pg),
                 **{f"worker {i + 1}": w.pid for i, w in enumerate(workers)}}
        # warm-up: every monitor checked once from each location, then one more interval
        wait_for(lambda: len(history(store_url)) >= args.monitors, 240, interval=2, what="a first round")
        time.sleep(args.interval)  # warm-up: let the first (paced) round settle
        cpu0 = {role: tree_cpu(pid) for role, pid in roles.items()}
        calls0 = api_calls(tmp / "prefect" / "server.log")
        t0 = time.time()
        start = time.monotonic()
        peak = {role: 0.0 for role in roles}
        while time.monotonic() - start < args.cycles * args.interval:  # the measurement window
            for role, pid in roles.items():
                peak[role] = max(peak[role], tree_rss(pid))
            time.sleep(1)
        elapsed = time.monotonic() - start
        t_end = time.time()
        cpu = {role: tree_cpu(pid) - cpu0[role] for role, pid in roles.items()}
        calls = api_calls(tmp / "prefect" / "server.log") - calls0

        def made_in_window() -> int:  # a history row is one monitor-cycle (all its locations)
            return sum(1 for _, ts in history(store_url, t0) if ts < t_end)

        # a round still out at the window's end is recorded up to 0.8 interval later: count its
        # checks too (with first slots in groups, one round can be a third of the monitors)
        made, before = made_in_window(), -1
        deadline = time.monotonic() + args.interval
        while made != before and time.monotonic() < deadline:  # until a look finds nothing new
            time.sleep(3)
            before, made = made, made_in_window()
        checks = made * args.locations
        expected = int(elapsed // args.interval) * args.monitors * args.locations

        # failover: kill -9 one worker, then two intervals and a half
        victim = workers[0]
        kill(victim)
        killed = time.time()
        time.sleep(2.5 * args.interval)
        last: dict[str, int] = {}
        gaps: list[int] = []
        for monitor, ts in sorted(history(store_url, killed - 2 * args.interval), key=lambda r: r[1]):
            if monitor in last and ts > killed:
                gaps.append(ts - last[monitor])
            last[monitor] = ts
        unchecked = args.monitors - len({m for m, ts in history(store_url, killed + 1)})

        # a new worker: time to subscribe, its CPU and RSS
        t_new = time.monotonic()
        fresh = spawn([ALERTING, "worker", "-c", str(config), "--location", locations[0]],
                      env={**env, "PREFECT_LOGGING_LEVEL": "INFO"}, log=tmp / "worker-new.log")
        procs.append(fresh)
        wait_for(lambda: "Subscribing to runs" in (tmp / "worker-new.log").read_text(errors="replace"), 120,
                 interval=0.1, what="the new worker subscribing")
        ready = time.monotonic() - t_new
        start_cpu, start_rss = tree_cpu(fresh.pid), tree_rss(fresh.pid)
        try:
            wait_for(lambda: (tmp / "worker-new.log").read_text(errors="replace").count("Received task run") >= 1,
                     5 * args.interval, interval=0.5, what="the new worker's first batch")
            first_batch: float | None = time.monotonic() - t_new
        except WaitTimeout:  # few batches per cycle: Prefect gives each to whichever worker asks first
            first_batch = None
    finally:
        for proc in reversed(procs):
            stop(proc)
        if server is not None:
            stop(server)
        pg.stop()
        stop(target)

    total = sum(cpu.values())
    print(f"distributed mode: {args.monitors} monitors every {args.interval}s, {args.workers} workers in "
          f"{args.locations} location(s), {elapsed:.0f}s measured")
    print(f"  checks done {checks:,} / due {expected:,}")
    if checks:
        parts = ", ".join(f"{role} {cpu[role] / checks * 1000:.2f}" for role in roles)
        no_pg = total - cpu["postgres"]
        print(f"  CPU per check: {total / checks * 1000:.2f} ms all processes; {no_pg / checks * 1000:.2f} ms without "
              f"PostgreSQL ({parts} ms)")
    cycles = max(1, int(elapsed // args.interval))
    print(f"  API calls per cycle: {sum(calls.values()) / cycles:.0f} ("
          + ", ".join(f"{path} {n / cycles:.1f}" for path, n in calls.most_common(8)) + ")")
    print("  peak RSS: " + ", ".join(f"{role} {peak[role]:.0f} MB" for role in roles))
    print(f"  failover (kill -9 of one worker): longest gap between two checks of a monitor after it: "
          f"{max(gaps, default=0)} s (interval {args.interval} s); monitors not checked since: {unchecked}")
    got = f"first batch after {first_batch:.1f} s" if first_batch is not None else \
        f"no batch within {5 * args.interval} s"
    print(f"  new worker: subscribed after {ready:.1f} s, {got}; "
          f"{start_cpu:.1f} s CPU to start, {start_rss:.0f} MB RSS")


if __name__ == "__main__":
    main()
