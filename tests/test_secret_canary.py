"""One canary secret, placed everywhere a secret can go, must appear nowhere (issue 10).

The canary sits in a channel URL (from ``${OPS_URL}``: path and ``+X-Token`` header), in monitor
URLs (user info, query values named ``token``/``jwt``/``sid``, a ``/ping/<token>`` path segment, and
a plain-looking path segment that came from ``${SVC_TOKEN}``), in monitor headers, in a tcp monitor's
URL and ``send`` line and a JSON condition whose failure reports the value seen (issue 12), in an Apprise
Channel block and in a Service Monitor block (URL and headers). Every command then runs as a real
subprocess against a real Prefect server of this module (free port, own PREFECT_HOME), a real local
target answering 503 and a real json:// receiver; the canary must not be in:

* any command's stdout or stderr (validate, check, check --json, run, run --json, status, notify, drill,
  history, blocks list, status-page build);
* every file of the public status page (index.html, status.json, badges);
* the alert bodies the receiver got;
* the state store (every row of every table of the SQLite file);
* the Prefect database: logs, events, artifacts, flow and task run parameters, block documents read
  without secrets (through the API), and every table of the server's SQLite file.

The canary (13 letters and digits) is too short to be masked for looking random: only the rules by
name, by position and by ``${VAR}`` origin hide it.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from toolkit import PrefectServer, Receiver, Target, free_port

ALERTING = str(Path(sys.executable).with_name("alerting"))
CANARY = "Canary7" + uuid.uuid4().hex[:6].replace("a", "k").replace("b", "q")  # not hex, < 16 chars
COMMAND_TIMEOUT = 240

# Leaks that remain in files this change does not own: place -> reason (xfail, strict: remove when fixed).
KNOWN_LEAKS: dict[str, str] = {}


def _cli(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run ``alerting ARGS`` in its own process group; kill the group if it overruns."""
    proc = subprocess.Popen(
        [ALERTING, *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"alerting {' '.join(args)} did not finish in {COMMAND_TIMEOUT}s:\n{out}\n{err}") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _dump_sqlite(path: Path) -> str:
    """Every row of every table, as text."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


def _paged_post(client: httpx.Client, path: str, body: dict, limit: int = 200) -> list[dict]:
    found: list[dict] = []
    while True:
        page = client.post(path, json={**body, "limit": limit, "offset": len(found)})
        page.raise_for_status()
        batch = page.json()
        found.extend(batch)
        if len(batch) < limit:
            return found


def _all_events(client: httpx.Client) -> list[dict]:
    answer = client.post("/events/filter", json={"limit": 50})
    answer.raise_for_status()
    page = answer.json()
    events = list(page["events"])
    while page.get("next_page"):
        answer = client.get(page["next_page"])
        answer.raise_for_status()
        page = answer.json()
        events.extend(page["events"])
    return events


def _poll(what: str, probe, timeout: float = 60):
    """Call ``probe`` until it returns something truthy; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.25)


