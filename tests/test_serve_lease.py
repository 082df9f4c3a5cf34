"""`serve` takes its deployment's lease through a Prefect server that answers 503 for a while (a
busy SQLite server does: "database is locked"): it tries again instead of dying at start, and when
the server keeps failing it stops with one clear line, not a traceback."""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from flows import serving
from flows.serving import LeaseUnavailable, ServeGuard, lease_name


class FailingFront:
    """A reverse proxy on 127.0.0.1 in front of a real Prefect server that answers 503 to the first
    ``failures`` requests for variables (the lease), and forwards everything else."""

    def __init__(self, api_url: str, failures: int) -> None:
        self.failures, self.failed = failures, 0
        upstream = urlsplit(api_url)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if "/variables" in self.path and owner.failed < owner.failures:
                    owner.failed += 1
                    payload = b'{"exception_message": "Service Unavailable"}'
                    self.send_response(503)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(upstream.hostname or "127.0.0.1", upstream.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _relay

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.api_url = f"http://127.0.0.1:{self.server.server_address[1]}{upstream.path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def front(prefect_server):
    fronts: list[FailingFront] = []

    def make(failures: int) -> FailingFront:
        fronts.append(FailingFront(prefect_server.api_url, failures))
        return fronts[-1]

    yield make
    for f in fronts:
        f.close()


def _lease_holder(api_url: str, deployment: str):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        held = client.read_variable_by_name(lease_name(deployment))
        return held.value if held is not None else None


def test_the_lease_is_taken_through_a_few_503s(tmp_path, prefect_server, front):
    flaky = front(failures=3)
    deployment = "service-monitor/lease-503"
    guard = ServeGuard(tmp_path / "monitors.yaml", 30.0, deployment, flaky.api_url)
    try:
        guard.claim()
    finally:
        guard.close()
    assert flaky.failed == 3
    held = _lease_holder(prefect_server.api_url, deployment)
    assert held is not None and held["owner"] == guard.owner


def test_a_server_that_keeps_failing_gives_one_clear_error(tmp_path, front, monkeypatch):
    monkeypatch.setattr(serving, "CLAIM_PATIENCE", 10.0)  # seconds (90 in use); room for two tries on a busy machine
    down = front(failures=10**6)
    guard = ServeGuard(tmp_path / "monitors.yaml", 30.0, "service-monitor/lease-down", down.api_url)
    try:
        with pytest.raises(LeaseUnavailable) as raised:
            guard.claim()
    finally:
        guard.close()
    message = str(raised.value)
    assert "service-monitor/lease-down" in message and "HTTP 503" in message and "kept failing" in message
    assert down.failed >= 2  # tried again before giving up
