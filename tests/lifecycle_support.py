"""Real local servers for the lifecycle tests: a switchable HTTP target and a json:// receiver that
can be told to fail. (Self-contained, so these tests run alone or next to other test modules.)"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Target:
    """GET answers ``self.status`` (change it between runs)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                body = b"ok" if owner.status < 400 else b"broken"
                self.send_response(owner.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Receiver:
    """json:// webhook receiver. ``fail_with`` (e.g. 500, or 429 with ``retry_after``) makes it
    refuse messages; ``messages`` holds the accepted ones, ``refused`` counts the others."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.refused = 0
        self.fail_with: int | None = None
        self.fail_times: int | None = None  # refuse only this many, then accept
        self.retry_after: str | None = None
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                payload = json.loads(self.rfile.read(length) or b"{}")
                with owner.lock:
                    refuse = owner.fail_with is not None and (owner.fail_times is None or owner.fail_times > 0)
                    if refuse:
                        owner.refused += 1
                        if owner.fail_times is not None:
                            owner.fail_times -= 1
                    else:
                        owner.messages.append(payload)
                self.send_response(owner.fail_with if refuse else 200)
                if refuse and owner.retry_after is not None:
                    self.send_header("Retry-After", owner.retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def apprise_url(self, path: str = "/hook") -> str:
        return f"json://127.0.0.1:{self.server.server_port}{path}"

    def titles(self) -> list[str]:
        with self.lock:
            return [m.get("title", "") for m in self.messages]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


class PrefectServer:
    """One real ``prefect server start`` on a free port with its own PREFECT_HOME."""

    def __init__(self, home: Path) -> None:
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        env.pop("PREFECT_API_URL", None)
        self.log = open(home / "server.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while not _healthy(self.api_url):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"prefect server did not start: {(home / 'server.log').read_text()[-2000:]}")
            time.sleep(0.25)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGINT)
                self.proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=5)
        self.log.close()
