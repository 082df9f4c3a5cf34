"""``alerting`` commands as real processes without paying the import each time.

A test that runs the CLI a hundred times (the bad-config corpus) spends ~0.4 s of CPU per process
importing ``alerting.cli`` before the command does anything, and a command that talks to Prefect
~1.2 s more importing Prefect. ``ForkedCLI`` starts one helper process that imports ``alerting.cli``
and Prefect's third-party dependencies once (``PRELOAD``: ~0.35 s of Prefect's import; none of them
reads the environment when imported); each call forks it, and the child sets the call's environment,
then runs the console script's ``main()`` with the given arguments in its own session, working
directory, stdout and stderr, and exits with the command's status. Prefect itself is imported by the
child, as in a fresh process: its settings and logging come from the environment at import.

What the test sees is what a fresh ``alerting`` process gives (exit status, output, a traceback when
something escapes), minus the import time. What the helper fixed at import is the terminal setup of
the CLI's consoles (``CONSOLE_VARS``): a call that changes those runs elsewhere (``ForkedCLI.accepts``).
``ForkedCLI`` is for short commands; ``serve`` and ``worker`` run as plain subprocesses, and so do the
tests that check what a real console script prints (``--version``, the secret canary).

``CLIRunner.run`` is ``subprocess.run([alerting, *args], capture_output=True, text=True, ...)`` on a
forked child when it can, a plain subprocess when it cannot (a call already in flight, a console
variable changed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import processes

ALERTING = str(Path(sys.executable).parent / "alerting")

# the helper: reads one JSON job per line, forks, waits for the child (killing its group after
# `timeout`), answers one JSON line; the child emulates the interpreter's top level around main()
_HELPER = r"""
import atexit, importlib, json, os, signal, sys, time, traceback
import alerting.cli

for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except ImportError:
        pass  # an older Prefect may not bring it: the child imports what it needs

def child(job):
    os.setsid()
    os.chdir(job["cwd"])
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    sys.stdin = open(os.devnull)
    for fd, path in ((1, job["stdout"]), (2, job["stderr"])):
        out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, fd)
        os.close(out)
    os.environ.clear()
    os.environ.update(job["env"])
    sys.argv = [job["argv0"], *job["args"]]
    try:
        code = alerting.cli.main()
        raise SystemExit(code)
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        if "threading" in sys.modules:  # as the interpreter ends: non-daemon threads first, then atexit
            sys.modules["threading"]._shutdown()
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)

for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        child(job)
    deadline = time.monotonic() + job["timeout"]
    status = None
    while status is None:
        done, raw = os.waitpid(pid, os.WNOHANG)
        if done:
            status = os.waitstatus_to_exitcode(raw)
        elif time.monotonic() > deadline:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            break
        else:
            time.sleep(0.005)
    print(json.dumps({"code": status, "hung": status is None}), flush=True)
