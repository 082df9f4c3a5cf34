"""``alerting`` commands as real processes without paying the import each time.

A test that runs the CLI a hundred times (the bad-config corpus) spends ~0.4 s of CPU per process
importing ``alerting.cli`` before the command does anything. ``ForkedCLI`` starts one helper
process that imports ``alerting.cli`` once with the given environment; each call forks it, and the
child runs the console script's ``main()`` with the given arguments in its own session, working
directory, stdout and stderr, and exits with the command's status. What the test sees is what a
fresh ``alerting`` process gives (exit status, output, a traceback when something escapes), minus
the import time. The environment is fixed when the helper starts: Prefect and the CLI read it at
import. Not for commands that start threads or servers; those run as plain subprocesses.
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
import atexit, json, os, signal, sys, time, traceback
import alerting.cli

def child(job):
    os.setsid()
    os.chdir(job["cwd"])
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    sys.stdin = open(os.devnull)
    for fd, path in ((1, job["stdout"]), (2, job["stderr"])):
        out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, fd)
        os.close(out)
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

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self._lock = threading.Lock()
        self._dir = Path(tempfile.mkdtemp(prefix="alerting-forked-cli-"))
        self._calls = 0
        self._helper = processes.spawn([sys.executable, "-c", _HELPER], env=env, stdout=subprocess.PIPE, text=True,
                                       stdin=subprocess.PIPE)

    def run(self, args: Sequence[str], cwd: str | Path, timeout: float = 60, env: dict[str, str] | None = None) -> Result:
        """``alerting *args`` in ``cwd``; ``env`` adds variables read when the command runs (such as
        ``COLUMNS``), not those read at import (the helper's environment holds those)."""
        with self._lock:
            self._calls += 1
            out, err = self._dir / f"{self._calls}.out", self._dir / f"{self._calls}.err"
            job = {"args": list(args), "argv0": ALERTING, "cwd": str(cwd), "stdout": str(out), "stderr": str(err),
                   "timeout": timeout, "env": env or {}}
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


def main_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment plus ``extra``: the helper's, fixed for its lifetime."""
    return {**os.environ, **(extra or {})}
