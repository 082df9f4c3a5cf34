"""The test toolkit itself: waits that fail clearly, servers that misbehave on demand, and processes
that never outlive their test (a grandchild in a session of its own, like Prefect's flow-run
processes, included)."""

from __future__ import annotations

import os
import sys
import textwrap

import pytest
import requests

from toolkit import WaitTimeout, interrupt, spawn, stop, wait_for


def test_wait_for_returns_the_value_or_names_what_never_happened():
    calls = []
    assert wait_for(lambda: calls.append(1) or len(calls) >= 3 and "done", timeout=5, interval=0.01) == "done"
    with pytest.raises(WaitTimeout, match=r"timed out after 0.05s waiting for the moon \(last value: \[\]\)\nlog tail"):
        wait_for(lambda: [], timeout=0.05, interval=0.01, what="the moon", details=lambda: "log tail")


def test_target_answers_its_switchable_status_and_scripts(target):
    assert requests.get(target.url("/x"), timeout=5).status_code == 404  # no route: target.status
    target.status = 503
    assert requests.get(target.url("/x"), timeout=5).status_code == 503
    url = target.route("/s", statuses=[500, 200], body=b"fine")
    assert [requests.get(url, timeout=5).status_code for _ in range(3)] == [500, 200, 200]
    assert target.hits == {"/x": 2, "/s": 3}


def test_receiver_refuses_hangs_and_drops_on_demand(receiver):
    def post(title, timeout=5.0):
        return requests.post(receiver.url(path="/p"), json={"title": title}, timeout=timeout)

    assert post("a").status_code == 200
    receiver.refuse(429, times=1, retry_after="7")
    refused = post("b")
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "7")
    assert post("c").status_code == 200  # refused only once
    receiver.drop = True
    with pytest.raises(requests.ConnectionError):
        post("d")
    receiver.accept()
    receiver.hang = True
    with pytest.raises(requests.ReadTimeout):
        post("e", timeout=0.3)
    receiver.accept()
    assert receiver.titles() == ["a", "c"] and (receiver.refused, receiver.dropped, receiver.hung) == (1, 1, 1)
    assert receiver.received[0] == {"path": "/p", "title": "a"}
    assert [p["title"] for p in receiver.posts] == ["a", "b", "c", "d", "e"]
    with pytest.raises(WaitTimeout, match=r"3 message\(s\).*\['a', 'c'\]"):
        receiver.wait_for(3, timeout=0.05)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


PARENT = textwrap.dedent("""
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    print(child.pid, flush=True)
    time.sleep(600)
""")


@pytest.mark.parametrize("how", ["stop", "after the parent died"])
def test_stop_kills_the_whole_tree_even_grandchildren_in_their_own_session(tmp_path, how):
    log = tmp_path / "out"
    proc = spawn([sys.executable, "-c", PARENT], log=log)
    try:
        grandchild = int(wait_for(lambda: log.read_text().strip(), 60, what="the grandchild's pid"))
        assert os.getsid(grandchild) != os.getsid(proc.pid)  # out of reach of killpg(proc)
        if how == "after the parent died":
            os.kill(proc.pid, 9)
            proc.wait(timeout=30)  # the grandchild is an orphan now, re-parented away from us
            assert _alive(grandchild)
    finally:
        stop(proc, timeout=10)
    wait_for(lambda: not _alive(grandchild), 10, what=f"the grandchild {grandchild} to be gone")


def test_interrupt_is_ctrl_c_to_the_group(tmp_path):
    script = "import time\nprint('ready', flush=True)\ntry:\n    time.sleep(600)\nexcept KeyboardInterrupt:\n    print('stopped', flush=True)\n"
    log = tmp_path / "out"
    proc = spawn([sys.executable, "-c", script], log=log)
    try:
        wait_for(lambda: "ready" in log.read_text(), 60, what="the process to start")
        assert interrupt(proc, timeout=30) == 0
        assert log.read_text().split() == ["ready", "stopped"]
    finally:
        stop(proc)