"""


# Prefect's dependencies, imported once by the helper (each child would take ~0.35 s of CPU for them);
# none reads the environment when imported. Prefect itself does, so each child imports it.
PRELOAD = (
    "anyio", "apprise", "cloudpickle", "coolname", "dateutil.parser", "fastapi", "fastapi.encoders", "fsspec",
    "griffe", "httpx", "jinja2", "jsonschema", "opentelemetry.trace", "orjson", "pendulum", "pydantic_settings",
    "sqlalchemy", "sqlalchemy.dialects.sqlite", "sqlalchemy.ext.asyncio", "sqlalchemy.orm", "starlette",
    "websockets",
)

# read by the CLI's rich consoles when ``alerting.cli`` is imported
CONSOLE_VARS = ("TERM", "COLORTERM", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "JUPYTER_COLUMNS",
                "JUPYTER_LINES")
# read then too when set, but read when the command prints when unset: the helper starts without them,
# so each child's own COLUMNS and LINES count
SIZE_VARS = ("COLUMNS", "LINES")


@dataclass
class Result:
    returncode: int | None  # None: killed after the timeout
    stdout: str
    stderr: str
    hung: bool = False

    @property
    def text(self) -> str:
        return self.stdout + self.stderr


class ForkedCLI:
    """``with ForkedCLI(env) as cli: cli.run(["validate", "-c", path], cwd)``. One call at a time
    per instance (a lock serialises them); use one instance per thread for parallel calls."""

    def __init__(self, env: dict[str, str], preload: Sequence[str] = PRELOAD) -> None:
        self.env = env
        self._lock = threading.Lock()
        self._dir = Path(tempfile.mkdtemp(prefix="alerting-forked-cli-"))
        self._calls = 0
        helper_env = {k: v for k, v in env.items() if k not in SIZE_VARS}
        self._helper = processes.spawn([sys.executable, "-c", _HELPER, *preload], env=helper_env, cwd=self._dir,
                                       stdout=subprocess.PIPE, text=True, stdin=subprocess.PIPE)

    def accepts(self, environ: dict[str, str]) -> bool:
        """Whether a child can run with ``environ``: the consoles made at import would not differ."""
        return all(environ.get(name) == self.env.get(name) for name in CONSOLE_VARS)

    def run(self, args: Sequence[str], cwd: str | Path, timeout: float = 60, env: dict[str, str] | None = None,
            environ: dict[str, str] | None = None) -> Result:
        """``alerting *args`` in ``cwd``. The child's environment is ``environ`` when given (the whole
        of it, as ``subprocess.run``'s ``env``), else the helper's plus ``env``."""
        environ = dict(environ) if environ is not None else {**self.env, **(env or {})}
        # the sweep's markers (toolkit.processes): what the command starts is found like the helper
        helper_id = self._helper.toolkit_id  # type: ignore[attr-defined]
        environ.update({processes.RUN_MARK: processes.RUN_ID, processes.PROC_MARK: helper_id})
        if not self.accepts(environ):
            raise ValueError("this call changes a console variable the helper read at import; run it as a subprocess")
        with self._lock:
            self._calls += 1
            out, err = self._dir / f"{self._calls}.out", self._dir / f"{self._calls}.err"
            job = {"args": list(args), "argv0": ALERTING, "cwd": str(cwd), "stdout": str(out), "stderr": str(err),
                   "timeout": timeout, "env": environ}
            helper = self._helper
            assert helper.stdin is not None and helper.stdout is not None
            helper.stdin.write(json.dumps(job) + "\n")
            helper.stdin.flush()
            answer = helper.stdout.readline()
            if not answer:
                raise RuntimeError(f"the forked-CLI helper exited with status {helper.wait()}")
            reply = json.loads(answer)
            result = Result(reply["code"], out.read_text(errors="replace"), err.read_text(errors="replace"),
                            hung=reply["hung"])
            out.unlink()
            err.unlink()
            return result

    def close(self) -> None:
        if self._helper.stdin is not None:
            self._helper.stdin.close()
        processes.stop(self._helper)
        for leftover in self._dir.iterdir():
            leftover.unlink()
        self._dir.rmdir()

    def __enter__(self) -> ForkedCLI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CLIRunner:
    """``runner.run(args, cwd=None, env=None, timeout=120)``: what ``subprocess.run([alerting, *args],
    capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)`` returns (a
    ``CompletedProcess``, or ``TimeoutExpired`` raised), from a forked child of one helper started on
    first use with this process's environment; from a plain subprocess when the helper is busy with
    another thread's call or the call changes a console variable."""

    def __init__(self) -> None:
        self._forked: ForkedCLI | None = None
        self._busy = threading.Lock()

    def run(self, args: Sequence[str], cwd: str | Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
        argv = [ALERTING, *args]
        environ = dict(env) if env is not None else dict(os.environ)

        def plain() -> subprocess.CompletedProcess:
            return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=environ, timeout=timeout)

        if not self._busy.acquire(blocking=False):
            return plain()
        try:
            if self._forked is None:
                self._forked = ForkedCLI(dict(os.environ))
            if not self._forked.accepts(environ):
                return plain()
            result = self._forked.run(args, cwd or os.getcwd(), timeout=timeout, environ=environ)
        finally:
            self._busy.release()
        if result.hung:
            raise subprocess.TimeoutExpired(argv, timeout, result.stdout, result.stderr)
        assert result.returncode is not None
        return subprocess.CompletedProcess(argv, result.returncode, result.stdout, result.stderr)

    def close(self) -> None:
        with self._busy:
            if self._forked is not None:
                self._forked.close()
                self._forked = None


CLI = CLIRunner()  # one per test process; conftest closes it when the session ends


def main_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment plus ``extra``: the helper's, fixed for its lifetime."""
    return {**os.environ, **(extra or {})}
