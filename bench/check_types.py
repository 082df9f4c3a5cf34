"""One cycle of 1,000 mixed monitors (http, tcp, dns, tls; 250 each) without Prefect, and the CPU
each check type costs. Targets run in their own processes (bench/target.py for http, 20 ms per
answer; bench/type_targets.py for tcp, tls and dns), so the CPU figures are the monitor's alone.
Prints figures; asserts nothing but that every check passed.

    .venv/bin/python bench/check_types.py [--per-type 250] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH, start_target, stop

from toolkit import spawn


def self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-type", type=int, default=250)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--per-host", type=int, default=16)
    args = parser.parse_args()
    n = args.per_type
    tmp = Path(tempfile.mkdtemp(prefix="alerting-bench-types-"))
    http_target, http_ports = start_target(4, 0.02)
    others = spawn([sys.executable, str(BENCH / "type_targets.py"), "--names", str(n), "--dir", str(tmp)],
                   stdout=subprocess.PIPE, text=True)
    try:
        assert others.stdout is not None
        found = json.loads(others.stdout.readline())
        os.environ["SSL_CERT_FILE"] = found["ca"]  # the TLS target's CA, trusted like a public one

        from alerting.check_pool import check_all
        from alerting.config import parse_config
        from alerting.cycle import run_cycle
        from alerting.store import Store

        lines = [f"state_url: sqlite:///{tmp}/state.db", f"concurrency: {args.concurrency}",
                 f"per_host_concurrency: {args.per_host}", "defaults: {attempts: 2, retry_backoff: 0.2, timeout: 5s}",
                 "monitors:"]
        for i in range(n):
            lines += [
                f"  - {{name: http{i}, url: 'http://127.0.0.1:{http_ports[i % 4]}/svc/{i}'}}",
                f"  - {{name: tcp{i}, url: 'tcp://127.0.0.1:{found['tcp']}'}}",
                f"  - {{name: dns{i}, url: 'dns://svc{i}.bench', resolver: '{found['dns']}', "
                f"expect_values: ['10.0.{i // 256}.{i % 256}']}}",
                f"  - {{name: tls{i}, url: 'tls://127.0.0.1:{found['tls']}'}}",
            ]
        config = parse_config("\n".join(lines) + "\n", str(tmp / "monitors.yaml"))
        assert not config.problems, config.problems[:3]
        by_type: dict[str, list] = {}
        for spec in config.monitors:
            by_type.setdefault(spec.type, []).append(spec)
        check_all([specs[0] for specs in by_type.values()])  # imports, first connections

        print(f"{n} monitors per type; concurrency {args.concurrency}, {args.per_host} per host; "
              "http target 20 ms per answer; every target in its own process")
        print(f"{'type':>6} {'checks':>7} {'wall s':>7} {'checks/s':>9} {'CPU ms/check':>13}")
        for type_name, specs in by_type.items():
            cpu0, start = self_cpu(), time.perf_counter()
            results = check_all(specs, args.concurrency, args.per_host)
            wall, cpu = time.perf_counter() - start, self_cpu() - cpu0
            bad = [r for r in results if not r.ok]
            assert not bad, f"{len(bad)} {type_name} checks failed: {bad[0].message}"
            print(f"{type_name:>6} {len(specs):>7} {wall:>7.2f} {len(specs) / wall:>9.0f} {cpu / len(specs) * 1000:>13.2f}")

        store = Store(config.resolved_state_url())
        try:
            run_cycle(config, store)  # the first cycle makes the state rows; measure a steady one
            cpu0, start = self_cpu(), time.perf_counter()
            report = run_cycle(config, store)
            wall, cpu = time.perf_counter() - start, self_cpu() - cpu0
            assert report.ok and len(report.results) == 4 * n, report.message[:300]
        finally:
            store.close()
        print(f"one cycle of {4 * n} mixed monitors (checks, policy, store; no Prefect): {wall:.2f} s wall, "
              f"{cpu / (4 * n) * 1000:.2f} ms CPU per check")
    finally:
        stop(others)
        stop(http_target)


if __name__ == "__main__":
    main()
