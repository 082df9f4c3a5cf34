"""Wall time of `alerting check` and `alerting run` on this machine, and of one in-process cycle.

Prints figures; asserts nothing. Usage: .venv/bin/python bench/check_speed.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from toolkit import PrefectServer, Target

ALERTING = str(Path(sys.executable).parent / "alerting")


def timed(cmd: list[str], env: dict[str, str], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return times


def show(label: str, times: list[float]) -> None:
    print(f"{label:<58} median {statistics.median(times):6.2f} s   min {min(times):6.2f} s   (n={len(times)})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    target = Target()
    url = target.route("/ok", body=b"PlayStation")
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)

    show("alerting check URL (process start to exit)", timed([ALERTING, "check", url], env, args.repeat))

    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "monitors.yaml"
        config.write_text(
            "monitors:\n" + "".join(f"  - {{name: svc{i}, url: '{url}'}}\n" for i in range(5))
        )
        show(
            "alerting run, 5 monitors, ephemeral Prefect server",
            timed([ALERTING, "run", "-c", str(config)], {**env, "PREFECT_HOME": f"{tmp}/home-eph"}, max(2, args.repeat // 2)),
        )
        with PrefectServer(home=Path(tmp) / "home") as server:
            api_env = {**env, "PREFECT_HOME": str(server.home), "PREFECT_API_URL": server.api_url}
            show("alerting run, 5 monitors, running local Prefect server", timed([ALERTING, "run", "-c", str(config)], api_env, args.repeat))
            for n in (100, 1000):
                big = Path(tmp) / f"m{n}.yaml"
                big.write_text(
                    "concurrency: 64\nmonitors:\n"
                    + "".join(f"  - {{name: svc{i}, url: '{target.url(f'/p{i}')}'}}\n" for i in range(n))
                )
                for i in range(n):
                    target.route(f"/p{i}")
                show(f"alerting run, {n} monitors, running local Prefect server", timed([ALERTING, "run", "-c", str(big)], api_env, 2))
    target.close()


if __name__ == "__main__":
    main()
