"""Fixtures for the block tests: a real Prefect server, a local json:// receiver, local targets."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrefectServer:
    def __init__(self, home: Path):
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.ui_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_URL": self.ui_url,
            "ALERTING_APPRISE_PACING": "off",
            "PREFECT_SERVER_DATABASE_TIMEOUT": "30",  # SQLite on a busy shared box: wait, do not 503
        }
        self.log = open(home / "server.log", "wb")
        self.process = subprocess.Popen(
            [str(VENV_BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prefect server exited early; see {self.log.name}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"prefect server not ready after {timeout}s; see {self.log.name}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log.close()


@pytest.fixture(scope="session")
def _blocks_prefect_server(tmp_path_factory):
    """A real ``prefect server start`` on a free port, temporary PREFECT_HOME, analytics off: the
    block tests' own server, so the blocks they save never reach other tests' flow runs."""
    server = PrefectServer(tmp_path_factory.mktemp("prefect-home"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture
def prefect_server(_blocks_prefect_server):
    """Points this process's Prefect settings at the block tests' server for one test only."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        PREFECT_UI_URL,
        temporary_settings,
    )

    server = _blocks_prefect_server
    with temporary_settings(
        {PREFECT_API_URL: server.api_url, PREFECT_UI_URL: server.ui_url, PREFECT_SERVER_ANALYTICS_ENABLED: False}
    ):
        yield server
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)  # send queued run logs while the server still answers


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        try:
            payload = json.loads(body)
        except ValueError:
            payload = {"raw": body.decode("utf-8", "replace")}
        self.server.received.append({"path": self.path, **payload})
        code = self.server.status
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):  # noqa: N802 - a target: answers the configured status
        body = f"status {self.server.status}".encode()
        self.send_response(self.server.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, *args):  # keep test output clean
        pass


class LocalHTTP:
    """A local HTTP server: records POSTed JSON (a json:// receiver) and answers ``status``."""

    def __init__(self, status: int):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
        self.server.received = []
        self.server.status = status
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def received(self) -> list[dict]:
        return self.server.received

    def url(self, scheme: str = "http", path: str = "/") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = LocalHTTP(200)
    yield server
    server.close()


@pytest.fixture
def target_503():
    server = LocalHTTP(503)
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _no_pacing(monkeypatch):
    monkeypatch.setenv("ALERTING_APPRISE_PACING", "off")
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
