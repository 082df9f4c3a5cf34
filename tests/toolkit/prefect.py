"""A real Prefect server for tests and benches: ``prefect server start`` on a free port with its own
temporary PREFECT_HOME, analytics off, ready when /api/health answers, stopped by process group.

Imports nothing of Prefect at module level: Prefect reads its settings when first imported, and the
session's server must be configured before that.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from . import processes
from .ports import free_port
from .waiting import WaitTimeout, wait_for

T = TypeVar("T")

SERVER_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # SQLite on a busy shared 2-core machine: wait for the write lock instead of answering 503
    "PREFECT_SERVER_DATABASE_TIMEOUT": "60",
}


BLOCKS_DIR = Path(__file__).resolve().parents[2] / "blocks"


def _blocks_digest() -> str:
    """Changes whenever our block types may have: the template then holds their new schemas."""
    digest = hashlib.sha256()
    for source in sorted(BLOCKS_DIR.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()[:12]


def _register_blocks(home: Path, db: Path) -> None:
    """Start a server on ``db`` once, so its block types (Prefect's, and ours through the
    ``prefect.collections`` entry point) are registered in it, and stop it."""
    from alerting.prefect_api import MONITOR_BLOCK_SLUG  # imports nothing of Prefect

    server = PrefectServer(home, extra_env={"PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{db}"})

    def registered() -> bool:
        try:
            with urllib.request.urlopen(f"{server.api_url}/block_types/slug/{MONITOR_BLOCK_SLUG}", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    with server:
        wait_for(registered, 300, interval=0.25, what="block types registered in the template database")


def migrated_database() -> Path:
    """A Prefect SQLite database at this Prefect version's head revision with every block type
    registered, made once per machine (a file lock makes the xdist workers wait for the first). A
    server started on a copy skips the migrations and, told so (``PrefectServer``), the block
    registration: ~4.5 s of CPU instead of ~12 s, and the suite starts a dozen servers."""
    import fcntl
    from importlib.metadata import version

    name = (f"alerting-test-prefect-db-{version('prefect')}-py{sys.version_info[0]}{sys.version_info[1]}"
            f"-blocks-{_blocks_digest()}")
    template = Path(tempfile.gettempdir()) / f"{name}.db"
    with open(Path(tempfile.gettempdir()) / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not template.exists():
            work = Path(tempfile.mkdtemp(prefix="alerting-test-prefect-db-"))
            try:
                made = work / "prefect.db"
                env = {**os.environ, **SERVER_ENV, "PREFECT_HOME": str(work),
                       "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{made}"}
                env.pop("PREFECT_API_URL", None)
                subprocess.run([sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"],
                               env=env, check=True, capture_output=True, timeout=600)
                _register_blocks(work, made)
                os.replace(made, template)  # complete or absent, never half-written
            finally:
                shutil.rmtree(work, ignore_errors=True)
    return template


def seed_prefect_home(home: Path) -> Path:
    """Put a migrated database where a server using ``home`` as PREFECT_HOME looks for it (a server
    the test starts itself, or the local one ``alerting serve`` starts); no-op when one is there."""
    home.mkdir(parents=True, exist_ok=True)
    db = home / "prefect.db"
    if not db.exists():
        shutil.copyfile(migrated_database(), db)
    return home


class PrefectServer:
    """``PrefectServer().start()`` (or ``with PrefectServer() as server:``). ``env`` is the environment
    for clients and subprocesses that should use it; ``settings()`` points this process at it."""

    def __init__(self, home: Path | None = None, port: int | None = None, extra_env: dict[str, str] | None = None,
                 keep_home: bool = False) -> None:
        self.own_home = home is None
        self.home = Path(tempfile.mkdtemp(prefix="alerting-test-prefect-")) if home is None else home
        self.home.mkdir(parents=True, exist_ok=True)
        self.keep_home = keep_home
        self.port = port or free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.ui_url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.home / "server.log"
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen | None = None
        self.env = {
            **os.environ, **SERVER_ENV, "PREFECT_HOME": str(self.home), "PREFECT_API_URL": self.api_url,
            "PREFECT_UI_URL": self.ui_url,
        }

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return f"--- {self.log_path} ---\n" + self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def start(self, timeout: float = 180) -> PrefectServer:
        # the server's own API URL: its UI tells the browser where the API is from this setting
        env = {**os.environ, **SERVER_ENV, **self.extra_env, "PREFECT_HOME": str(self.home),
               "PREFECT_API_URL": self.api_url, "PREFECT_UI_URL": self.ui_url}
        if "PREFECT_API_DATABASE_CONNECTION_URL" not in self.extra_env:
            seed_prefect_home(self.home)
            # the template holds every block type already (the servers `alerting serve` starts in
            # tests still register them, as they do for users)
            env.setdefault("PREFECT_SERVER_REGISTER_BLOCKS_ON_START", "false")
        self.process = processes.spawn(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env, log=self.log_path,
        )
        process = self.process

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"prefect server exited with status {process.returncode}\n{self.log_tail()}")
            return self.healthy()

        try:
            wait_for(ready, timeout, interval=0.25, what=f"the Prefect server on port {self.port}",
                     details=self.log_tail)
        except (WaitTimeout, RuntimeError):
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is not None:
            processes.stop(self.process, signal.SIGINT, timeout=20)
        if self.own_home and not self.keep_home and not os.environ.get("ALERTING_TEST_KEEP"):
            shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> PrefectServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @contextmanager
    def settings(self) -> Iterator[PrefectServer]:
        """This process's Prefect client talks to this server inside the block."""
        from prefect.settings import (
            PREFECT_API_URL,
            PREFECT_SERVER_ANALYTICS_ENABLED,
            PREFECT_UI_URL,
            temporary_settings,
        )

        with temporary_settings({PREFECT_API_URL: self.api_url, PREFECT_UI_URL: self.ui_url,
                                 PREFECT_SERVER_ANALYTICS_ENABLED: False}):
            yield self


def _retryable(exc: BaseException) -> bool:
    """A server that is busy or briefly away (503/502/429, connection errors), not a wrong request."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if status is not None:
        return status in (408, 429, 502, 503, 504)
    import httpx

    return isinstance(exc, (httpx.TransportError, ConnectionError, TimeoutError))


def retry_api(call: Callable[[], T], timeout: float = 120, what: str = "a Prefect API call") -> T:
    """Run ``call`` until it stops failing with a retryable error (a busy SQLite server answers 503),
    backing off up to 2 s between tries; after ``timeout`` seconds re-raise the last error."""
    deadline = time.monotonic() + timeout
    pause = 0.2
    while True:
        try:
            return call()
        except Exception as exc:
            if not _retryable(exc) or time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)  # back-off between tries of a bounded retry, not a fixed wait
            pause = min(pause * 2, 2.0)
