"""Shared fixtures. One real Prefect server (free port, temporary PREFECT_HOME) serves the session.

The server starts in ``pytest_configure``, before any test module imports Prefect, so that both
in-process flow runs and ``alerting`` subprocesses use it through PREFECT_API_URL.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from prefect_server import start_prefect_server, stop_process  # noqa: E402
from servers import Receiver, Target, free_port  # noqa: E402

_SERVER: dict = {}


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
