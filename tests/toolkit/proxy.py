"""A local forward HTTP proxy standing for one location's network path (``HTTP_PROXY=proxy.url``).

``Proxy()`` forwards plain-http requests (absolute-URI form, as requests sends them to a proxy) to
their target and relays the answer. ``refuse()`` stops listening (connections refused: a location
cut off), ``blackhole()`` accepts and never answers (a path that swallows packets: timeouts),
``restore()`` forwards again on the same port. ``forwarded`` counts requests relayed, ``paths`` per target path.
"""

from __future__ import annotations

import http.client
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from .ports import free_port


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a connection cut by refuse()/blackhole() is the point, not an error


class Proxy:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.forwarded = 0
        self.paths: dict[str, int] = {}  # requests relayed, per target path
        self.mode = "forward"
        self._lock = threading.Lock()
        self._held = threading.Event()  # set on close: black-holed connections are let go
        self._server: _Server | None = None
        self._conns: set[socket.socket] = set()  # client connections (kept alive between requests)
        self._start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with owner._lock:
                    owner._conns.add(self.connection)

            def finish(self) -> None:
                with owner._lock:
                    owner._conns.discard(self.connection)
                super().finish()

            def _relay(self, method: str) -> None:
                if owner.mode == "blackhole":
                    owner._held.wait()
                    self.close_connection = True
                    return
                parts = urlsplit(self.path)
                upstream = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)
                try:
                    path = parts.path + (f"?{parts.query}" if parts.query else "")
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection",)}
                    upstream.request(method, path or "/", headers=headers)
                    answer = upstream.getresponse()
                    body = answer.read()
                except OSError:
                    self.send_error(502)
                    return
                finally:
                    upstream.close()
                with owner._lock:
                    owner.forwarded += 1
                    owner.paths[parts.path] = owner.paths.get(parts.path, 0) + 1
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(body)

            def do_GET(self) -> None:
                self._relay("GET")

            def do_HEAD(self) -> None:
                self._relay("HEAD")

        return Handler

    def _start(self) -> None:
        self._server = _Server(("127.0.0.1", self.port), self._handler())
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._cut()

    def _cut(self) -> None:
        """Close the kept-alive client connections: a cut-off path cuts those too."""
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def refuse(self) -> None:
        """Connections to the proxy are refused (nothing listens on its port)."""
        self.mode = "refuse"
        self._stop_listening()

    def blackhole(self) -> None:
        """Connections are accepted and never answered."""
        self.mode = "blackhole"
        self._held.clear()
        self._cut()
        if self._server is None:
            self._start()

    def restore(self) -> None:
        self.mode = "forward"
        self._held.set()
        if self._server is None:
            self._start()

    def close(self) -> None:
        self._held.set()
        self._stop_listening()
