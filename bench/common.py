"""Shared bench helpers: the target process, a Prefect server, configs, CPU and RSS readings."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_target(ports: int = 4, latency: float = 0.02, error_rate: float = 0.0) -> tuple[subprocess.Popen, list[int]]:
    proc = subprocess.Popen(
        [sys.executable, str(BENCH / "target.py"), "--ports", str(ports), "--latency", str(latency),
         "--error-rate", str(error_rate)],
        stdout=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline()
    return proc, [int(p) for p in line.split()]


def start_prefect_server(home: Path, extra_env: dict | None = None) -> tuple[subprocess.Popen, str]:
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", **(extra_env or {})}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=open(home / "server.log", "wb"), stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("Prefect server did not start")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def write_config(path: Path, n: int, ports: list[int], concurrency: int = 64, extra: str = "") -> Path:
    lines = [f"concurrency: {concurrency}", extra, "defaults: {attempts: 2, retry_backoff: 0.2, timeout: 5s}", "monitors:"]
    for i in range(n):
        port = ports[i % len(ports)]
        lines.append(f"  - {{name: svc{i:05d}, url: 'http://127.0.0.1:{port}/svc/{i}'}}")
    path.write_text("\n".join(lines) + "\n")
    return path


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry))
            except (OSError, IndexError):
                continue
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(children.get(p, []))
    return out


def cpu_seconds(pid: int) -> float:
    """user+system CPU of a process, including its reaped children."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15]) / CLK_TCK  # utime stime cutime cstime
    except OSError:
        return 0.0


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
