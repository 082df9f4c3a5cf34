"""``alerting automations``: config, apply/list/delete, and the automations firing on a real server.

One Prefect server for this module (free port, temporary PREFECT_HOME, fast scheduler, late-run and
proactive loops), a real served monitor (``alerting serve`` subprocess), a real webhook receiver
behind Prefect's own ``custom-webhook`` notification block. Waits are bounded polls, no fixed sleeps.
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from toolkit import PrefectServer, free_port, kill, retry_api, wait_for
from toolkit.forked_cli import CLI

ALERTING = str(Path(sys.executable).parent / "alerting")
CANARY = "CANARY-5be1d0"
FAST = {  # our own server: fast loops so the test takes seconds, not minutes
    "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "1",
    "PREFECT_SERVER_EVENTS_PROACTIVE_GRANULARITY": "PT1S",
    "PREFECT_SERVER_SERVICES_LATE_RUNS_LOOP_SECONDS": "1",
    "PREFECT_SERVER_SERVICES_LATE_RUNS_AFTER_SECONDS": "5",
}
SERVER: list[PrefectServer] = []


@pytest.fixture(scope="module")
def server():
    with PrefectServer(extra_env=FAST) as started:
        SERVER[:] = [started]
        try:
            yield started.api_url
        finally:
            SERVER.clear()


def cli_env(api: str) -> dict:
    env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_UI_URL": api.removesuffix("/api")}
    env["PREFECT_RUNNER_POLL_FREQUENCY"] = "1"
    return env


def run(api: str, *args, cwd=None):
    return CLI.run(args, cwd=cwd, env=cli_env(api), timeout=120)


@contextmanager
def client_for(api: str):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        yield client


def make_deployment(api: str, name: str, every: float = 30.0) -> None:
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.schedules import IntervalSchedule

    with client_for(api) as client:
        flow_id = client.create_flow_from_name("service-monitor")
        schedule = DeploymentScheduleCreate(schedule=IntervalSchedule(interval=timedelta(seconds=every)), active=False)
        client.create_deployment(flow_id=flow_id, name=name, schedules=[schedule])


def make_block(api: str, name: str, url: str) -> None:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.settings import PREFECT_API_URL, temporary_settings

    block = CustomWebhookNotificationBlock(
        name="alerting test", url=url, json_data={"title": "{{subject}}", "message": "{{body}}", "via": "server"},
    )
    with temporary_settings(updates={PREFECT_API_URL: api}):
        retry_api(lambda: block.save(name, overwrite=True), what=f"saving block {name}")


def covered(api: str, deployment: str) -> bool:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.automations_api import covers_runs

    with temporary_settings(updates={PREFECT_API_URL: api}):
        return covers_runs(deployment)


def write(tmp_path: Path, text: str, name: str = "monitors.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def assert_clean_error(proc, *needles):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr
    assert CANARY not in proc.stdout + proc.stderr


def changes(proc) -> dict[str, str]:
    """``{automation name: created/updated/unchanged/deleted}`` from apply's output."""
    found = {}
    for line in proc.stdout.splitlines():
        parts = line.strip().split(" ", 1)
        if len(parts) == 2 and parts[0] in ("created", "updated", "unchanged", "deleted"):
            found[parts[1]] = parts[0]
    return found


# --- config (no server) ---------------------------------------------------------------------------


