"""COMPATIBILITY SHIM (delete after the toolkit is merged): use toolkit.PrefectServer instead."""

from __future__ import annotations

import subprocess
from pathlib import Path

from toolkit import PrefectServer, stop

_SERVERS: dict[int, PrefectServer] = {}


def start_prefect_server(home: Path, port: int) -> subprocess.Popen:
    server = PrefectServer(home=home, port=port).start()
    assert server.process is not None
    _SERVERS[server.process.pid] = server
    return server.process


def stop_process(proc: subprocess.Popen) -> None:
    server = _SERVERS.pop(proc.pid, None)
    if server is not None:
        server.stop()
    else:
        stop(proc)
