"""Never silent: each way a monitor used to go quiet, reproduced against real local servers.

1. a self-signed TLS target            -> an outage of kind ``tls``, the other monitors still alert
2. a target that dribbles its body     -> a hard deadline per attempt
3. the Prefect API away                -> ``run`` and ``serve`` (both modes) keep checking and alerting
4. a second ``serve`` of one deployment -> refused; a paused schedule is resumed
5. kill -9 while a DOWN is in flight   -> the stale DOWN never arrives after its RESOLVED
6. a receiver that hangs or drops      -> a bounded number of attempts, then undeliverable + fallback
7. a temporary state-store failure     -> no second alert path, no repeated DOWN

Every check waits on a condition with a deadline; every process is stopped by its process group.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import threading
from datetime import timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from alerting.config import load_config
from alerting.cycle import open_store, run_cycle
from alerting.models import utcnow
from alerting.outbox import LEASE, MAX_ATTEMPTS, deliver_pending
from toolkit import PrefectServer, Receiver, free_port, kill, spawn, stop
from toolkit import wait_for as toolkit_wait_for
from toolkit.forked_cli import CLI

ALERTING = str(Path(sys.executable).with_name("alerting"))
CANARY = "canary-Chaos-91c2e"


def wait_for(condition, timeout: float, what):
    """toolkit.wait_for; ``what``: a description, or a callable giving details (a log) on failure."""
    if callable(what):
        return toolkit_wait_for(condition, timeout, interval=0.2, what="the condition", details=what)
    return toolkit_wait_for(condition, timeout, interval=0.2, what=what)


def run_cli(*args, env=None, cwd=None, timeout=180):
    return CLI.run(args, cwd=cwd, env={**os.environ, **(env or {})}, timeout=timeout)


def clean(proc) -> str:
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output, output[-3000:]
    assert CANARY not in output
    return output


@pytest.fixture
def faulty():
    """A receiver that can hang (hold the request unanswered) or drop (close without an answer)."""
    r = Receiver()
    yield r
    r.close()


def config_for(tmp_path, monitors: dict[str, str], channel: str, extra: str = "", **defaults) -> Path:
    opts = {"attempts": 1, "retry_backoff": 0, "retry_backoff_max": 0, "channels": "[ops]", "flap_threshold": 0,
            "timeout": "3s", **defaults}
    path = tmp_path / "monitors.yaml"
    path.write_text(
        "defaults:\n" + "".join(f"  {k}: {v}\n" for k, v in opts.items())
        + f'channels:\n  ops: "{channel}"\n' + extra
        + "monitors:\n" + "".join(f'  - {{name: {n}, url: "{u}"}}\n' for n, u in monitors.items())
    )
    return path


# --- 1. a bad certificate is one monitor's outage, not a crashed batch ----------------------------

@pytest.fixture(scope="module")
def tls_target(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(folder / "k.pem"),
                    "-out", str(folder / "c.pem"), "-days", "2", "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), SimpleHTTPRequestHandler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "c.pem", folder / "k.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_port}/?token={CANARY}"
    server.shutdown()
    server.server_close()


def test_1_self_signed_certificate_is_a_tls_outage_and_the_others_still_alert(tls_target, tmp_path, target, receiver):
    proc = run_cli("check", tls_target, "--attempts", "1")
    assert proc.returncode == 1
    assert "certificate verify failed: self-signed certificate" in clean(proc)

    target.route("/api", statuses=[503])
    path = config_for(tmp_path, {"secure": tls_target, "api": target.url("/api")}, receiver.apprise_url())
    proc = run_cli("run", "-c", str(path), "--json")
    clean(proc)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    errors = {r["monitor"]: r["error"] for r in report["results"]}
    assert errors == {"secure": "tls", "api": "unexpected_status"}
    assert sorted(receiver.titles()) == ["DOWN: api", "DOWN: secure"]
    assert CANARY not in json.dumps(receiver.messages)
    with open_store(load_config(path)) as store:
        assert set(store.states()) == {"secure", "api"}


# --- 2. a hard deadline per attempt ---------------------------------------------------------------

@pytest.fixture
def drip_target():
    """Answers headers at once, then one body byte every 0.3 s (Content-Length: 10,000)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return

            def drip(c=conn):
                try:
                    c.recv(65536)
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n")
                    while not stop.is_set():
                        c.sendall(b"x")
                        stop.wait(0.3)
                except OSError:
                    pass
                finally:
                    c.close()

            threading.Thread(target=drip, daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/drip"
    stop.set()
    listener.close()


def test_2_a_dribbling_target_is_cut_at_the_timeout(drip_target, tmp_path, target, receiver):
    proc = run_cli("check", drip_target, "--timeout", "2s", "--attempts", "1", timeout=60)
    assert proc.returncode == 1
    assert "no complete answer within 2s" in clean(proc)

    target.route("/ok")
    path = config_for(tmp_path, {"slow": drip_target, "fine": target.url("/ok")}, receiver.apprise_url(),
                      timeout="2s", attempts=2)
    proc = run_cli("run", "-c", str(path), "--json", timeout=120)
    clean(proc)
    results = {r["monitor"]: r for r in json.loads(proc.stdout)["results"]}
    assert results["slow"]["error"] == "timeout" and results["slow"]["attempts"] == 2
    assert results["fine"]["ok"]
    assert receiver.titles() == ["DOWN: slow"]


# --- 3. the Prefect API away -----------------------------------------------------------------------

def test_3a_run_without_a_reachable_api_checks_alerts_and_says_so(tmp_path, target, receiver):
    target.route("/api", statuses=[503])
    path = config_for(tmp_path, {"api": target.url("/api")}, receiver.apprise_url())
    dead_api = f"http://127.0.0.1:{free_port()}/api"
    proc = run_cli("run", "-c", str(path), env={"PREFECT_API_URL": dead_api})
    output = clean(proc)
    assert proc.returncode == 1
    assert "not recorded in Prefect" in proc.stderr and "does not answer" in proc.stderr
    assert receiver.titles() == ["DOWN: api"]
    target.route("/api", statuses=[200])
    proc = run_cli("run", "-c", str(path), env={"PREFECT_API_URL": dead_api})
    assert proc.returncode == 0, output
    assert receiver.titles() == ["DOWN: api", "RESOLVED: api (down 0s)"] or receiver.titles()[1].startswith("RESOLVED")


class ServedMonitor:
    """``alerting serve`` against its own Prefect server (killable, restartable on the same port)."""

    def __init__(self, tmp_path: Path, config: Path, mode: list[str], name: str = "chaos", interval: str = "2s"):
        self.home = tmp_path / "prefect-home"
        self.home.mkdir(exist_ok=True)
        self.port = free_port()
        self.api = f"http://127.0.0.1:{self.port}/api"
        self.server = PrefectServer(self.home, self.port).start()
        self.env = {**os.environ, "PREFECT_API_URL": self.api, "PREFECT_HOME": str(self.home),
                    "PREFECT_RUNNER_POLL_FREQUENCY": "1", "ALERTING_DEGRADE_AFTER": "3"}
        self.env.pop("PREFECT_UI_URL", None)
        self.args = ["serve", "-c", str(config), "--interval", interval, "--name", name, *mode]
        self.procs: list[subprocess.Popen] = []
        self.tmp = tmp_path

    def start(self, log_name: str = "serve.log") -> subprocess.Popen:
        proc = spawn([ALERTING, *self.args], cwd=self.tmp, env=self.env, log=self.tmp / log_name)
        self.procs.append(proc)
        return proc

    def log(self, name: str = "serve.log") -> str:
        return (self.tmp / name).read_text()

    def kill_server(self) -> None:
        assert self.server.process is not None
        kill(self.server.process)

    def restart_server(self) -> None:
        self.server = PrefectServer(self.home, self.port).start()

    def close(self) -> None:
        for proc in self.procs:
            stop(proc)  # Ctrl-C, then its whole process tree
        self.server.stop()


@pytest.fixture
def served(tmp_path):
    made: list[ServedMonitor] = []

    def make(config: Path, mode: list[str], name: str = "chaos", interval: str = "2s") -> ServedMonitor:
        made.append(ServedMonitor(tmp_path, config, mode, name, interval))
        return made[-1]

    yield make
    for s in made:
        s.close()


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "outages"), [([], 2), (["--runner", "prefect"], 1)],
                         ids=["continuous", "prefect-runner"])
