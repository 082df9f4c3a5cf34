"""A hard deadline for one HTTP attempt: connect, headers and the whole body, however the server dribbles.

urllib3 only has per-operation timeouts: a server that sends one byte a second never trips them.
Here every socket that an attempt opens or reuses is registered with one watchdog thread; when the
attempt's deadline passes, the watchdog shuts the socket down, so the blocked read returns at once
and the attempt ends. ``POOL_CLASSES`` are urllib3 connection pools (a ``PoolManager``'s
``pool_classes_by_scheme``) whose connections register themselves; ``hard_deadline(seconds)``
scopes an attempt in the calling thread.

Only DNS resolution (``getaddrinfo``) is outside the deadline: it cannot be interrupted, and the
system resolver bounds it by its own timeout.
"""

from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


@dataclass
class DeadlineScope:
    """One attempt: its deadline (monotonic seconds), the sockets it used, whether it ran out."""

    deadline: float
    tokens: list[int] = field(default_factory=list)
    expired: bool = False


class _Watchdog:
    """One daemon thread for the whole process; a heap of (deadline, token)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._entries: dict[int, tuple[socket.socket, DeadlineScope]] = {}
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, sock: socket.socket, scope: DeadlineScope) -> int:
        token = next(self._ids)
        with self._cond:
            self._entries[token] = (sock, scope)
            heapq.heappush(self._heap, (scope.deadline, token))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="check-deadline", daemon=True)
                self._thread.start()
            if self._heap[0][1] == token:  # wake the watchdog only when this is now the first deadline
                self._cond.notify()
        return token

    def cancel(self, token: int) -> None:
        with self._cond:
            self._entries.pop(token, None)  # its heap entry is skipped when it comes up

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                deadline, token = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                entry = self._entries.pop(token, None)
            if entry is not None:
                sock, scope = entry
                scope.expired = True
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # already closed


_WATCHDOG = _Watchdog()
_local = threading.local()


@contextmanager
def hard_deadline(seconds: float) -> Iterator[DeadlineScope]:
    """Every socket used by this thread inside the block is shut down ``seconds`` from now."""
    scope = DeadlineScope(time.monotonic() + seconds)
    previous = getattr(_local, "scope", None)
    _local.scope = scope
    try:
        yield scope
    finally:
        _local.scope = previous
        for token in scope.tokens:
            _WATCHDOG.cancel(token)


def watch_socket(sock: socket.socket | None) -> None:
    scope: DeadlineScope | None = getattr(_local, "scope", None)
    if scope is not None and sock is not None:
        scope.tokens.append(_WATCHDOG.watch(sock, scope))


class _Watched:
    """Mixed into urllib3's connections: each socket opened, or reused, is watched by the deadline."""

    sock: socket.socket | None

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        watch_socket(sock)
        return sock

    def request(self, *args, **kwargs) -> None:
        if self.sock is not None:  # a pooled connection reused by this attempt
            watch_socket(self.sock)
        super().request(*args, **kwargs)  # type: ignore[misc]


class _DeadlineHTTPConnection(_Watched, HTTPConnection):
    pass


class _DeadlineHTTPSConnection(_Watched, HTTPSConnection):
    peer_cert: bytes | None = None  # the server's certificate (DER), for the expiry warning of https checks

    def connect(self) -> None:
        super().connect()
        try:
            self.peer_cert = self.sock.getpeercert(binary_form=True) if self.sock is not None else None  # type: ignore[attr-defined]
        except (OSError, ValueError, AttributeError):
            self.peer_cert = None


class DeadlineHTTPPool(HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection


class DeadlineHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


# a PoolManager's (or ProxyManager's) ``pool_classes_by_scheme``: its connections obey ``hard_deadline``
POOL_CLASSES: dict[str, type[HTTPConnectionPool]] = {"http": DeadlineHTTPPool, "https": DeadlineHTTPSPool}
