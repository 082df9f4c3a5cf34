"""One rule for which Prefect server a command talks to (alerting/prefect_api.py), through real
subprocesses and real servers: PREFECT_API_URL when set, else the local server `alerting serve`
started, else (run/drill only) a temporary one. And the errors around it: a missing block, an
unknown deployment, a port taken by something that is not a Prefect server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from test_cli_monitor_state import save_blocks, without_prefect_api

from flows.serve import die_with_parent
from toolkit import seed_prefect_home
from toolkit.forked_cli import CLI

ALERTING = str(Path(sys.executable).parent / "alerting")
INTERNALS = ("Traceback", "database is locked", "Starting temporary server")


def run(*args, env=None, cwd=None):
    """``subprocess.run`` of ``alerting *args``, forked from a helper that imported the CLI (toolkit.forked_cli)."""
    return CLI.run(args, cwd=cwd, env=env or os.environ.copy(), timeout=180)


def assert_clean(proc, code: int, *needles: str) -> None:
    output = proc.stdout + proc.stderr
    assert proc.returncode == code, output
    for needle in needles:
        assert needle in output, output
    for internal in INTERNALS:
        assert internal not in output, output


def wait_for(condition, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise AssertionError(f"{what} within {timeout:.0f}s\n{tail}")


def start(args: list[str], env: dict, cwd: Path, log: Path) -> subprocess.Popen:
    with open(log, "w") as sink:
        return subprocess.Popen(
            [ALERTING, *args], cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=die_with_parent,
        )


def stop(proc: subprocess.Popen) -> None:
    """SIGINT to the whole process group (serve stops its server), SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


def free_port() -> int:
    from toolkit import free_port as port

    return port()


# --- with PREFECT_API_URL (the session's server) ------------------------------------------------


def test_notify_to_a_missing_block_is_bad_input(write_config):
    config = write_config("channels: {gone: 'block:apprise-channel/no-such-block-here'}\nmonitors: []\n")
    proc = run("notify", "gone", "-c", str(config))
    assert_clean(proc, 2, "no block named 'no-such-block-here'", "alerting blocks list")


def test_automations_delete_of_an_unknown_deployment_says_so():
    proc = run("automations", "delete", "--deployment", "bogus/x")
    assert_clean(proc, 2, "no deployment 'bogus/x'")
    assert "deleted" not in proc.stdout


# --- a port taken by another web server -------------------------------------------------------------


def test_serve_on_a_port_taken_by_another_http_server_exits_2(tmp_path, target, write_config):
    target.route("/api/health")  # answers 200 "all good" to Prefect's health path, like any web app
    port = target.port
    config = write_config("monitors:\n  - {name: a, url: 'http://127.0.0.1:9/a'}\n")
    log = tmp_path / "serve.log"
    proc = start(["serve", "-c", str(config), "--port", str(port)], without_prefect_api(tmp_path), tmp_path, log)
    try:
        proc.wait(timeout=120)
    finally:
        stop(proc)
    output = log.read_text()
    assert proc.returncode == 2, output
    assert f"port {port} on 127.0.0.1 is taken by something that is not a Prefect server" in output
    assert "Traceback" not in output and "JSONDecodeError" not in output


# --- with `alerting serve` up and no PREFECT_API_URL ----------------------------------------------


@pytest.mark.slow
def test_with_serve_up_every_command_uses_its_server(tmp_path, target, receiver, write_config):
    """`make run` in one shell; `run`, `notify`, `blocks`, `automations`, `silence` in another, without
    PREFECT_API_URL: all of them use the served server (no temporary server on the same database)."""
    tag = uuid.uuid4().hex[:8]
    target.route("/ok")
    config = write_config(
        "defaults: {retry_backoff: 0, attempts: 1}\n"
        f"channels:\n  hook: '{receiver.apprise_url()}'\n"
        f"  team: 'block:apprise-channel/team-{tag}'\n"
        f"  gone: 'block:apprise-channel/gone-{tag}'\n"
        f"monitors:\n  - {{name: ok, url: '{target.url('/ok')}', channels: [hook]}}\n"
    )
    env = without_prefect_api(tmp_path)
    seed_prefect_home(Path(env["PREFECT_HOME"]))  # the server serve starts: migrated already
    env["PREFECT_RUNNER_POLL_FREQUENCY"] = "1"
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    log = tmp_path / "serve.log"
    serve = start(["serve", "-c", str(config), "--interval", "1h", "--port", str(port)], env, tmp_path, log)
    try:
        record = Path(env["PREFECT_HOME"]) / "alerting-local-server"
        wait_for(lambda: serve.poll() is not None or "Serving 1 monitor" in log.read_text(), 120,
                 "serve did not start", log)
        assert serve.poll() is None, log.read_text()
        # the other shell: no temporary server possible, so a command that does not find the served one fails
        env = {**env, "PREFECT_SERVER_EPHEMERAL_ENABLED": "false"}
        save_blocks(api, f"AppriseChannel(url='{receiver.apprise_url()}').save('team-{tag}')\n"
                         f"ServiceMonitor(url='{target.url('/ok')}', channels=['hook']).save('shop-{tag}')")

        notified = run("notify", "team", "-c", str(config), "--title", f"via-block-{tag}", env=env)
        assert_clean(notified, 0, "delivered to team")
        assert f"via-block-{tag}" in receiver.titles()
        assert_clean(run("notify", "gone", "-c", str(config), env=env), 2, f"no block named 'gone-{tag}'")

        listed = run("blocks", "list", env={**env, "COLUMNS": "250"})
        assert_clean(listed, 0, f"block:apprise-channel/team-{tag}", f"shop-{tag}")
        assert_clean(run("automations", "list", env=env), 0, "automation(s) made by alerting")
        assert_clean(run("automations", "delete", "--deployment", "bogus/x", env=env), 2, "no deployment 'bogus/x'")
        assert_clean(run("silence", f"shop-{tag}", "-c", str(config), "--for", "5m", env=env), 0,
                     f"shop-{tag} silenced for 5m")

        ran = run("run", "-c", str(config), env=env)
        assert_clean(ran, 0, "2 services up")  # the YAML monitor and the block monitor
        runs = httpx.post(f"{api}/flow_runs/filter", json={"limit": 50}, timeout=30).json()
        assert any(r["state_type"] == "COMPLETED" and not r.get("deployment_id") for r in runs), runs
        assert record.read_text().strip() == api  # how the other commands found it
    finally:
        stop(serve)
    assert serve.returncode is not None
    assert "Traceback" not in log.read_text().split("stopped")[0]
    wait_for(lambda: not _answers(api), 30, "the server serve started is still up")


def _answers(api: str) -> bool:
    try:
        httpx.get(f"{api}/health", timeout=2)
        return True
    except httpx.HTTPError:
        return False
