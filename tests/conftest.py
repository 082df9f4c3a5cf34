"""Shared fixtures. One real Prefect server (free port, temporary PREFECT_HOME) serves the session.

The server starts in ``pytest_configure``, before any test module imports Prefect, so that both
in-process flow runs and ``alerting`` subprocesses use it through PREFECT_API_URL.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from servers import Receiver, Target, free_port  # noqa: E402

_SERVER: dict = {}


def _healthy(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def start_prefect_server(home: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    log = open(home / "server.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited: {(home / 'server.log').read_text()[-2000:]}")
        if _healthy(url):
            return proc
        time.sleep(0.25)
    proc.kill()
    raise RuntimeError("prefect server did not become healthy in 120 s")


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGINT)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def pytest_configure(config):
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["ALERTING_APPRISE_PACING"] = "off"
    os.environ["ALERTING_DELIVERY_RETRY_WAIT"] = "0"
    os.environ.setdefault("PREFECT_LOGGING_TO_API_BATCH_INTERVAL", "0.3")
    if os.environ.get("ALERTING_TEST_NO_SERVER"):
        return
    home = Path(tempfile.mkdtemp(prefix="alerting-test-prefect-"))
    port = free_port()
    proc = start_prefect_server(home, port)
    _SERVER.update(proc=proc, home=home)
    os.environ["PREFECT_HOME"] = str(home)
    os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
    os.environ["PREFECT_UI_URL"] = f"http://127.0.0.1:{port}"


def pytest_unconfigure(config):
    proc = _SERVER.get("proc")
    if proc is not None:
        if "prefect" in sys.modules:  # send buffered run logs before the server goes away
            from prefect.logging.handlers import APILogWorker

            APILogWorker.drain_all(timeout=5)
        stop_process(proc)
        shutil.rmtree(_SERVER["home"], ignore_errors=True)


@pytest.fixture
def target():
    t = Target()
    yield t
    t.close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def failing_receiver():
    r = Receiver(status=500)
    yield r
    r.close()


@pytest.fixture
def write_config(tmp_path):
    def write(text: str, name: str = "monitors.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    class Collect(Message):
        def __init__(self):
            super().__init__()
            self.messages = []

        def handle_message(self, message):
            self.messages.append(message)

    handler = Collect()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, handler
    controller.stop()
