"""A read-only HTTP server of a generated site, for a quick look (``alerting status-page serve``):
GET and HEAD of ``/`` (index.html), ``/status.json`` and ``/badges/<id>.svg`` only; no directory
listing, no other file (the marker, a stray file someone put there), no other method. Files are
opened per request, so each atomic rebuild is served from its first complete moment."""

from __future__ import annotations

import re
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

_BADGE = re.compile(r"^/badges/[a-z0-9_.-]+\.svg$")
_TYPES = {".html": "text/html; charset=utf-8", ".json": "application/json", ".svg": "image/svg+xml"}
_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src 'self'; connect-src 'self'"


def public_file(path: str) -> str | None:
    """The site file a request path names, or None when it names nothing public."""
    path = unquote(urlsplit(path).path)
    if path in ("/", "/index.html"):
        return "index.html"
    if path == "/status.json":
        return "status.json"
    if _BADGE.match(path) and ".." not in path:
        return path[1:]
    return None


def make_server(directory: Path, host: str, port: int) -> ThreadingHTTPServer:
    root = Path(directory).resolve()

    class Handler(BaseHTTPRequestHandler):
        server_version = "alerting-status-page"
        sys_version = ""

        def log_message(self, format: str, *args: object) -> None:
            pass  # a quick-look server; the web server in front of a real site keeps access logs

        def _send(self, with_body: bool) -> None:
            name = public_file(self.path)
            data = None
            if name is not None:
                try:
                    data = (root / name).read_bytes()
                except OSError:
                    data = None
            if name is None or data is None:
                self.send_error(HTTPStatus.NOT_FOUND, "Not Found")
                return
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", _TYPES[Path(name).suffix])
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-cache")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Security-Policy", _CSP)
            self.end_headers()
            if with_body:
                self.wfile.write(data)

        def do_GET(self) -> None:
            self._send(True)

        def do_HEAD(self) -> None:
            self._send(False)

        def _refuse(self) -> None:
            self.send_response(HTTPStatus.METHOD_NOT_ALLOWED)
            self.send_header("Allow", "GET, HEAD")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse

    return ThreadingHTTPServer((host, port), Handler)


def parse_listen(value: str) -> tuple[str, int]:
    """``127.0.0.1:8080`` -> (host, port); ValueError with the reason."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:8080, got {value!r}")
    return host.strip("[]"), int(port)