def test_config_errors_name_the_file_and_field():
    from alerting.config import parse_config

    cfg = parse_config(
        "automations: {block: 'slack/x', mode: all, stale_after: 0.5x, late_after: 2s, colour: red}\n", "m.yaml"
    )
    text = "\n".join(str(p) for p in cfg.problems)
    assert "m.yaml: field 'automations.block': expected block:<block-type-slug>/<document-name>" in text
    assert "m.yaml: field 'automations.mode': Input should be 'hook', 'automation' or 'both'" in text
    assert "m.yaml: field 'automations.stale_after': use at least 1x" in text
    assert "m.yaml: field 'automations.late_after': at least 10s" in text
    assert "m.yaml: field 'automations.colour': unknown field" in text
    assert cfg.automations is None  # a bad section alerts the safe way: hooks on every channel
    good = parse_config("automations: {block: 'block:slack-webhook/team', stale_after: 90s}\n", "m.yaml")
    assert good.automations.stale_seconds(30) == 90 and good.automations.mode == "both"
    assert parse_config("automations: {block: 'block:slack-webhook/t'}\n", "m").automations.stale_seconds(30) == 90
    assert parse_config("automations: {block: 'block:s/t', stale_after: 2x}\n", "m").automations.stale_seconds(2) == 10


@pytest.mark.parametrize(
    "mode, served, unserved",
    [("both", ["other"], ["ops", "other"]), ("automation", [], ["ops", "other"]), ("hook", ["ops", "other"], ["ops", "other"])],
)
def test_hook_channels_per_mode(mode, served, unserved):
    """With both, the hook skips only the automation's own channel, and only for the watched deployment."""
    from alerting.config import parse_config
    from alerting.server_alerts import hook_specs

    cfg = parse_config(
        "channels: {ops: 'block:custom-webhook/ops', other: 'json://127.0.0.1:9/x'}\n"
        f"automations: {{block: 'block:custom-webhook/ops', mode: {mode}}}\n"
        "monitors: [{name: a, url: 'http://x', channels: [ops, other]}]\n", "m.yaml",
    )
    assert hook_specs(cfg, cfg.monitors, "service-monitor/service-monitor")[0].channels == served
    assert hook_specs(cfg, cfg.monitors, None)[0].channels == unserved  # alerting run: no deployment
    assert hook_specs(cfg, cfg.monitors, "service-monitor/other")[0].channels == unserved


# --- CLI against a server -------------------------------------------------------------------------


def test_unreachable_server_and_missing_things_exit_2(server, tmp_path):
    config = write(tmp_path, "automations: {block: 'block:custom-webhook/nope', deployment: service-monitor/nope}\n")
    dead = f"http://127.0.0.1:{free_port()}/api"
    for args in (["apply", "-c", str(config)], ["list"], ["delete"]):
        proc = run(dead, "automations", *args)
        assert_clean_error(proc, f"the Prefect API at {dead} does not answer")
    proc = run(server, "automations", "apply", "-c", str(config))
    assert_clean_error(proc, "field 'automations.deployment': no deployment 'service-monitor/nope'")
    make_deployment(server, "blockless")
    config = write(tmp_path, f"automations: {{block: 'block:custom-webhook/nope-{CANARY[:6].lower()}', "
                             "deployment: service-monitor/blockless}\n")
    proc = run(server, "automations", "apply", "-c", str(config))
    assert_clean_error(proc, "field 'automations.block': no block document 'block:custom-webhook/nope-")
    proc = run(server, "automations", "apply", "-c", str(write(tmp_path, "monitors: []\n", "none.yaml")))
    assert_clean_error(proc, "no 'automations:' section")
    proc = run(server, "automations", "apply", "-c", str(write(tmp_path, "automations: {mode: x}\n", "bad.yaml")))
    assert_clean_error(proc, "bad.yaml: field 'automations.block': required field is missing")


