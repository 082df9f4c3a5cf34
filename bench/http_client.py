"""CPU per HTTP check through ``alerting.check.check``: sequential, and in a 32-thread pool.

The target (bench/target.py, 127.0.0.1, keep-alive) runs in its own process: only the checking
side is counted (``time.process_time()`` of this process). Prints figures; asserts nothing.

    .venv/bin/python bench/http_client.py [--checks 3000] [--threads 32] [--repeat 3]

It runs whatever ``alerting`` is importable: to compare with the ``requests`` path of an older
tree, point PYTHONPATH at it (``build_session`` there stands in for ``HttpClient``):

    PYTHONPATH=/path/to/old/tree .venv/bin/python bench/http_client.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import start_target, stop

import alerting.check as check_module
from alerting.models import MonitorSpec


def make_client(pool_size: int):
    maker = getattr(check_module, "HttpClient", None) or getattr(check_module, "build_session")  # noqa: B009
    return maker(pool_size)


def cpu_per_check(specs: list[MonitorSpec], threads: int) -> tuple[float, float]:
    """(ms of CPU per check, checks per second of wall time); every check must pass."""
    client = make_client(threads)
    try:
        for spec in specs[: min(len(specs), 4 * threads)]:  # open the connections first (keep-alive)
            check_module.check(spec, client)
        cpu, wall = time.process_time(), time.perf_counter()
        if threads == 1:
            results = [check_module.check(spec, client) for spec in specs]
        else:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                results = list(pool.map(lambda s: check_module.check(s, client), specs))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        client.close()
    failed = [r for r in results if not r.ok]
    if failed:
        raise SystemExit(f"{len(failed)} checks failed, e.g. {failed[0].message}")
    return cpu * 1000 / len(specs), len(specs) / wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checks", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    uses = "HttpClient (urllib3)" if hasattr(check_module, "HttpClient") else "requests.Session"
    print(f"alerting from {Path(check_module.__file__).parent.parent}: {uses}")
    proc, ports = start_target(ports=1, latency=0.0)
    try:
        specs = [MonitorSpec(name=f"svc{i}", url=f"http://127.0.0.1:{ports[0]}/svc/{i}", contains="healthy")
                 for i in range(args.checks)]
        for threads in (1, args.threads):
            runs = [cpu_per_check(specs, threads) for _ in range(args.repeat)]
            cpu = [r[0] for r in runs]
            rate = statistics.median(r[1] for r in runs)
            label = "sequential" if threads == 1 else f"{threads} threads"
            print(f"{label:<12} {args.checks} checks x{args.repeat}: CPU per check median {statistics.median(cpu):.3f} ms "
                  f"(min {min(cpu):.3f}, max {max(cpu):.3f}), {rate:,.0f} checks/s")
    finally:
        stop(proc)


if __name__ == "__main__":
    main()
