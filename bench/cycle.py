"""One monitor cycle at 100 / 1,000 / 5,000 monitors, beside the raw floor and the tutorial's way.

A cycle = one real `service-monitor` flow run against a real local Prefect server: checks, policy,
state store, status artifact, rendering. The target is bench/target.py in its own process (4
loopback ports standing for 4 hosts, 20 ms per answer). Prints figures; asserts nothing.

    .venv/bin/python bench/cycle.py [--sizes 100,1000,5000] [--latency 0.02] [--tutorial 100]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_seconds, start_prefect_server, start_target, stop, write_config


def self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def raw_floor(urls: list[str], concurrency: int) -> float:
    """The same requests, concurrent, no Prefect, no store: the floor any monitor pays."""
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_connections=16, pool_maxsize=concurrency))
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda u: session.get(u, timeout=5).status_code, urls))
    return time.perf_counter() - start


def tutorial_way(urls: list[str]) -> float:
    """The tutorial: one Prefect task run per service, one after another, in a flow."""
    import requests
    from prefect import flow, task
    from prefect.states import Failed

    @task
    def check_service(url: str):
        response = requests.get(url, timeout=10)
        if response.status_code != 200:
            return Failed(message=f"HTTP {response.status_code}")

    @flow
    def tutorial_monitor(urls: list[str]):
        for url in urls:
            _ = check_service(url)  # the tutorial ignores the state (that is its weakness)

    start = time.perf_counter()
    tutorial_monitor(urls, return_state=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--tutorial", type=int, default=100, help="monitors run the tutorial's way")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    target, ports = start_target(4, args.latency)
    tmp = Path(tempfile.mkdtemp(prefix="alerting-bench-"))
    server, api = start_prefect_server(tmp / "prefect")
    os.environ.update(PREFECT_API_URL=api, ALERTING_APPRISE_PACING="off", PREFECT_LOGGING_LEVEL="WARNING")
    try:
        from flows.service_monitor import run_once

        run_once(write_config(tmp / "warm.yaml", 10, ports, args.concurrency))  # imports, first flow
        print(f"target: 4 hosts on loopback, {args.latency * 1000:.0f} ms per answer; concurrency {args.concurrency}")
        print(f"{'monitors':>8} {'cycle s':>8} {'checks/s':>9} {'CPU ms/check':>13} {'raw floor s':>12} "
              f"{'x floor':>8} {'tutorial s':>11} {'x ours':>7}")
        tutorial_per_check = None
        if args.tutorial:
            urls = [f"http://127.0.0.1:{ports[i % 4]}/svc/{i}" for i in range(args.tutorial)]
            tutorial_per_check = tutorial_way(urls) / args.tutorial
        for n in sizes:
            config = write_config(tmp / f"m{n}.yaml", n, ports, args.concurrency)
            run_once(config)  # the first run creates the state rows; measure a steady run
            cpu0, srv0 = self_cpu(), cpu_seconds(server.pid)
            start = time.perf_counter()
            state, outcome = run_once(config)
            wall = time.perf_counter() - start
            cpu = (self_cpu() - cpu0) + (cpu_seconds(server.pid) - srv0)
            assert outcome is not None and len(outcome.cycle.results) == n, "not every monitor was checked"
            urls = [f"http://127.0.0.1:{ports[i % 4]}/svc/{i}" for i in range(n)]
            floor = raw_floor(urls, args.concurrency)
            tut = tutorial_per_check * n if tutorial_per_check else float("nan")
            note = "" if n <= args.tutorial else " (extrapolated)"
            print(f"{n:>8} {wall:>8.2f} {n / wall:>9.0f} {cpu / n * 1000:>13.2f} {floor:>12.2f} "
                  f"{wall / floor:>8.2f} {tut:>11.1f} {tut / wall:>7.0f}{note}")
        print("CPU ms/check counts this process (flow, checks, store) and the Prefect server.")
    finally:
        stop(server)
        stop(target)


if __name__ == "__main__":
    main()
