"""Every CLI command through a real subprocess: exit codes, output, and no secret in any output."""

import json
import os
import sys
import urllib.request
from pathlib import Path

import pytest

from toolkit import free_port, interrupt, seed_prefect_home
from toolkit.forked_cli import CLI

ALERTING = str(Path(sys.executable).parent / "alerting")
CANARY = "CANARY-7f3a9c"


def run(*args, cwd=None, env=None, timeout=120):
    """``subprocess.run`` of ``alerting *args``, forked from a helper that imported the CLI (toolkit.forked_cli)."""
    return CLI.run(args, cwd=cwd, env=env or os.environ.copy(), timeout=timeout)


def assert_clean_error(proc):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.fixture
def config(target, receiver, write_config):
    target.route("/api")
    target.route("/web")
    text = f"""
defaults:
  retry_backoff: 0
  retry_backoff_max: 0
  attempts: 2
  channels: [hook, dead]
channels:
  hook: "{receiver.apprise_url('/hook/' + CANARY, '+X-Token=' + CANARY)}"
  dead: "json://127.0.0.1:1/{CANARY}?+X-Token={CANARY}"
monitors:
  - name: api
    url: {target.url('/api')}?api_key={CANARY}
    headers: {{Authorization: "Bearer {CANARY}"}}
  - name: web
    url: {target.url('/web')}
"""
    return write_config(text)


# --- check -------------------------------------------------------------------------------------


def test_check_up_down_and_json(target):
    up = run("check", target.route("/ok", body=b"hello PlayStation"), "--contains", "PlayStation")
    assert up.returncode == 0 and "UP" in up.stdout
    down = run("check", target.route("/down", statuses=[503]), "--backoff", "0", "--attempts", "2", "--json")
    assert down.returncode == 1
    data = json.loads(down.stdout)
    assert data["ok"] is False and data["status_code"] == 503 and data["attempts"] == 2
    assert data["error"] == "unexpected_status" and data["latency_ms"] is not None
    assert target.hits["/down"] == 2


def test_check_expect_status(target):
    url = target.route("/nc", statuses=[204])
    assert run("check", url, "--expect-status", "200,204").returncode == 0
    assert run("check", url, "--expect-status", "200", "--attempts", "1").returncode == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["check", "ftp://example.com"], "URL"),
        (["check", "not a url"], "URL"),
        (["check", "http://x", "--timeout", "soon"], "timeout"),
        (["check", "http://x", "--expect-status", "abc"], "expect-status"),
        (["check", "http://x", "--attempts", "0"], "attempts"),
        (["check"], "Missing argument"),
        (["nosuchcommand"], "No such command"),
    ],
)
def test_check_bad_input_exits_2(args, message):
    proc = run(*args)
    assert_clean_error(proc)
    assert message in proc.stderr


# --- validate ----------------------------------------------------------------------------------


def test_validate_ok_and_problems(config, write_config):
    ok = run("validate", "-c", str(config))
    assert ok.returncode == 0 and "2 monitors, 2 channels" in ok.stdout
    assert CANARY not in ok.stdout + ok.stderr
    bad = write_config(
        "channels: {a: 'nosuch://x'}\nmonitors:\n  - {name: x, url: 'ftp://y', channels: [zz]}\n"
        "  - {name: y, url: 'http://y', timeout: soon}\n",
        "bad.yaml",
    )
    proc = run("validate", "-c", str(bad))
    assert_clean_error(proc)
    assert "bad.yaml: channel 'a': not a valid Apprise URL" in proc.stderr
    assert "bad.yaml: monitor 'x': field 'url'" in proc.stderr
    assert "bad.yaml: monitor 'y': field 'timeout'" in proc.stderr
    assert "3 problems" in proc.stderr


def test_validate_missing_file_and_bad_yaml(tmp_path):
    proc = run("validate", "-c", str(tmp_path / "nope.yaml"))
    assert_clean_error(proc)
    assert "nope.yaml: config file not found" in proc.stderr
    (tmp_path / "monitors.yaml").write_text("monitors: [\n")
    proc = run("validate", cwd=tmp_path)  # default monitors.yaml in the working directory
    assert_clean_error(proc)
    assert "monitors.yaml: invalid YAML at line" in proc.stderr


# --- run ---------------------------------------------------------------------------------------


def test_run_all_up_exits_0(config):
    proc = run("run", "-c", str(config))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all 2 services up" in proc.stdout


