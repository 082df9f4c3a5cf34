"""A load-test target: asyncio HTTP/1.1 (keep-alive) on several loopback ports, one per "host".

Every path answers after ``--latency`` seconds; ``--error-rate`` of the answers are 503.
Run as its own process so its CPU is not counted against the monitor:

    python bench/target.py --ports 4 --latency 0.02 --error-rate 0.0   # prints the ports, one line

For the alert-latency bench, ``--control DIR``: the paths listed in ``DIR/down`` answer 503 (the file
is re-read when it changes, every 20 ms at most), and every answer to a path listed in ``DIR/watch``
is logged to ``DIR/answers`` as ``<epoch seconds> <path> <status>``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import time

BODY_OK = b"ok: service healthy"
BODY_ERR = b"service unavailable"


class Control:
    """The paths told to fail, and the paths whose answers are logged (see the module doc)."""

    def __init__(self, directory: str | None):
        self.dir = directory
        self.down: set[str] = set()
        self.watch: set[str] = set()
        self._stamps: dict[str, float] = {}
        self._next = 0.0
        self.log = open(os.path.join(directory, "answers"), "a", buffering=1) if directory else None  # noqa: SIM115 - open for the life of the process

    def _read(self, name: str) -> set[str] | None:
        path = os.path.join(self.dir or "", name)
        try:
            stamp = os.stat(path).st_mtime
        except OSError:
            return set()
        if self._stamps.get(name) == stamp:
            return None
        self._stamps[name] = stamp
        with open(path) as f:
            return {line.strip() for line in f if line.strip()}

    def refresh(self) -> None:
        if self.dir is None or time.monotonic() < self._next:
            return
        self._next = time.monotonic() + 0.02
        for name in ("down", "watch"):
            value = self._read(name)
            if value is not None:
                setattr(self, name, value)

    def answered(self, path: str, status: int) -> None:
        if self.log is not None and path in self.watch:
            self.log.write(f"{time.time():.4f} {path} {status}\n")


CONTROL = Control(None)


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, latency: float, error_rate: float) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if not head:
                break
            await asyncio.sleep(latency)
            CONTROL.refresh()
            path = head.split(b" ", 2)[1].decode("latin-1") if CONTROL.dir else ""
            error = (error_rate > 0 and random.random() < error_rate) or path in CONTROL.down
            body = BODY_ERR if error else BODY_OK
            status = b"503 Service Unavailable" if error else b"200 OK"
            writer.write(
                b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain\r\nContent-Length: "
                + str(len(body)).encode() + b"\r\n\r\n" + body
            )
            await writer.drain()
            if CONTROL.dir:
                CONTROL.answered(path, 503 if error else 200)
            if b"connection: close" in head.lower():
                break
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def main(ports: int, latency: float, error_rate: float) -> None:
    servers = [
        await asyncio.start_server(
            lambda r, w: handle(r, w, latency, error_rate), "127.0.0.1", 0, backlog=1024
        )
        for _ in range(ports)
    ]
    print(" ".join(str(s.sockets[0].getsockname()[1]) for s in servers), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for s in servers:
        s.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--ports", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--control", default=None, help="directory with the down/watch files (alert latency)")
    args = parser.parse_args()
    CONTROL = Control(args.control)
    asyncio.run(main(args.ports, args.latency, args.error_rate))