def test_apply_is_idempotent_and_list_delete_touch_only_ours(server, tmp_path):
    from prefect.events.actions import DoNothing
    from prefect.events.schemas.automations import AutomationCore, EventTrigger

    make_deployment(server, "idem", every=20)
    make_block(server, "idem-hook", f"http://127.0.0.1:9/{CANARY}")
    text = "automations: {block: 'block:custom-webhook/idem-hook', deployment: service-monitor/idem, stale_after: 3x}\n"
    config = write(tmp_path, text)
    assert not covered(server, "service-monitor/idem")  # not applied yet: the hooks alert every channel
    first = run(server, "automations", "apply", "-c", str(config))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "runs every 20s (deployment schedule); 'not running' after 1m" in first.stdout
    made = changes(first)
    assert len(made) == 5 and set(made.values()) == {"created"}, first.stdout
    second = run(server, "automations", "apply", "-c", str(config))
    assert second.returncode == 0 and set(changes(second).values()) == {"unchanged"}, second.stdout
    assert changes(second).keys() == made.keys()
    assert covered(server, "service-monitor/idem")  # applied: with mode both the hook leaves the block alone
    assert CANARY not in first.stdout + first.stderr + second.stdout + second.stderr

    changed = run(server, "automations", "apply", "-c", str(write(tmp_path, text.replace("3x", "4x"))))
    assert changes(changed)["alerting: service-monitor/idem: monitor not running"] == "updated"
    hook_only = run(server, "automations", "apply", "-c", str(write(tmp_path, text.replace("}", ", mode: hook}"))))
    assert changes(hook_only)["alerting: service-monitor/idem: run failed"] == "deleted"
    assert not covered(server, "service-monitor/idem")

    with client_for(server) as client:  # someone else's automation, and one with our name but not our tag
        for name in ("someone else's", "alerting: service-monitor/idem: run failed"):
            client.create_automation(AutomationCore(
                name=name, trigger=EventTrigger(expect={"x.y"}), actions=[DoNothing()]))
    listed = run(server, "automations", "list", "--json")
    names = [a["name"] for a in json.loads(listed.stdout)["automations"]]
    assert sorted(names) == sorted(n for n, s in changes(hook_only).items() if s != "deleted")
    gone = run(server, "automations", "delete", "--deployment", "service-monitor/idem")
    assert gone.returncode == 0 and "3 automation(s) deleted" in gone.stdout, gone.stdout
    with client_for(server) as client:
        left = sorted(a.name for a in client.read_automations())
    assert "someone else's" in left and "alerting: service-monitor/idem: run failed" in left
    assert not [n for n in left if n.startswith("alerting: service-monitor/idem: monitor")]


# --- the automations firing -----------------------------------------------------------------------


def _serve(start_process, api: str, config: Path, name: str, log: Path):
    # Prefect's runner: after a restart it runs the runs that came due while the monitor was dead,
    # late, which is what the LATE automation is about (the default mode skips them: its checks never
    # waited for runs, and the watcher has reported the silence). Every run is a new process
    # importing Prefect (seconds of CPU): a run every 10 s, not every 4 s, leaves a busy 2-core
    # machine room for the server's triggers that this test waits on
    return start_process([ALERTING, "serve", "-c", str(config), "--interval", "10s", "--name", name,
                          "--runner", "prefect"], cwd=config.parent, env=cli_env(api), log=log)


def _wait(predicate, timeout: float, what: str, log: Path | None = None):
    def details() -> str:
        tail = log.read_text()[-2000:] if log and log.exists() else ""
        return tail + ("\n" + SERVER[0].log_tail() if SERVER else "")

    return wait_for(predicate, timeout, interval=0.2, what=what, details=details)


def _runs(api: str, deployment: str):
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with client_for(api) as client:
        dep = client.read_deployment_by_name(deployment)
        return client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id])))


def _deployment_exists(api: str, name: str) -> bool:
    try:
        with client_for(api) as client:
            client.read_deployment_by_name(name)
        return True
    except Exception:  # noqa: BLE001 - not there yet
        return False


