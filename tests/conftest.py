"""Shared fixtures, named once; the servers and processes behind them live in tests/toolkit/.

One real Prefect server (free port, temporary PREFECT_HOME) serves the session. It starts in
``pytest_configure``, before any test module imports Prefect, so that both in-process flow runs and
``alerting`` subprocesses use it through PREFECT_API_URL. The block tests get a second server of
their own (``prefect_server``), so the blocks they save never reach other tests' flow runs.

Every process a test starts (``start_process``) is stopped with its whole tree when the test ends,
passed or failed; at the end of the session a sweep kills anything the run left behind.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from toolkit import (
    Postgres,
    PrefectServer,
    Receiver,
    SMTPServer,
    Target,
    kill_leftovers,
    spawn,
    stop,
)

_SESSION: dict[str, PrefectServer] = {}


def pytest_configure(config: pytest.Config) -> None:
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["ALERTING_APPRISE_PACING"] = "off"
    os.environ["ALERTING_DELIVERY_RETRY_WAIT"] = "0"
    os.environ.setdefault("PREFECT_LOGGING_TO_API_BATCH_INTERVAL", "0.3")
    if os.environ.get("ALERTING_TEST_NO_SERVER") or hasattr(config, "workerinput"):
        return
    server = PrefectServer().start()
    _SESSION["server"] = server
    os.environ["PREFECT_HOME"] = str(server.home)
    os.environ["PREFECT_API_URL"] = server.api_url
    os.environ["PREFECT_UI_URL"] = server.ui_url


def pytest_unconfigure(config: pytest.Config) -> None:
    from toolkit.forked_cli import CLI

    CLI.close()  # this process's forked-CLI helper, if a test started it
    server = _SESSION.pop("server", None)
    if server is not None:
        if "prefect" in sys.modules:  # send buffered run logs before the server goes away
            from prefect.logging.handlers import APILogWorker

            APILogWorker.drain_all(timeout=5)
        server.stop()
    stragglers = kill_leftovers()  # the safety net: nothing this run started outlives it
    if stragglers:
        warnings.warn(f"killed {len(stragglers)} process(es) left behind by the tests: {stragglers}", stacklevel=1)


# --- how pytest-xdist shares the tests out (`make test`: -n 3 --dist loadgroup --no-loadscope-reorder) --

SHARED_SERVER_FIXTURES = {"_blocks_prefect_server"}  # session-wide servers worth starting once per run


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that share an expensive fixture run on one worker, so it is built once per run, not once
    per worker: a module-scoped fixture groups its module's tests that use it, and the block tests'
    Prefect server groups its users. The rest go one test at a time to whichever worker is free.

    Order: tests marked ``slow`` (20 s or more of served cycles or processes) first, so none of
    them starts last and holds up the end of the run; then the groups; then the rest."""
    for item in items:
        group = _shared_fixture_group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=lambda item: 0 if item.get_closest_marker("slow") else 1 if item.get_closest_marker("xdist_group") else 2)


def _shared_fixture_group(item: pytest.Item) -> str | None:
    info = getattr(item, "_fixtureinfo", None)
    if info is None or item.get_closest_marker("slow"):
        return None  # a slow test builds its own copy: it would hold its group's other tests up
    for name in info.names_closure:
        definitions = info.name2fixturedefs.get(name)
        if not definitions:
            continue
        if name in SHARED_SERVER_FIXTURES:
            return name
        if definitions[-1].scope == "module":
            return f"{item.nodeid.split('::', 1)[0]}::{name}"
    return None


# --- servers ---------------------------------------------------------------------------------------


@pytest.fixture
def target() -> Iterator[Target]:
    """An HTTP target: ``target.route('/x', statuses=[503, 200])``; other paths answer ``target.status``."""
    t = Target()
    try:
        yield t
    finally:
        t.close()


@pytest.fixture
def target_503() -> Iterator[Target]:
    """A target whose every path answers 503."""
    t = Target(status=503)
    try:
        yield t
    finally:
        t.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver; ``receiver.apprise_url()`` is its json:// channel URL."""
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def failing_receiver() -> Iterator[Receiver]:
    """A receiver that refuses every message with HTTP 500."""
    r = Receiver()
    r.refuse(500)
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    server = SMTPServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A throwaway PostgreSQL server for the session (tests that need a database of their own create
    one); skipped when the server binaries are missing, except under CI, where that is a failure."""
    try:
        server = Postgres()
    except RuntimeError as exc:
        if os.environ.get("CI"):
            raise  # .ci/run installs PostgreSQL: its absence there is a failure, not a skip
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    def write(text: str, name: str = "monitors.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


# --- processes -------------------------------------------------------------------------------------


@pytest.fixture
def start_process() -> Iterator[Callable[..., Any]]:
    """``start_process(cmd, env=..., cwd=..., log=path)``: a process in its own group, stopped (Ctrl-C,
    then SIGKILL) with every descendant when the test ends, whether it passed or not."""
    started: list[Any] = []

    def start(cmd: list[str], **kwargs: Any) -> Any:
        proc = spawn(cmd, **kwargs)
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in reversed(started):
            stop(proc, timeout=30)


# --- the block tests' own Prefect server -----------------------------------------------------------


@pytest.fixture(scope="session")
def _blocks_prefect_server() -> Iterator[PrefectServer]:
    server = PrefectServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def prefect_server(_blocks_prefect_server: PrefectServer) -> Iterator[PrefectServer]:
    """The block tests' server; this process's Prefect settings point at it for one test."""
    with _blocks_prefect_server.settings():
        yield _blocks_prefect_server
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)  # send queued run logs while the server still answers