@pytest.fixture(scope="module")
def canary_world(tmp_path_factory):
    """Run every command once with the canary everywhere; return {place: text that was shown}."""
    home = tmp_path_factory.mktemp("canary-prefect-home")
    work = tmp_path_factory.mktemp("canary-work")
    port = free_port()
    server = PrefectServer(home, port).start()
    target, receiver = Target(), Receiver()
    api = f"http://127.0.0.1:{port}/api"
    try:
        target.route(f"/ping/{CANARY}", statuses=[503])
        target.route(f"/env/{CANARY}", statuses=[503])
        target.route(f"/shop/{CANARY}", statuses=[503])
        target.route("/session", statuses=[200], body=json.dumps({"session": CANARY}).encode())
        env = {
            **os.environ,
            "PREFECT_API_URL": api,
            "PREFECT_UI_URL": f"http://127.0.0.1:{port}",
            "PREFECT_HOME": str(work / "client-home"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.3",
            "ALERTING_APPRISE_PACING": "off",
            "ALERTING_DELIVERY_RETRY_WAIT": "0",
            "COLUMNS": "250",
            "OPS_URL": receiver.apprise_url(f"/ops/{CANARY}", f"+X-Token={CANARY}"),
            "SVC_TOKEN": CANARY,
        }
        env.pop("ALERTING_MONITOR_TAG", None)
        tp = target.port
        config = work / "monitors.yaml"
        config.write_text(
            "storm_threshold: 0\n"  # one alert per monitor: each text is checked, not one storm summary
            "defaults:\n  attempts: 1\n  retry_backoff: 0s\n  timeout: 5s\n  channels: [ops]\n"
            'channels:\n  ops: "${OPS_URL}"\n'
            "monitors:\n"
            f"  - name: api-canary\n"
            f"    url: 'http://user:{CANARY}@127.0.0.1:{tp}/ping/{CANARY}?token={CANARY}&jwt={CANARY}&sid={CANARY}&page=1'\n"
            f"    headers: {{Authorization: 'Bearer {CANARY}', X-Api-Key: '{CANARY}'}}\n"
            f"  - name: env-canary\n"
            f"    url: 'http://127.0.0.1:{tp}/env/${{SVC_TOKEN}}'\n"
            f"    headers: {{X-Env: '${{SVC_TOKEN}}'}}\n"
            f"  - name: refused-canary\n"
            f"    url: 'http://127.0.0.1:{free_port()}/ping/{CANARY}?access_token={CANARY}'\n"
            # the check types (issue 12): a tcp line to send, a JSON condition, both from ${SVC_TOKEN}
            f"  - name: tcp-canary\n"
            f"    url: 'tcp://user:{CANARY}@127.0.0.1:{free_port()}'\n"
            f"    send: 'AUTH {CANARY} ${{SVC_TOKEN}}'\n"
            f"  - name: json-canary\n"
            f"    url: 'http://127.0.0.1:{tp}/session'\n"
            f"    conditions: ['$.session != ${{SVC_TOKEN}}']\n"
        )

        from prefect.settings import PREFECT_API_URL, temporary_settings

        from blocks import AppriseChannel, ServiceMonitor

        with temporary_settings({PREFECT_API_URL: api}):
            AppriseChannel(url=receiver.apprise_url(f"/team/{CANARY}", f"+X-Token={CANARY}")).save("team-canary")
            ServiceMonitor(
                url=f"http://127.0.0.1:{tp}/shop/{CANARY}?api_key={CANARY}", headers={"X-Key": CANARY},
                channels=["team-canary"],
            ).save("shop-canary")

        shown: dict[str, str] = {}
        runs: dict[str, subprocess.CompletedProcess] = {}
        check_url = f"http://user:{CANARY}@127.0.0.1:{tp}/ping/{CANARY}?token={CANARY}&jwt={CANARY}"
        for label, args in [
            ("validate", ["validate", "-c", str(config)]),
            ("check", ["check", check_url, "--attempts", "1"]),
            ("check --json", ["check", check_url, "--attempts", "1", "--json"]),
            ("run", ["run", "-c", str(config)]),
            ("run --json", ["run", "-c", str(config), "--json"]),
            ("status", ["status", "-c", str(config)]),
            ("status --json", ["status", "-c", str(config), "--json"]),
            ("notify", ["notify", "ops", "-c", str(config)]),
            ("drill", ["drill", "api-canary", "-c", str(config)]),
            ("history", ["history", "api-canary", "-c", str(config)]),
            ("history --json", ["history", "refused-canary", "-c", str(config), "--json"]),
            ("blocks list", ["blocks", "list"]),
            ("blocks list -c", ["blocks", "list", "-c", str(config)]),
            ("status-page build", ["status-page", "build", "-c", str(config), "--out", str(work / "site")]),
        ]:
            proc = _cli(args, work, env)
            runs[label] = proc
            shown[f"stdout+stderr of alerting {label}"] = proc.stdout + proc.stderr

        # not vacuous: the outages were seen and alerted, through the YAML channel and the block channel
        assert runs["validate"].returncode == 0, runs["validate"].stdout + runs["validate"].stderr
        assert runs["run"].returncode == 1, runs["run"].stdout + runs["run"].stderr
        assert runs["notify"].returncode == 0, runs["notify"].stdout + runs["notify"].stderr
        titles = _poll("DOWN alerts for the three monitors", lambda: (
            {t for t in receiver.titles() if "DOWN" in t}
            >= {"DOWN: api-canary", "DOWN: env-canary", "DOWN: shop-canary", "DOWN: refused-canary",
                "DOWN: tcp-canary", "DOWN: json-canary"}
            and receiver.titles()))
        assert any("[DRILL] DOWN: api-canary" in t for t in titles), titles
        shown["alert bodies received"] = json.dumps(receiver.messages)

        assert runs["status-page build"].returncode == 0, runs["status-page build"].stderr
        shown["status page (every file of the site)"] = "\n".join(
            p.read_text() for p in sorted((work / "site").rglob("*")) if p.is_file())
        assert "api-canary" in shown["status page (every file of the site)"]

        store = work / ".alerting" / "state.db"
        shown["state store (every table)"] = _dump_sqlite(store)
        assert "DOWN: api-canary" in shown["state store (every table)"]

        with httpx.Client(base_url=api, timeout=30) as client:
            logs = _poll("run logs in the Prefect API", lambda: _paged_post(client, "/logs/filter", {}))
            shown["Prefect logs"] = json.dumps(logs)
            shown["Prefect events"] = json.dumps(
                _poll("flow run events", lambda: [e for e in _all_events(client)] if any(
                    e["event"].startswith("prefect.flow-run.") for e in _all_events(client)) else None))
            shown["Prefect artifacts"] = json.dumps(_paged_post(client, "/artifacts/filter", {}))
            flow_runs = _paged_post(client, "/flow_runs/filter", {})
            assert flow_runs, "no flow runs recorded"
            shown["Prefect flow run parameters and states"] = json.dumps(
                [{"parameters": r["parameters"], "state": r.get("state"), "name": r["name"]} for r in flow_runs])
            shown["Prefect task runs"] = json.dumps(_paged_post(client, "/task_runs/filter", {}))
            docs = _paged_post(client, "/block_documents/filter", {"include_secrets": False})
            assert {"team-canary", "shop-canary"} <= {d["name"] for d in docs}
            shown["Prefect block documents (include_secrets false)"] = json.dumps(docs)
        shown["Prefect database file (every table)"] = _dump_sqlite(home / "prefect.db")
        yield shown
    finally:
        target.close()
        receiver.close()
        server.stop()


PLACES = [
    *(f"stdout+stderr of alerting {c}" for c in
      ("validate", "check", "check --json", "run", "run --json", "status", "status --json", "notify", "drill",
       "history", "history --json", "blocks list", "blocks list -c", "status-page build")),
    "status page (every file of the site)",
    "alert bodies received",
    "state store (every table)",
    "Prefect logs",
    "Prefect events",
    "Prefect artifacts",
    "Prefect flow run parameters and states",
    "Prefect task runs",
    "Prefect block documents (include_secrets false)",
    "Prefect database file (every table)",
]


@pytest.mark.parametrize(
    "place",
    [pytest.param(p, marks=pytest.mark.xfail(reason=KNOWN_LEAKS[p], strict=True)) if p in KNOWN_LEAKS else p
     for p in PLACES],
)
def test_the_canary_appears_nowhere(canary_world, place):
    text = canary_world[place]
    assert text, f"{place}: nothing captured"
    if CANARY in text:
        at = text.index(CANARY)
        raise AssertionError(f"the canary secret leaks into {place}: ...{text[max(0, at - 300):at + 100]}...")


def test_an_invalid_monitor_url_is_reported_without_its_secrets(tmp_path):
    config = tmp_path / "monitors.yaml"
    config.write_text(
        "monitors:\n"
        f"  - name: ftp\n    url: 'ftp://user:{CANARY}@example.com/?token={CANARY}'\n"
        f"  - name: port\n    url: 'https://example.com:99999/?token={CANARY}'\n"
    )
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    validate = _cli(["validate", "-c", str(config)], tmp_path, env)
    check = _cli(["check", f"ftp://user:{CANARY}@example.com/?token={CANARY}"], tmp_path, env)
    assert validate.returncode == 2 and check.returncode == 2
    assert "ftp" in validate.stderr and "port" in validate.stderr  # each problem is still named
    assert CANARY not in validate.stdout + validate.stderr + check.stdout + check.stderr