def test_run_down_exits_1_alerts_and_never_prints_a_secret(config, target, receiver):
    target.route("/api", statuses=[503])
    proc = run("run", "-c", str(config), "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    assert data["ok"] is False and data["state"] == "FAILED"
    assert data["message"].startswith("1 of 2 services down: api (HTTP 503 after 2 attempts; DOWN since ")
    assert {r["monitor"]: r["ok"] for r in data["results"]} == {"api": False, "web": True}
    sent = {a["channel"]: a["ok"] for a in data["alerts"]}
    assert sent == {"hook": True, "dead": False}
    assert receiver.titles() == ["DOWN: api"]
    assert CANARY not in receiver.messages[0]["message"]  # not in the alert text
    assert receiver.headers[0]["X-Token"] == CANARY  # ...yet the channel really got its secret
    assert CANARY not in proc.stdout + proc.stderr

    table = run("run", "-c", str(config))
    assert table.returncode == 1
    assert "DOWN" in table.stdout and "not sent" in table.stdout
    assert CANARY not in table.stdout + table.stderr


def test_run_with_locations_but_no_live_worker_checks_from_here_and_says_so(target, write_config):
    """`alerting run` sends a config with `locations:` to the task workers of its locations (exercised
    with live workers in tests/test_distributed.py); with none subscribed, a run still checks."""
    target.route("/api", statuses=[503])
    config = write_config(f"locations: [eu-west]\ndefaults: {{attempts: 1, retry_backoff: 0}}\n"
                          f"monitors:\n  - {{name: api, url: '{target.url('/api')}'}}\n", "located.yaml")
    proc = run("run", "-c", str(config), "--json", cwd=config.parent)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    assert [(r["monitor"], r["ok"], r["status_code"]) for r in data["results"]] == [("api", False, 503)]
    assert data["recorded_in_prefect"] is True
    assert "No location answered for 1 of 1 monitor(s) (api); checking them from this machine" in proc.stderr
    assert target.hits["/api"] == 1


def test_run_bad_config_exits_2(tmp_path, write_config):
    proc = run("run", "-c", str(tmp_path / "missing.yaml"))
    assert_clean_error(proc)
    bad = write_config("monitors:\n  - {name: a, url: http://127.0.0.1:1, colour: red}\n", "bad.yaml")
    proc = run("run", "-c", str(bad))
    assert_clean_error(proc)
    assert "bad.yaml: monitor 'a': field 'colour': unknown field" in proc.stderr


# --- notify ------------------------------------------------------------------------------------


def test_notify(config, receiver):
    ok = run("notify", "hook", "-c", str(config), "--title", "Hello", "--body", "test body")
    assert ok.returncode == 0, ok.stderr
    assert receiver.messages[-1]["title"] == "Hello" and receiver.messages[-1]["message"] == "test body"
    dead = run("notify", "dead", "-c", str(config))
    assert dead.returncode == 1 and "not delivered" in dead.stderr
    assert CANARY not in ok.stdout + ok.stderr + dead.stdout + dead.stderr
    unknown = run("notify", "nope", "-c", str(config))
    assert_clean_error(unknown)
    assert "no channel named 'nope'" in unknown.stderr


# --- drill -------------------------------------------------------------------------------------


def test_drill_sends_a_drill_down_alert(config, receiver, target):
    proc = run("drill", "web", "-c", str(config), "--status", "503")
    assert proc.returncode == 1  # the 'dead' channel could not be reached, and that is reported
    assert receiver.titles() == ["[DRILL] DOWN: web"]
    assert "HTTP 503" in receiver.messages[0]["message"]
    assert "/web" not in target.hits
    assert CANARY not in proc.stdout + proc.stderr


def test_drill_exit_0_when_every_channel_got_it(target, receiver, write_config):
    path = write_config(
        f"channels: {{hook: '{receiver.apprise_url()}'}}\n"
        f"monitors:\n  - {{name: api, url: '{target.url('/api')}', channels: [hook], retry_backoff: 0}}\n"
    )
    proc = run("drill", "api", "-c", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert receiver.titles() == ["[DRILL] DOWN: api"]


def test_drill_unknown_monitor_exits_2(config):
    proc = run("drill", "nope", "-c", str(config))
    assert_clean_error(proc)
    assert "no monitor named 'nope'" in proc.stderr


# --- serve -------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("mode", [["--runner", "prefect"], []], ids=["prefect-runner", "continuous"])
def test_serve_starts_a_local_server_alerts_and_stops_cleanly_on_ctrl_c(
    mode, tmp_path, target, receiver, write_config, start_process
):
    target.route("/api", statuses=[503])
    path = write_config(
        f"defaults: {{retry_backoff: 0, attempts: 1}}\n"
        f"channels: {{hook: '{receiver.apprise_url()}'}}\n"
        f"monitors:\n  - {{name: api, url: '{target.url('/api')}', channels: [hook]}}\n"
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_UI_URL")}
    env["PREFECT_HOME"] = str(seed_prefect_home(tmp_path / "prefect-home"))  # the server serve starts: migrated
    env["PREFECT_RUNNER_POLL_FREQUENCY"] = "1"
    log = tmp_path / "serve.log"
    # serve checks once at start (a manual first run); a long interval keeps the scheduler from
    # piling up a flow-run process every 2 s on a busy machine while the first run starts
    proc = start_process([ALERTING, "serve", "-c", str(path), "--interval", "5m", "--port", str(port), *mode],
                         cwd=tmp_path, env=env, log=log)
    try:
        receiver.wait_for(1, timeout=180)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- serve log ---\n{log.read_text()[-3000:]}") from None
    assert receiver.titles()[0] == "DOWN: api"
    link = "/runs/flow-run/" if mode else "/deployments/deployment/"  # continuous: no run yet when it decides
    assert f"http://127.0.0.1:{port}{link}" in receiver.messages[0]["message"]
    assert interrupt(proc, timeout=60) == 0  # Ctrl-C: serve stops its own server and exits 0
    output = log.read_text()
    assert f"Prefect server: http://127.0.0.1:{port} (started here" in output
    assert "stopped" in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2)