def test_3b_serve_keeps_alerting_through_prefect_outages(mode, outages, tmp_path, target, receiver, served):
    target.route("/api")
    # two attempts: on a busy machine one slow answer from the loopback target must not open an
    # outage of its own before the test makes one
    path = config_for(tmp_path, {"api": target.url("/api")}, receiver.apprise_url(), timeout="5s", attempts=2)
    # Prefect's runner starts a process per flow run (seconds of CPU each): a slower cycle for it
    s = served(path, mode, interval="5s" if mode else "2s")
    s.start()
    wait_for(lambda: target.hits.get("/api", 0) >= 2, 300, lambda: f"the first served checks:\n{s.log()[-3000:]}")
    assert receiver.titles() == [], f"alerts before any outage: {receiver.titles()}\n{s.log()[-3000:]}"
    for _ in range(outages):
        seen = len(receiver.titles())
        s.kill_server()
        target.route("/api", statuses=[503])  # goes down while Prefect is away
        wait_for(lambda seen=seen: "DOWN: api" in receiver.titles()[seen:], 120, lambda: f"DOWN without Prefect:\n{s.log()[-3000:]}")
        wait_for(lambda seen=seen: any(t.startswith("MONITORING DEGRADED") for t in receiver.titles()[seen:]), 60,
                 "the degraded notice")
        s.restart_server()
        wait_for(lambda seen=seen: any(t.startswith("MONITORING OK") for t in receiver.titles()[seen:]), 180,
                 lambda: f"the restored notice:\n{s.log()[-3000:]}")
        target.route("/api")  # back up with Prefect back
        wait_for(lambda seen=seen: any(t.startswith("RESOLVED: api") for t in receiver.titles()[seen:]), 240,
                 lambda: f"RESOLVED with Prefect back:\n{s.log()[-3000:]}")
        new = receiver.titles()[seen:]
        assert [t for t in new if t.startswith(("DOWN", "RESOLVED"))][0] == "DOWN: api", new
        assert sum(t == "DOWN: api" for t in new) == 1 and sum(t.startswith("RESOLVED") for t in new) == 1, new
    titles = receiver.titles()
    assert sum(t == "DOWN: api" for t in titles) == outages
    assert sum(t.startswith("RESOLVED: api") for t in titles) == outages
    assert sum(t.startswith("MONITORING DEGRADED") for t in titles) == outages
    assert sum(t.startswith("MONITORING OK") for t in titles) == outages
    # checks continued with Prefect back: the flow runs record them again
    hits = target.hits.get("/api", 0)
    wait_for(lambda: target.hits.get("/api", 0) > hits + 1, 180, "checks after the last restart")
    assert "Traceback" not in s.log()


