"""From the deciding check to the webhook, and the spacing between one monitor's checks.

Starts the target (own process), a Prefect server (with the settings `serve` gives its own), a
timestamping webhook receiver (in this process) and `alerting serve`. After a warm-up, 10 monitors
are switched to 503 at a known time, then back. The target logs the time of every answer to those
monitors (and to 10 healthy ones); the receiver the time of every POST. Printed:

- DOWN: POST time minus the time of the failing answer that decided it (the last attempt);
- RESOLVED: POST time minus the first 200 after the switch back;
- spacing: time between the first attempts of consecutive checks of the 10 healthy monitors.

    .venv/bin/python bench/alert_latency.py --monitors 1000 [--runner prefect]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import spawn, start_prefect_server, start_target, stop, wait_for

ALERTING = str(Path(sys.executable).parent / "alerting")
FLIPPED = 10


class Hook(ThreadingHTTPServer):
    """Records (epoch time, title) of every POST."""

    def __init__(self) -> None:
        self.posts: list[tuple[float, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                at = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    title = json.loads(body).get("title", "")
                except ValueError:
                    title = ""
                owner.posts.append((at, title))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


def answers(path: Path) -> list[tuple[float, str, int]]:
    out = []
    for line in path.read_text().splitlines():
        at, where, status = line.split()
        out.append((float(at), where, int(status)))
    return out


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def describe(values: list[float]) -> str:
    if not values:
        return "none measured"
    return (f"p50 {pct(values, 0.5):.2f} s, p95 {pct(values, 0.95):.2f} s, max {max(values):.2f} s "
            f"(n={len(values)})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--monitors", type=int, default=1000)
    parser.add_argument("--interval", type=int, default=30)
    parser.add_argument("--runner", default="continuous", choices=["continuous", "prefect"])
    parser.add_argument("--latency", type=float, default=0.02)
    args = parser.parse_args()
    from flows.serve import SERVER_SETTINGS

    tmp = Path(tempfile.mkdtemp(prefix="alerting-latency-"))
    control = tmp / "control"
    control.mkdir()
    flipped = [i * (args.monitors // FLIPPED) for i in range(FLIPPED)]
    healthy = [i + 1 for i in flipped]
    paths = {i: f"/svc/{i}" for i in flipped + healthy}
    (control / "watch").write_text("\n".join(paths.values()) + "\n")
    target, ports = start_target(4, args.latency, control=control)
    server, api = start_prefect_server(tmp / "prefect", extra_env=SERVER_SETTINGS)
    hook = Hook()
    lines = ["concurrency: 64", "storm_threshold: 0  # one message per monitor, as Uptime Kuma sends",
             f"channels: {{hook: 'json://127.0.0.1:{hook.server_port}/hook'}}",
             "defaults: {attempts: 2, retry_backoff: 0.2, timeout: 5s}", "monitors:"]
    for i in range(args.monitors):
        channels = ", channels: [hook]" if i in flipped else ""
        lines.append(f"  - {{name: svc{i:05d}, url: 'http://127.0.0.1:{ports[i % len(ports)]}/svc/{i}'{channels}}}")
    config = tmp / "monitors.yaml"
    config.write_text("\n".join(lines) + "\n")
    env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_HOME": str(tmp / "prefect"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "ALERTING_APPRISE_PACING": "off",
           "PREFECT_LOGGING_LEVEL": "WARNING"}
    serve = spawn([ALERTING, "serve", "-c", str(config), "--interval", f"{args.interval}s", "--name", "latency",
                   "--runner", args.runner], env=env, log=tmp / "serve.log")
    log = control / "answers"
    try:
        wait_for(lambda: log.exists() and len(answers(log)) >= 2 * len(paths), 300, interval=1,
                 what="two checks of every watched monitor")
        time.sleep(args.interval)  # settle into the steady rhythm (the first round of a start is a burst)
        down_at = time.time()
        (control / "down").write_text("\n".join(paths[i] for i in flipped) + "\n")
        wait_for(lambda: sum(t.startswith("DOWN") for _, t in hook.posts) >= FLIPPED, 3 * args.interval + 60,
                 interval=0.5, what="a DOWN for every switched monitor")
        up_at = time.time()
        (control / "down").write_text("")
        wait_for(lambda: sum(t.startswith("RESOLVED") for _, t in hook.posts) >= FLIPPED, 3 * args.interval + 60,
                 interval=0.5, what="a RESOLVED for every switched monitor")
        time.sleep(2 * args.interval)  # more spacing samples
    finally:
        stop(serve)
        stop(server)
        stop(target)
        hook.shutdown()
    seen = answers(log)
    down_lat, up_lat = [], []
    for i in flipped:
        name, path = f"svc{i:05d}", paths[i]
        mine = [(at, status) for at, where, status in seen if where == path]
        for at, title in hook.posts:
            if title == f"DOWN: {name}":
                deciding = max((a for a, s in mine if s == 503 and down_at <= a <= at), default=None)
                if deciding is not None:
                    down_lat.append(at - deciding)
            elif title.startswith(f"RESOLVED: {name}"):
                deciding = min((a for a, s in mine if s == 200 and a >= up_at), default=None)
                if deciding is not None:
                    up_lat.append(at - deciding)
    spacing: list[float] = []
    for i in healthy:
        starts = sorted(at for at, where, _ in seen if where == paths[i])
        spacing += [b - a for a, b in zip(starts, starts[1:], strict=False)]
    print(f"alert latency, `serve --runner {args.runner}`, {args.monitors} monitors every {args.interval}s "
          f"({FLIPPED} switched to 503 and back)")
    print(f"  deciding check -> webhook, DOWN:     {describe(down_lat)}")
    print(f"  deciding check -> webhook, RESOLVED: {describe(up_lat)}")
    if spacing:
        off = [abs(s - args.interval) for s in spacing]
        print(f"  spacing of one monitor's checks: min {min(spacing):.2f} s, median {statistics.median(spacing):.2f} s, "
              f"max {max(spacing):.2f} s; off the interval by at most {max(off):.2f} s (p95 {pct(off, 0.95):.2f} s)")


if __name__ == "__main__":
    main()
