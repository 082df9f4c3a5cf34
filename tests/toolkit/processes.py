"""Processes started by tests: each in its own session (process group), each stopped with its whole
tree, also when the test fails, and a sweep that kills whatever a test run left behind.

Every process started here (and every descendant, since the environment is inherited) carries two
environment variables: ``ALERTING_TEST_RUN`` (one value per Python process that imported the toolkit)
and ``ALERTING_TEST_PROC`` (one value per started process). Prefect's runner starts each flow-run
process in a new session, so killing the serving process's group does not reach them; the markers
do, even after the runner died and its children were re-parented.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

RUN_MARK = "ALERTING_TEST_RUN"
PROC_MARK = "ALERTING_TEST_PROC"
RUN_ID = uuid.uuid4().hex
os.environ[RUN_MARK] = RUN_ID  # inherited by every subprocess of this test run, however started

_STARTED: list[subprocess.Popen] = []


def die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the process that started it dies (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def spawn(
    cmd: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    log: Path | None = None,
    stdout: int | IO[Any] | None = None,
    text: bool = False,
    stdin: int | IO[Any] | None = subprocess.DEVNULL,
) -> subprocess.Popen:
    """Start ``cmd`` in a new session (its own process group), marked for :func:`stop` and
    :func:`kill_leftovers`. Output goes to ``log`` (appended) or ``stdout``."""
    proc_id = uuid.uuid4().hex
    full_env = {**(os.environ if env is None else env), RUN_MARK: RUN_ID, PROC_MARK: proc_id}
    # the child gets its own copy of the log's descriptor: ours closes when Popen returns
    with open(log, "ab") if log is not None else contextlib.nullcontext(stdout) as sink:
        proc = subprocess.Popen(
            list(cmd), env=full_env, cwd=cwd, stdin=stdin, stdout=sink,
            stderr=subprocess.STDOUT if sink is not None else None, text=text,
            start_new_session=True,
            preexec_fn=die_with_parent if sys.platform.startswith("linux") else None,
        )
    proc.toolkit_id = proc_id  # type: ignore[attr-defined]
    _STARTED.append(proc)
    return proc


def _marked(mark: str) -> list[int]:
    """PIDs (not ours) whose environment holds ``mark`` (``NAME=value``)."""
    needle = mark.encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return found


def _kill(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGKILL)  # when it leads a group (flow-run processes do)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def stop(proc: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 30) -> int | None:
    """Stop ``proc``'s process group with ``sig`` (Ctrl-C by default), SIGKILL it after ``timeout``
    seconds, then kill every process that descends from it wherever it went. Returns the exit status."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=30)
    proc_id = getattr(proc, "toolkit_id", None)
    if proc_id is not None:
        _kill(_marked(f"{PROC_MARK}={proc_id}"))
    if proc in _STARTED:
        _STARTED.remove(proc)
    return proc.returncode


def interrupt(proc: subprocess.Popen, timeout: float = 60) -> int:
    """Ctrl-C to ``proc``'s group and wait for it to exit by itself (no sweep: a test can then check
    what the process cleaned up on its own). Raises ``subprocess.TimeoutExpired``; the
    ``start_process`` fixture still stops everything afterwards."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
    return proc.wait(timeout=timeout)


def kill(proc: subprocess.Popen) -> int | None:
    """SIGKILL ``proc``'s group at once (a crash, not a shutdown), and every descendant."""
    return stop(proc, signal.SIGKILL, timeout=30)


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()[:200]
    except OSError:
        return "?"


def kill_leftovers() -> list[str]:
    """The safety net: SIGKILL every started process still running, then every process anywhere
    that descends from this test run. Returns "pid command" of each straggler it found."""
    for proc in list(_STARTED):
        kill(proc)
    stragglers = _marked(f"{RUN_MARK}={RUN_ID}")
    found = [f"{pid} {_cmdline(pid)}" for pid in stragglers]
    _kill(stragglers)
    return found


atexit.register(kill_leftovers)
