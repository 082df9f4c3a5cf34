"""Real local servers for tests: an HTTP target with scripted answers, a webhook receiver, SMTP."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Route:
    statuses: list[int] = field(default_factory=lambda: [200])  # one per hit; the last repeats
    body: bytes = b"all good"
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # the default 5 drops SYNs under concurrent checks (1 s retransmit)


class Target:
    """An HTTP target whose answer per path is scripted: ``target.route('/x', statuses=[503, 200])``."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: dict[str, int] = {}
        self.lock = threading.Lock()
        self.inflight = 0
        self.max_inflight = 0  # most requests answered at the same time
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = -1  # one segment per answer: no Nagle/delayed-ACK stalls on loopback

            def log_message(self, *args):  # keep test output clean
                pass

            def _answer(self, with_body: bool) -> None:
                path = self.path.split("?", 1)[0]
                with owner.lock:
                    n = owner.hits.get(path, 0)
                    owner.hits[path] = n + 1
                    route = owner.routes.get(path, Route(statuses=[404], body=b"no route"))
                    owner.inflight += 1
                    owner.max_inflight = max(owner.max_inflight, owner.inflight)
                if route.delay:
                    time.sleep(route.delay)
                with owner.lock:
                    owner.inflight -= 1
                status = route.statuses[min(n, len(route.statuses) - 1)]
                self.send_response(status)
                for k, v in route.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                if with_body:
                    try:
                        self.wfile.write(route.body)
                    except (BrokenPipeError, ConnectionResetError):
                        pass

            def do_GET(self):
                self._answer(True)

            def do_HEAD(self):
                self._answer(False)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def route(self, path: str, **kwargs) -> str:
        self.routes[path] = Route(**kwargs)
        self.hits.pop(path, None)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Receiver:
    """A webhook receiver for Apprise json:// URLs; ``messages`` holds each accepted JSON payload.

    It answers ``status``; ``fail_with`` (e.g. 500, or 429 with ``retry_after``) makes it refuse
    messages instead (``fail_times`` of them, or all), counting them in ``refused``.
    """

    def __init__(self, status: int = 200) -> None:
        self.messages: list[dict] = []
        self.headers: list[dict] = []
        self.status = status
        self.fail_with: int | None = None
        self.fail_times: int | None = None
        self.retry_after: str | None = None
        self.refused = 0
        self.event = threading.Condition()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                payload = json.loads(self.rfile.read(length) or b"{}")
                with owner.event:
                    refuse = owner.fail_with is not None and (owner.fail_times is None or owner.fail_times > 0)
                    if refuse:
                        owner.refused += 1
                        if owner.fail_times is not None:
                            owner.fail_times -= 1
                    else:
                        owner.messages.append(payload)
                        owner.headers.append(dict(self.headers))
                        owner.event.notify_all()
                self.send_response(owner.fail_with if refuse else owner.status)
                if refuse and owner.retry_after is not None:
                    self.send_header("Retry-After", owner.retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def apprise_url(self, path: str = "/hook", query: str = "") -> str:
        return f"json://127.0.0.1:{self.port}{path}" + (f"?{query}" if query else "")

    def wait_for(self, count: int, timeout: float) -> bool:
        """Block until ``count`` messages arrived (event-driven, bounded)."""
        with self.event:
            return self.event.wait_for(lambda: len(self.messages) >= count, timeout=timeout)

    def titles(self) -> list[str]:
        with self.event:
            return [m.get("title", "") for m in self.messages]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
