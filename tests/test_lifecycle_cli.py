"""The lifecycle end to end: ``alerting run`` as a subprocess, several invocations in one directory,
a real local target and json:// receiver, one real Prefect server for the module."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from toolkit import PrefectServer
from toolkit.forked_cli import CLI

ALERTING = str(Path(sys.executable).with_name("alerting"))
CANARY = "canary-Secret-77ad1"


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory):
    """Reuse a server the session already points at (PREFECT_API_URL), else start one here."""
    if os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
    with PrefectServer(tmp_path_factory.mktemp("prefect-home")) as server:
        yield server.api_url


@pytest.fixture
def world(tmp_path, prefect_api, target, receiver):
    target.status = 503  # every path of the target answers 503 until a test sets 200
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "ALERTING_APPRISE_PACING": "off",
        "ALERTING_DELIVERY_RETRY_WAIT": "0",
        "OPS_URL": receiver.apprise_url().replace("json://", f"json://ops:{CANARY}@"),
    }

    def write(**defaults):
        opts = {"attempts": 1, "retry_backoff": "0s", "channels": '["ops"]', "failure_threshold": 2, **defaults}
        (tmp_path / "monitors.yaml").write_text(
            "defaults:\n" + "".join(f"  {k}: {v}\n" for k, v in opts.items())
            + 'channels:\n  ops: "${OPS_URL}"\n'
            + f"monitors:\n  - name: api\n    url: {target.url('/health')}\n"
        )

    def run(*args, extra_env=None):
        return CLI.run(args, cwd=tmp_path, env={**env, **(extra_env or {})}, timeout=180)

    write()
    return type("World", (), {"target": target, "receiver": receiver, "run": staticmethod(run),
                              "write": staticmethod(write), "dir": tmp_path, "api": prefect_api})


def no_secret(proc):
    assert CANARY not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_down_twice_one_down_then_up_one_resolved(world):
    first = world.run("run")
    assert first.returncode == 1, first.stderr[-2000:]
    assert "unconfirmed, 1 of 2" in first.stderr + first.stdout
    assert world.receiver.titles() == []
    second = world.run("run")
    assert second.returncode == 1
    assert world.receiver.titles() == ["DOWN: api"]
    world.target.status = 200
    third = world.run("run", "--json")
    assert third.returncode == 0, third.stderr[-2000:]
    third_run_id = json.loads(third.stdout)["flow_run_id"]
    titles = world.receiver.titles()
    assert len(titles) == 2 and titles[1].startswith("RESOLVED: api (down ")
    assert "First error: expected HTTP 2xx, got HTTP 503" in world.receiver.messages[1]["message"]
    for proc in (first, second, third):
        no_secret(proc)

    status = world.run("status", "--json")
    assert status.returncode == 0
    (row,) = json.loads(status.stdout)["monitors"]
    assert row["status"] == "UP" and abs(row["uptime_24h"] - 33.33) < 0.01 and row["p95_ms"] is not None
    history = json.loads(world.run("history", "api", "--json", "--limit", "2").stdout)
    assert [c["ok"] for c in history["checks"]] == [True, False]
    assert (world.dir / ".alerting" / "state.db").exists()

    # the last flow run published the same status table as a Prefect table artifact (read that
    # run's own: other tests' runs publish under the same key on this server)
    import httpx

    found = httpx.post(
        f"{world.api}/artifacts/filter",
        json={"artifacts": {"key": {"any_": ["service-status"]}, "flow_run_id": {"any_": [third_run_id]}},
              "sort": "CREATED_DESC", "limit": 1},
        timeout=10,
    ).json()
    table = json.loads(found[0]["data"]) if isinstance(found[0]["data"], str) else found[0]["data"]
    assert table[0]["monitor"] == "api" and table[0]["status"] == "UP" and table[0]["this_run"] == "ok"
    assert "uptime_24h" in table[0] and "p95_ms" in table[0]


def test_a_channel_that_fails_then_recovers_gets_the_alert_once_late(world):
    world.write(failure_threshold=1)
    world.receiver.fail_with = 500
    first = world.run("run")
    assert first.returncode == 1
    assert "not sent 'DOWN: api'" in first.stdout
    # the run's deliverer tries (and once more in its closing pass), then its on_failure hook: tests
    # wait 0 s between attempts; the default 30 s backoff leaves those two nothing to retry
    assert world.receiver.titles() == [] and 1 <= world.receiver.refused <= 3
    world.receiver.fail_with = None
    second = world.run("run")
    assert second.returncode == 1
    assert world.receiver.titles() == ["DOWN: api"]
    assert "Delivered late: this alert is from" in world.receiver.messages[0]["message"]
    no_secret(first)
    no_secret(second)


@pytest.mark.slow
def test_silence_commands_and_bad_input(world):
    ok = world.run("silence", "api", "--for", "2h", "--reason", "planned deploy")
    assert ok.returncode == 0 and "api silenced for 2h" in ok.stdout
    row = json.loads(world.run("status", "--json").stdout)["monitors"][0]
    assert row["silence_reason"] == "planned deploy" and row["silenced_until"]
    assert world.run("unsilence", "api").returncode == 0
    assert json.loads(world.run("status", "--json").stdout)["monitors"][0]["silenced_until"] is None

    for args, expected in [
        (("silence", "nope", "--for", "1h"), "no monitor named 'nope'"),
        (("silence", "api", "--for", "soon"), "--for: expected a duration"),
        (("history", "ghost"), "no monitor named 'ghost'"),
    ]:
        proc = world.run(*args)
        assert proc.returncode == 2 and expected in proc.stderr, (args, proc.stderr)
        no_secret(proc)

    text = (world.dir / "monitors.yaml").read_text()
    (world.dir / "monitors.yaml").write_text(
        text + "  - {name: broken, url: 'http://127.0.0.1:9/', renotify_every: sometimes}\n"
    )
    status = world.run("status")
    assert status.returncode == 2 and "api" in status.stdout
    assert "monitor 'broken': field 'renotify_every'" in status.stderr
    history = world.run("history", "broken")
    assert history.returncode == 2 and "monitor 'broken': field 'renotify_every'" in history.stderr
    no_secret(status)

    world.write(failure_threshold=0)
    bad = world.run("validate")
    assert bad.returncode == 2 and "field 'defaults.failure_threshold'" in bad.stderr
    no_secret(bad)
    world.write()
    with open(world.dir / "monitors.yaml", "a") as f:
        f.write("state_url: 'nosuchdb://x'\n")
    for command in (("status",), ("run",)):
        proc = world.run(*command)
        assert proc.returncode == 2 and "field 'state_url'" in proc.stderr, proc.stderr
        no_secret(proc)