@pytest.mark.slow
def test_served_monitor_failed_run_recovery_watcher_and_late(server, tmp_path, target, receiver, start_process):
    """The issue's 'done when': a failed run gives a server-side DOWN within seconds and a RESOLVED
    when runs complete again; killing the served monitor gives 'monitor is not running' (and LATE),
    restarting it 'monitor is running again'. With mode both, the hook leaves the automation's
    channel alone: one DOWN per channel."""
    dep = "service-monitor/e2e"
    make_block(server, "e2e-ops", f"http://127.0.0.1:{receiver.port}/server/{CANARY}")
    target.route("/api", statuses=[200])
    config = write(tmp_path, f"""
defaults: {{attempts: 1, retry_backoff: 0, retry_backoff_max: 0}}
channels:
  ops: "block:custom-webhook/e2e-ops"
  other: "{receiver.apprise_url('/hook')}"
monitors:
  - {{name: api, url: "{target.url('/api')}", channels: [ops, other]}}
automations:
  block: "block:custom-webhook/e2e-ops"
  deployment: {dep}
  stale_after: 3x
  late_after: 10s
""")
    log = tmp_path / "serve.log"
    serving = _serve(start_process, server, config, "e2e", log)  # stopped with its flow runs by the fixture
    _wait(lambda: _deployment_exists(server, dep), 60, "the served deployment", log)
    applied = run(server, "automations", "apply", "-c", str(config))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "runs every 10s" in applied.stdout and "'not running' after 30s" in applied.stdout
    since = datetime.now(timezone.utc) + timedelta(seconds=1)  # automations are loaded by then
    _wait(lambda: [r for r in _runs(server, dep) if r.state and r.state.is_completed() and r.end_time
                   and r.end_time > since], 120, "a Completed run after apply", log)

    def server_titles(prefix, since_message=0):
        return [m for m in receiver.messages[since_message:]
                if m.get("via") == "server" and m["title"].startswith(prefix)]

    target.route("/api", statuses=[503])
    down = _wait(lambda: server_titles(f"DOWN: {dep} run"), 60, "the server-side DOWN", log)[0]
    received = datetime.now(timezone.utc)
    assert "1 of 1 service down: api (HTTP 503" in down["message"]
    assert "/runs/flow-run/" in down["message"]
    failed = [r for r in _runs(server, dep) if r.state and r.state.is_failed()]
    print(f"Failed -> webhook: {(received - min(r.state.timestamp for r in failed)).total_seconds():.2f}s")
    _wait(lambda: [m for m in receiver.messages if m["title"] == "DOWN: api"], 60, "the hook's DOWN", log)
    target.route("/api", statuses=[200])
    back = _wait(lambda: server_titles(f"RESOLVED: {dep} runs complete again"), 60, "the RESOLVED", log)[0]
    assert "all 1 service up" in back["message"]
    # one DOWN per channel: the hook sent DOWN: api to 'other' only, the server to its block only
    hook_downs = [m for m in receiver.messages if m["title"] == "DOWN: api"]
    assert len(hook_downs) == 1 and "via" not in hook_downs[0]

    # kill the monitor and every flow run it started (they run in sessions of their own: one that
    # survived would finish later and re-arm the watcher, which then fired a second time)
    kill(serving)
    killed, seen = time.monotonic(), len(receiver.messages)
    _wait(lambda: server_titles("DOWN: monitor is not running", seen), 90, "the watcher's alert")  # window 30 s
    print(f"kill -> 'monitor is not running': {time.monotonic() - killed:.1f}s (window 30s)")

    serving = _serve(start_process, server, config, "e2e", log)
    restarted = time.monotonic()
    # two Prefect process starts (serve, then its first flow run) before the resolve: 109 s measured
    # at load average 45 on the 2-core machine
    again = _wait(lambda: server_titles("RESOLVED: monitor is running again", seen), 240, "the watcher's resolve", log)
    print(f"restart -> 'running again': {time.monotonic() - restarted:.1f}s")
    silence = receiver.messages[seen:]
    silence = silence[:silence.index(again[0])]  # from the kill to the restart's resolve
    not_running = [m for m in silence if m.get("via") == "server" and m["title"].startswith("DOWN: monitor is not")]
    assert len(not_running) == 1, [m["title"] for m in silence]  # once per silence, no repeats
    late = _wait(lambda: server_titles(f"LATE: {dep} run started"), 60, "the late-run alert", log)
    assert "late (the bound is 10s)" in late[0]["message"]
    assert dep in again[0]["title"]
    everything = json.dumps(receiver.messages)
    assert CANARY not in everything