# --- 4. a second serve of the same deployment ------------------------------------------------------

@pytest.mark.slow
def test_4_a_second_serve_is_refused_and_the_first_keeps_checking(tmp_path, target, receiver, served):
    target.route("/api")
    path = config_for(tmp_path, {"api": target.url("/api")}, receiver.apprise_url())
    s = served(path, [], name="twice")
    first = s.start()
    wait_for(lambda: target.hits.get("/api", 0) >= 1, 120, lambda: f"the first serve's checks:\n{s.log()[-3000:]}")
    second = s.start("second.log")
    assert second.wait(timeout=120) == 2
    refusal = s.log("second.log")
    assert f"already served by pid {first.pid}" in refusal and "Traceback" not in refusal
    assert first.poll() is None
    hits = target.hits.get("/api", 0)
    wait_for(lambda: target.hits.get("/api", 0) >= hits + 2, 60, "checks by the first serve after the refusal")

    # a schedule paused behind the live process's back is resumed by it
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: s.api}), get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("service-monitor/twice")
        client.pause_deployment(deployment.id)
        wait_for(lambda: not client.read_deployment_by_name("service-monitor/twice").paused, 60,
                 "the guard to resume the paused schedule")


# --- 5. kill -9 while a DOWN is in flight ----------------------------------------------------------

def crash_while_the_down_is_in_flight(tmp_path, target, faulty) -> Path:
    """``alerting run`` with api DOWN, killed -9 while its DOWN's POST hangs; the receiver then heals.
    Returns the config path."""
    target.route("/api", statuses=[503])
    path = config_for(tmp_path, {"api": target.url("/api")}, faulty.apprise_url())
    faulty.hang = True
    proc = spawn([ALERTING, "run", "-c", str(path)], log=tmp_path / "run.log")
    try:
        wait_for(lambda: len(faulty.posts) == 1, 120, "the DOWN's POST in flight")
    finally:
        kill(proc)  # kill -9, whole process group
    faulty.hang = False
    faulty.release()
    return path


