"""status, history, silence, unsilence (and drill) through real subprocesses: monitors made as
Service Monitor blocks are known to every command that takes a monitor name; status fits 80
columns when not on a terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from toolkit.forked_cli import CLI

ALERTING = str(Path(sys.executable).parent / "alerting")


def run(*args, env=None, cwd=None):
    """``subprocess.run`` of ``alerting *args``, forked from a helper that imported the CLI (toolkit.forked_cli)."""
    return CLI.run(args, cwd=cwd, env=env or os.environ.copy(), timeout=120)


def without_prefect_api(tmp_path: Path) -> dict:
    """No PREFECT_API_URL and a PREFECT_HOME of its own: no server by the rule (unless something
    answers at 127.0.0.1:4200, which the tests never start)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_UI_URL", "COLUMNS")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    return env


def save_blocks(api_url: str, code: str) -> None:
    """Make blocks on the server at ``api_url`` in a process of its own (Prefect caches block schema
    ids per class, so one process never talks to two servers)."""
    env = {**os.environ, "PREFECT_API_URL": api_url}
    script = "from blocks.channels import AppriseChannel\nfrom blocks.monitor import ServiceMonitor\n" + code
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_status_fits_80_columns_when_piped_and_wide_shows_everything(tmp_path, write_config):
    long_name = "checkout-service-of-the-european-shop-behind-the-load-balancer"
    config = write_config(
        f"monitors:\n  - {{name: {long_name}, url: 'http://127.0.0.1:9/a'}}\n"
        "  - {name: db, url: 'http://127.0.0.1:9/b'}\n"
    )
    env = without_prefect_api(tmp_path)
    reason = "database cluster upgrade to the next major version, announced in the ops channel"
    assert run("silence", "db", "-c", str(config), "--for", "2h", "--reason", reason, env=env).returncode == 0
    narrow = run("status", "-c", str(config), env=env)
    assert narrow.returncode == 0, narrow.stderr
    lines = narrow.stdout.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80, narrow.stdout
    header = next((i for i, line in enumerate(lines) if line.split()[:2] == ["monitor", "status"]), None)
    assert header is not None, narrow.stdout
    first_column = "".join(line[: lines[header].index("status")].strip() for line in lines[header + 2:])
    assert long_name in first_column  # wrapped, never cut
    assert "silenced until" in narrow.stdout and "UNKNOWN" in narrow.stdout
    wide = run("status", "-c", str(config), "--wide", env=env)
    assert wide.returncode == 0, wide.stderr
    assert any(long_name in line and "UNKNOWN" in line for line in wide.stdout.splitlines()), wide.stdout
    assert any(reason in line for line in wide.stdout.splitlines()), wide.stdout
    header = next(line for line in wide.stdout.splitlines() if line.startswith("monitor"))
    assert header.split()[:9] == ["monitor", "status", "since", "24h", "7d", "30d", "p50", "p95", "last"]


@pytest.mark.slow
def test_block_monitors_are_known_to_every_command_that_takes_a_monitor_name(tmp_path, write_config, prefect_server):
    # the block tests' server, not the session's: a block monitor there would be checked by every
    # `alerting run` of the tests running beside this one (the other xdist workers)
    api = prefect_server.api_url
    tag = f"t{uuid.uuid4().hex[:8]}"
    name = f"shop-api-{tag}"
    save_blocks(api, f"ServiceMonitor(url='http://127.0.0.1:9/shop', channels=[], tags=['{tag}']).save('{name}')")
    try:  # every flow run on the session's server would check it too: gone at the end
        _commands_know_the_block_monitor(name, tag, tmp_path, write_config, prefect_server.env)
    finally:
        block = httpx.get(f"{api}/block_types/slug/service-monitor/block_documents/name/{name}", timeout=30)
        httpx.delete(f"{api}/block_documents/{block.json()['id']}", timeout=30).raise_for_status()


def _commands_know_the_block_monitor(name, tag, tmp_path, write_config, server_env):
    config = write_config("monitors:\n  - {name: yaml-one, url: 'http://127.0.0.1:9/y'}\n")
    env = {**os.environ, **server_env, "ALERTING_MONITOR_TAG": tag}  # only this test's block monitors

    silenced = run("silence", name, "-c", str(config), "--for", "1h", "--reason", "UI-made", env=env)
    assert silenced.returncode == 0, silenced.stdout + silenced.stderr
    assert f"{name} silenced for 1h" in silenced.stdout
    status = run("status", "-c", str(config), "--json", env=env)
    assert status.returncode == 0, status.stdout + status.stderr
    rows = {r["monitor"]: r for r in json.loads(status.stdout)["monitors"]}
    assert set(rows) == {"yaml-one", name}
    assert rows[name]["silenced_until"] and rows[name]["silence_reason"] == "UI-made"
    history = run("history", name, "-c", str(config), env=env)
    assert history.returncode == 0 and f"{name}: last 0 check(s)" in history.stdout, history.stdout + history.stderr
    unsilenced = run("unsilence", name, "-c", str(config), env=env)
    assert unsilenced.returncode == 0 and f"{name} is no longer silenced" in unsilenced.stdout
    drill = run("drill", name, "-c", str(config), env=env)  # found; it has no channels, so: bad input
    assert drill.returncode == 2 and "no channels, so a drill would alert nobody" in drill.stderr, drill.stderr
    for proc in (silenced, status, history, unsilenced, drill):
        assert "Traceback" not in proc.stdout + proc.stderr

    # no Prefect API: one line says so, YAML monitors still work, the block monitor is unknown
    env = without_prefect_api(tmp_path)
    status = run("status", "-c", str(config), env=env)
    assert status.returncode == 0, status.stderr
    notes = [line for line in status.stderr.splitlines() if line.strip()]
    assert len(notes) == 1 and "Service Monitor blocks not included" in notes[0], status.stderr
    assert "yaml-one" in status.stdout
    unknown = run("silence", name, "-c", str(config), "--for", "1h", env=env)
    assert unknown.returncode == 2 and f"no monitor named '{name}'" in unknown.stderr
    assert "Traceback" not in status.stderr + unknown.stderr
