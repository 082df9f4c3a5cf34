"""A load-test target: asyncio HTTP/1.1 (keep-alive) on several loopback ports, one per "host".

Every path answers after ``--latency`` seconds; ``--error-rate`` of the answers are 503.
Run as its own process so its CPU is not counted against the monitor:

    python bench/target.py --ports 4 --latency 0.02 --error-rate 0.0   # prints the ports, one line
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal

BODY_OK = b"ok: service healthy"
BODY_ERR = b"service unavailable"


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, latency: float, error_rate: float) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if not head:
                break
            await asyncio.sleep(latency)
            error = error_rate > 0 and random.random() < error_rate
            body = BODY_ERR if error else BODY_OK
            status = b"503 Service Unavailable" if error else b"200 OK"
            writer.write(
                b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain\r\nContent-Length: "
                + str(len(body)).encode() + b"\r\n\r\n" + body
            )
            await writer.drain()
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
    args = parser.parse_args()
    asyncio.run(main(args.ports, args.latency, args.error_rate))