def test_5_a_down_in_flight_at_a_crash_never_arrives_after_its_resolved(tmp_path, target, faulty):
    path = crash_while_the_down_is_in_flight(tmp_path, target, faulty)
    target.route("/api")
    config = load_config(path)
    later = utcnow() + LEASE + timedelta(seconds=1)  # the crashed process's claim has expired
    with open_store(config) as store:
        (down,) = store.live_outbox()
        assert down.kind == "DOWN" and down.attempts == 1  # claimed by the killed process, not delivered
        run_cycle(config, store, now=later)
        sent = deliver_pending(store, config, later)
        rows = {r.kind: r for r in store.outbox_rows()}
    assert [d.title for d in sent if d.ok] == [rows["RESOLVED"].title]
    assert faulty.titles() == [rows["RESOLVED"].title]  # no stale DOWN after (or without) it
    assert rows["DOWN"].status == "superseded"


def test_5b_a_down_in_flight_at_a_crash_is_retried_once_the_claim_expires(tmp_path, target, faulty):
    path = crash_while_the_down_is_in_flight(tmp_path, target, faulty)
    config = load_config(path)
    with open_store(config) as store:
        assert deliver_pending(store, config, utcnow()) == []  # still claimed: never sent twice at once
        later = utcnow() + LEASE + timedelta(seconds=1)
        sent = deliver_pending(store, config, later)  # the service is still down: the DOWN goes out
    assert [d.title for d in sent if d.ok] == ["DOWN: api"] and faulty.titles() == ["DOWN: api"]
    assert "Delivered late" in faulty.messages[0]["message"]


# --- 6. a receiver that hangs or drops -------------------------------------------------------------

def test_6_a_dropping_receiver_gets_a_bounded_number_of_attempts_then_the_fallback(tmp_path, target, faulty, receiver):
    target.route("/api", statuses=[503])
    path = config_for(tmp_path, {"api": target.url("/api")}, faulty.apprise_url(),
                      extra=f'  spare: "{receiver.apprise_url()}"\nfallback_channel: spare\nfallback_after: 3\n')
    faulty.drop = True
    config = load_config(path)
    now = utcnow()
    with open_store(config) as store:
        run_cycle(config, store, now=now)
        for _ in range(40):  # 40 runs, an hour and more of them
            deliver_pending(store, config, now)
            now += timedelta(minutes=2)
        (row,) = [r for r in store.outbox_rows() if r.channel == "ops"]
        assert row.status == "undeliverable" and row.attempts == MAX_ATTEMPTS
        assert [r.alert_id for r in store.undeliverable()] == [row.alert_id]
    assert len(faulty.posts) == MAX_ATTEMPTS  # bounded, not 3 per run forever
    assert receiver.titles() == ["DOWN: api [via fallback: ops failing]"]
    short_id = row.alert_id[:8]
    assert f"Alert ID: {short_id}" in faulty.posts[0]["message"]
    assert f"Alert ID: {short_id}" in receiver.messages[0]["message"]
    status = run_cli("status", "-c", str(path), env={"PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"})
    assert "1 undeliverable alert(s)" in status.stderr and f"Alert ID {short_id}" in status.stderr


def test_6b_a_hanging_receiver_costs_one_timeout_per_attempt(tmp_path, target, faulty):
    target.route("/api", statuses=[503])
    path = config_for(tmp_path, {"api": target.url("/api")}, faulty.apprise_url() + "?rto=2&cto=2")
    faulty.hang = True
    config = load_config(path)
    with open_store(config) as store:
        run_cycle(config, store)
        done = threading.Event()
        results: list = []
        worker = threading.Thread(target=lambda: (results.extend(deliver_pending(store, config)), done.set()))
        worker.start()
        assert done.wait(60), "delivery to a hanging receiver did not give up"
    assert [r.ok for r in results] == [False] and len(faulty.posts) == 1


# --- 7. a temporary state-store failure ------------------------------------------------------------

def test_7_a_store_outage_does_not_resend_the_down(tmp_path, target, receiver):
    target.route("/api", statuses=[503])
    store_dir = tmp_path / "store"
    path = config_for(tmp_path, {"api": target.url("/api")}, receiver.apprise_url(),
                      extra=f'state_url: "sqlite:///{store_dir}/state.db"\n')
    first = run_cli("run", "-c", str(path))
    assert first.returncode == 1 and receiver.titles() == ["DOWN: api"]
    store_dir.rename(tmp_path / "store-away")
    store_dir.write_text("not a folder: the store is unusable")
    for _ in range(2):
        proc = run_cli("run", "-c", str(path), "--json")
        clean(proc)
        assert proc.returncode in (1, 2)
    store_dir.unlink()
    (tmp_path / "store-away").rename(store_dir)
    again = run_cli("run", "-c", str(path))
    clean(again)
    assert again.returncode == 1
    assert receiver.titles() == ["DOWN: api"]  # one DOWN for the one outage, whatever the store did
