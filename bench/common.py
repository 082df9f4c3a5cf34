"""Shared bench helpers: the target process, a Prefect server, configs, CPU and RSS readings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))  # the test toolkit: servers, processes, waits
from toolkit import PrefectServer, WaitTimeout, free_port, spawn, wait_for  # noqa: E402
from toolkit import stop as stop_group  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
_SERVERS: dict[int, PrefectServer] = {}

__all__ = ["BENCH", "PrefectServer", "WaitTimeout", "cpu_seconds", "free_port", "process_tree", "rss_mb", "start_prefect_server",
           "start_target", "stop", "wait_for", "write_config"]


def start_target(ports: int = 4, latency: float = 0.02, error_rate: float = 0.0,
                 control: Path | None = None) -> tuple[subprocess.Popen, list[int]]:
    """bench/target.py (asyncio, several ports) in its own process group; returns it and its ports."""
    proc = spawn(
        [sys.executable, str(BENCH / "target.py"), "--ports", str(ports), "--latency", str(latency),
         "--error-rate", str(error_rate), *(["--control", str(control)] if control else [])],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    return proc, [int(p) for p in line.split()]


def start_prefect_server(home: Path, extra_env: dict | None = None) -> tuple[subprocess.Popen, str]:
    """The toolkit's Prefect server in ``home``; returns its process (for CPU/RSS readings) and API URL."""
    server = PrefectServer(home=home, extra_env=extra_env, keep_home=True).start()
    assert server.process is not None
    _SERVERS[server.process.pid] = server
    return server.process, server.api_url


def stop(proc: subprocess.Popen) -> None:
    """Stop a process started here with its whole tree (Ctrl-C, then SIGKILL after 20 s)."""
    server = _SERVERS.pop(proc.pid, None)
    if server is not None:
        server.stop()
    else:
        stop_group(proc, signal.SIGINT, timeout=20)


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
