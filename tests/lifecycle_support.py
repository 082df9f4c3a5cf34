"""A switchable HTTP target for the lifecycle tests: every path answers ``status``, changed between
runs. The json:// receiver and the Prefect server helpers are in servers.py and prefect_server.py."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler

from servers import _Server


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