def test_forked_cli_gives_each_command_its_own_process_status_output_and_deadline(tmp_path):
    from toolkit import TCPListener
    from toolkit.forked_cli import ForkedCLI, main_env

    (tmp_path / "monitors.yaml").write_text("monitors:\n  - {name: api, url: 'http://127.0.0.1:9/'}\n")
    silent = TCPListener()  # accepts, never answers
    with ForkedCLI(main_env({"COLUMNS": "200"})) as cli:
        version = cli.run(["--version"], tmp_path)
        assert (version.returncode, version.stderr) == (0, "") and version.stdout.strip(), version.text
        unknown = cli.run(["nosuchcommand"], tmp_path)
        assert unknown.returncode == 2 and "No such command" in unknown.stderr and unknown.stdout == ""
        listed = cli.run(["validate"], tmp_path)  # -c defaults to monitors.yaml in the working directory
        assert listed.returncode == 0 and "api: GET http://127.0.0.1:9/" in listed.stdout, listed.text
        hung = cli.run(["check", f"http://127.0.0.1:{silent.port}/", "--timeout", "5m"], tmp_path, timeout=1)
        assert hung.hung and hung.returncode is None
        assert cli.run(["--version"], tmp_path).returncode == 0  # the helper goes on after a kill
    silent.close()


def test_cli_runner_is_subprocess_run_with_exactly_the_given_environment(tmp_path):
    """CLIRunner: a CompletedProcess as subprocess.run gives; the child's environment is the call's
    (a variable set in the test process but left out of ``env`` is not there); a deadline raises
    TimeoutExpired; a call while another is in flight runs as a plain subprocess."""
    import socket
    import subprocess
    import threading

    from toolkit.forked_cli import CLIRunner

    (tmp_path / "monitors.yaml").write_text(
        'channels:\n  hook: "${HOOK_URL}"\nmonitors:\n  - {name: api, url: "http://127.0.0.1:9/", channels: [hook]}\n')
    runner = CLIRunner()
    silent = socket.create_server(("127.0.0.1", 0))  # connections wait in its backlog, never answered
    hang = ["check", f"http://127.0.0.1:{silent.getsockname()[1]}/", "--timeout", "5m"]
    try:
        with_hook = runner.run(["validate"], cwd=tmp_path, env={**os.environ, "HOOK_URL": "json://127.0.0.1:9/"})
        assert isinstance(with_hook, subprocess.CompletedProcess) and with_hook.returncode == 0, with_hook.stderr
        assert "api: GET http://127.0.0.1:9/" in with_hook.stdout
        os.environ["HOOK_URL"] = "json://127.0.0.1:9/"  # in this process, not in the call's env
        try:
            without = runner.run(["validate"], cwd=tmp_path, env={k: v for k, v in os.environ.items() if k != "HOOK_URL"})
        finally:
            del os.environ["HOOK_URL"]
        assert without.returncode == 2 and "HOOK_URL" in without.stderr, without.stdout + without.stderr
        with pytest.raises(subprocess.TimeoutExpired):
            runner.run(hang, cwd=tmp_path, timeout=2)
        # one call in flight (the silent target holds it): a second from another thread does not wait for it
        outcome: list[BaseException] = []

        def first() -> None:
            try:
                runner.run(hang, cwd=tmp_path, timeout=8)
            except BaseException as exc:  # noqa: BLE001 - the test thread looks at it
                outcome.append(exc)

        held = threading.Thread(target=first)
        held.start()
        try:
            wait_for(lambda: runner._busy.locked(), 10, interval=0.05, what="the first call in flight")
            version = runner.run(["--version"], cwd=tmp_path, timeout=60)
            assert version.returncode == 0 and version.stdout.startswith("alerting")
            assert runner._busy.locked(), "the second call waited for the first"
        finally:
            held.join(60)
        assert len(outcome) == 1 and isinstance(outcome[0], subprocess.TimeoutExpired), outcome
    finally:
        runner.close()
        silent.close()
