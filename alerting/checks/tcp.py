"""The tcp type: ``tcp://host:port`` accepts a connection within ``timeout``; optionally ``send`` a
line and ``expect`` a text in the reply."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from alerting.checks.base import Attempt, Context, elapsed_ms, failed
from alerting.deadline import hard_deadline, watch_socket
from alerting.models import ErrorKind, MonitorSpec

REPLY_LIMIT = 64 * 1024


def address(spec: MonitorSpec) -> tuple[str, int]:
    parts = urlsplit(spec.url)
    return parts.hostname or "", parts.port or 0


class TcpChecker:
    name = "tcp"
    schemes: tuple[str, ...] = ("tcp",)
    fields: frozenset[str] = frozenset({"send", "expect"})

    def problems(self, spec: MonitorSpec) -> list[tuple[str, str]]:
        if not urlsplit(spec.url).port:
            return [("url", "a tcp monitor needs a port: tcp://host:PORT (1-65535)")]
        return []

    def attempt(self, spec: MonitorSpec, context: Context) -> Attempt:
        host, port = address(spec)
        started = context.clock()
        with hard_deadline(spec.timeout) as scope:
            try:
                with socket.create_connection((host, port), timeout=spec.timeout) as sock:
                    watch_socket(sock)
                    connected = elapsed_ms(context.clock, started)
                    if spec.send is None and spec.expect is None:
                        return Attempt(True, None, connected, message=f"port {port} open")
                    if spec.send is not None:
                        sock.sendall(spec.send.get_secret_value().encode())
                    reply = _read_until(sock, spec.expect)
            except OSError as exc:
                if scope.expired:
                    return failed(ErrorKind.TIMEOUT, f"no complete answer within {spec.timeout:g}s")
                raise exc
        latency = elapsed_ms(context.clock, started)
        if spec.expect is not None and spec.expect not in reply:
            seen = reply[:60] + ("..." if len(reply) > 60 else "")
            return Attempt(False, None, latency, ErrorKind.REPLY_MISMATCH,
                           f"expected {spec.expect!r} in the reply, got {seen!r}", retryable=True)
        return Attempt(True, None, latency, message=f"port {port} open, reply as expected")

    def classify(self, exc: BaseException, spec: MonitorSpec) -> Attempt:
        host, port = address(spec)
        if isinstance(exc, ConnectionRefusedError):
            return failed(ErrorKind.TCP_REFUSED, f"connection to {host} port {port} refused (nothing listens)")
        if isinstance(exc, (TimeoutError, socket.timeout)):
            return failed(ErrorKind.TIMEOUT, f"no answer from {host} port {port} within {spec.timeout:g}s")
        if isinstance(exc, socket.gaierror):
            return failed(ErrorKind.DNS, f"DNS lookup failed for {host}")
        if isinstance(exc, OSError):
            return failed(ErrorKind.CONNECTION, f"connection to {host} port {port} failed ({type(exc).__name__})")
        raise exc

    def expectation(self, spec: MonitorSpec) -> str:
        port = address(spec)[1]
        return f"TCP port {port} open" + (f", reply containing {spec.expect!r}" if spec.expect is not None else "")


def _read_until(sock: socket.socket, expect: str | None) -> str:
    """The reply until it holds ``expect``, the peer closes, or REPLY_LIMIT bytes."""
    data = b""
    while len(data) < REPLY_LIMIT:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
        if expect is None or expect.encode() in data:
            break
    return data.decode("utf-8", errors="replace")


CHECKER = TcpChecker()
