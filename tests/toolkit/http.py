"""Real HTTP servers on 127.0.0.1 for tests: a target to check and a webhook receiver to alert.

Both run a threaded ``http.server`` on a free port in this process and are switched between
answers by setting attributes from the test.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .waiting import wait_for


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # the default 5 drops SYNs under concurrent checks (1 s retransmit)


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass


def _serve(handler: type[BaseHTTPRequestHandler]) -> _Server:
    server = _Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@dataclass
class Route:
    """A scripted answer for one path of a :class:`Target`."""

    statuses: list[int] = field(default_factory=lambda: [200])  # one per hit; the last repeats
    body: bytes = b"all good"
    delay: float = 0.0  # answer after this many seconds (latency)
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # never answer until Target.release() or close()


class Target:
    """An HTTP target (GET/HEAD). Paths with a :meth:`route` answer their script; every other path
    answers ``status`` after ``latency`` seconds, both switchable at any time (``target.status = 200``).

    ``hits`` counts requests per path; ``request_headers`` keeps each request's headers;
    ``inflight``/``max_inflight`` count requests being answered at once.
    """

    def __init__(self, status: int = 404, latency: float = 0.0) -> None:
        self.status = status
        self.latency = latency
        self.routes: dict[str, Route] = {}
        self.hits: dict[str, int] = {}
        self.request_headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        self.inflight = 0
        self.max_inflight = 0
        self._released = threading.Event()
        owner = self

        class Handler(_Quiet):
            protocol_version = "HTTP/1.1"
            wbufsize = -1  # one segment per answer: no Nagle/delayed-ACK stalls on loopback

            def _answer(self, with_body: bool) -> None:
                path = self.path.split("?", 1)[0]
                with owner.lock:
                    n = owner.hits.get(path, 0)
                    owner.hits[path] = n + 1
                    owner.request_headers.append(dict(self.headers))
                    route = owner.routes.get(path)
                    if route is None:
                        body = b"ok" if owner.status < 400 else f"HTTP {owner.status}".encode()
                        route = Route(statuses=[owner.status], body=body, delay=owner.latency)
                    owner.inflight += 1
                    owner.max_inflight = max(owner.max_inflight, owner.inflight)
                try:
                    if route.hang:
                        owner._released.wait()
                        self.close_connection = True
                        return
                    if route.delay:
                        owner._released.wait(route.delay)  # latency; close() cuts it short
                    status = route.statuses[min(n, len(route.statuses) - 1)]
                    self.send_response(status)
                    for k, v in route.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(route.body)))
                    self.end_headers()
                    if with_body:
                        self.wfile.write(route.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with owner.lock:
                        owner.inflight -= 1

            def do_GET(self) -> None:
                self._answer(True)

            def do_HEAD(self) -> None:
                self._answer(False)

        self.server = _serve(Handler)
        self.port: int = self.server.server_port

    def route(self, path: str, **kwargs: Any) -> str:
        """Script ``path`` (see :class:`Route`), reset its hit count, return its URL."""
        self.routes[path] = Route(**kwargs)
        self.hits.pop(path, None)
        return self.url(path)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def release(self) -> None:
        """Let hanging requests go (they get no answer: the connection closes)."""
        self._released.set()

    def wait_for_hits(self, path: str, count: int, timeout: float) -> int:
        return wait_for(lambda: self.hits.get(path, 0) >= count and self.hits[path], timeout,
                        what=f"{count} request(s) to {path} (got {self.hits.get(path, 0)})")

    def close(self) -> None:
        self._released.set()
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    payload: dict[str, Any]


class Receiver:
    """A webhook receiver (e.g. for Apprise ``json://`` URLs) that records each accepted POST.

    Accepted: ``messages`` (JSON payloads), ``headers``, ``requests`` (path, headers, payload), and
    ``received`` (each payload with the ``path`` it was posted to). Every POST, accepted or not:
    ``posts`` (payloads) and ``attempts`` (requests). It answers ``status``. On demand
    it misbehaves instead of accepting, counting each case:

    - ``refuse(500)`` / ``fail_with = 500``: answer that status (``fail_times`` of them or all;
      ``retry_after`` adds a Retry-After header); counted in ``refused``;
    - ``hang = True``: hold the request without answering until ``release()`` or ``close()``; ``hung``;
    - ``drop = True``: read the request and close the connection without an answer; ``dropped``.

    GET/HEAD answer ``status`` too, so a receiver also serves as an UP (or DOWN) target.
    """

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[Request] = []
        self.attempts: list[Request] = []  # every POST, whatever the answer (refused, hung, dropped)
        self.fail_with: int | None = None
        self.fail_times: int | None = None
        self.retry_after: str | None = None
        self.hang = False
        self.drop = False
        self.refused = self.hung = self.dropped = 0
        self.event = threading.Condition()
        self._released = threading.Event()
        owner = self

        class Handler(_Quiet):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                try:
                    payload = json.loads(body or b"{}")
                except ValueError:
                    payload = {"raw": body.decode("utf-8", "replace")}
                with owner.event:
                    owner.attempts.append(Request(self.path, dict(self.headers), payload))
                    refuse = owner.fail_with is not None and (owner.fail_times is None or owner.fail_times > 0)
                    hang, drop = owner.hang, owner.drop
                    if hang:
                        owner.hung += 1
                    elif drop:
                        owner.dropped += 1
                    elif refuse:
                        owner.refused += 1
                        if owner.fail_times is not None:
                            owner.fail_times -= 1
                    else:
                        owner.requests.append(Request(self.path, dict(self.headers), payload))
                    owner.event.notify_all()
                if hang:
                    owner._released.wait()
                if hang or drop:
                    self.close_connection = True
                    return
                self.send_response(owner.fail_with if refuse and owner.fail_with else owner.status)
                if refuse and owner.retry_after is not None:
                    self.send_header("Retry-After", owner.retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                body = f"status {owner.status}".encode()
                self.send_response(owner.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_HEAD(self) -> None:
                self.send_response(owner.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = _serve(Handler)
        self.port: int = self.server.server_port

    # --- what arrived ---

    @property
    def messages(self) -> list[dict[str, Any]]:
        with self.event:
            return [r.payload for r in self.requests]

    @property
    def posts(self) -> list[dict[str, Any]]:
        """The payload of every POST received, accepted or not."""
        with self.event:
            return [r.payload for r in self.attempts]

    @property
    def headers(self) -> list[dict[str, str]]:
        with self.event:
            return [r.headers for r in self.requests]

    @property
    def received(self) -> list[dict[str, Any]]:
        with self.event:
            return [{"path": r.path, **r.payload} for r in self.requests]

    def titles(self) -> list[str]:
        return [m.get("title", "") for m in self.messages]

    def wait_for(self, count: int, timeout: float) -> bool:
        """Block until ``count`` messages were accepted (event-driven); raise WaitTimeout otherwise."""
        with self.event:
            if self.event.wait_for(lambda: len(self.requests) >= count, timeout=timeout):
                return True
        from .waiting import WaitTimeout

        raise WaitTimeout(f"timed out after {timeout:g}s waiting for {count} message(s) at the receiver; "
                          f"got {self.titles()} (refused {self.refused}, hung {self.hung}, dropped {self.dropped})")

    # --- behaviour switches ---

    def refuse(self, status: int, times: int | None = None, retry_after: str | None = None) -> None:
        self.fail_with, self.fail_times, self.retry_after = status, times, retry_after

    def accept(self) -> None:
        """Back to accepting every message (hanging requests are let go)."""
        self.fail_with = self.fail_times = self.retry_after = None
        self.hang = self.drop = False
        self.release()

    def release(self) -> None:
        self._released.set()
        self._released = threading.Event()

    # --- addresses ---

    def apprise_url(self, path: str = "/hook", query: str = "") -> str:
        return f"json://127.0.0.1:{self.port}{path}" + (f"?{query}" if query else "")

    def url(self, scheme: str = "http", path: str = "/") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self._released.set()
        self.server.shutdown()
        self.server.server_close()
