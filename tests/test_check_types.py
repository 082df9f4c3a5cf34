"""The tcp, tls and dns types and JSON conditions against real local servers (tests/toolkit/netservers.py)."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from alerting.check import check
from alerting.models import ErrorKind, MonitorSpec
from toolkit import DNSServer, TCPListener, TLSServer, issue


def spec(url, **kw):
    kw.setdefault("retry_backoff", 0)
    kw.setdefault("retry_backoff_max", 0)
    kw.setdefault("attempts", 1)
    kw.setdefault("timeout", 5)
    return MonitorSpec(name="svc", url=url, **kw)


# --- tcp ------------------------------------------------------------------------------------------

def test_tcp_port_open_then_closed():
    listener = TCPListener()
    url = listener.url
    try:
        r = check(spec(url))
        assert r.ok and r.type == "tcp" and r.message == f"port {listener.port} open"
    finally:
        listener.close()
    r = check(spec(url))
    assert not r.ok and r.error is ErrorKind.TCP_REFUSED
    assert f"port {listener.port} refused" in r.message


def test_tcp_send_and_expect_a_reply():
    listener = TCPListener(reply=b"+PONG\r\n")
    try:
        assert check(spec(listener.url, send="PING\r\n", expect="PONG")).ok
        r = check(spec(listener.url, send="PING\r\n", expect="READY"))
        assert not r.ok and r.error is ErrorKind.REPLY_MISMATCH
        assert "expected 'READY' in the reply, got '+PONG" in r.message
    finally:
        listener.close()


# --- tls ------------------------------------------------------------------------------------------

@pytest.fixture
def pki(tmp_path, monkeypatch):
    """A test CA the checks trust (SSL_CERT_FILE is where OpenSSL looks), and a server to present leaves."""
    ca = issue("Alerting Test CA", ca=True, not_after=dt.timedelta(days=3650))
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(ca.cert_pem)
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    server = TLSServer(issue("good", issuer=ca), tmp_path, body=b'{"status": "UP"}')
    try:
        yield ca, server
    finally:
        server.close()


def tls_url(server):
    return f"tls://127.0.0.1:{server.port}"


def test_tls_valid_certificate(pki):
    _, server = pki
    r = check(spec(tls_url(server)))
    assert r.ok and r.warning is None and r.type == "tls"
    assert "certificate valid for 90 days" in r.message and "issued by Alerting Test CA" in r.message


def test_tls_expiring_in_3_days_is_a_warning_with_issuer_and_date(pki):
    ca, server = pki
    leaf = issue("soon", issuer=ca, not_after=dt.timedelta(days=3, hours=1))
    server.use(leaf)
    r = check(spec(tls_url(server), cert_expiry_warning="14d"))
    assert r.ok and r.warning is ErrorKind.CERT_EXPIRING
    assert "expires in 3 days" in r.warning_message and "issued by Alerting Test CA" in r.warning_message
    assert f"{leaf.cert.not_valid_after_utc:%Y-%m-%d}" in r.warning_message
    assert check(spec(tls_url(server), cert_expiry_warning="2d")).warning is None
    assert check(spec(tls_url(server), cert_expiry_warning="off")).warning is None


def test_tls_expired(pki):
    ca, server = pki
    server.use(issue("old", issuer=ca, not_before=dt.timedelta(days=-90), not_after=dt.timedelta(days=-2)))
    r = check(spec(tls_url(server), attempts=3))
    assert not r.ok and r.error is ErrorKind.CERT_EXPIRED and r.attempts == 1  # an answer: not retried
    assert "expired" in r.message and "issued by Alerting Test CA" in r.message


def test_tls_wrong_hostname(pki):
    ca, server = pki
    server.use(issue("elsewhere", issuer=ca, hosts=("other.example",)))
    r = check(spec(tls_url(server)))
    assert not r.ok and r.error is ErrorKind.CERT_INVALID
    assert "mismatch" in r.message.lower() and "127.0.0.1" in r.message


def test_tls_self_signed(pki):
    _, server = pki
    server.use(issue("lonely"))
    r = check(spec(tls_url(server)))
    assert not r.ok and r.error is ErrorKind.CERT_INVALID
    assert "self-signed" in r.message or "self signed" in r.message
    assert check(spec(tls_url(server), verify_tls=False)).ok  # verify_tls: false accepts it


def test_https_monitor_warns_of_an_expiring_certificate_by_default(pki):
    ca, server = pki
    server.use(issue("soon", issuer=ca, not_after=dt.timedelta(days=5)))
    r = check(spec(f"https://127.0.0.1:{server.port}/", verify_tls=False))
    assert r.ok and r.status_code == 200 and r.warning is ErrorKind.CERT_EXPIRING  # default 14d
    assert "expires in 5 days" in r.warning_message


# --- dns ------------------------------------------------------------------------------------------

@pytest.fixture
def dns_server():
    server = DNSServer()
    server.records[("api.test", "A")] = ["10.0.0.7"]
    server.records[("api.test", "MX")] = ["10 mail.api.test."]
    try:
        yield server
    finally:
        server.close()


def test_dns_answers_the_expected_values(dns_server):
    r = check(spec("dns://api.test", resolver=dns_server.address, expect_values=["10.0.0.7"]))
    assert r.ok and r.type == "dns" and "10.0.0.7" in r.message
    r = check(spec("dns://api.test", record_type="MX", resolver=dns_server.address, expect_values="mail.api.test"))
    assert r.ok, r.message


def test_dns_wrong_value_nxdomain_no_record_and_silence(dns_server):
    r = check(spec("dns://api.test", resolver=dns_server.address, expect_values=["10.0.0.8"]))
    assert not r.ok and r.error is ErrorKind.DNS_MISMATCH
    assert "expected 10.0.0.8, got 10.0.0.7" in r.message
    r = check(spec("dns://missing.test", resolver=dns_server.address))
    assert not r.ok and r.error is ErrorKind.DNS_NXDOMAIN and "does not exist" in r.message
    r = check(spec("dns://api.test", record_type="TXT", resolver=dns_server.address))
    assert not r.ok and r.error is ErrorKind.DNS_NO_ANSWER
    dns_server.silent = True
    r = check(spec("dns://api.test", resolver=dns_server.address, timeout=0.3))
    assert not r.ok and r.error is ErrorKind.DNS_TIMEOUT


# --- JSON conditions and slow -----------------------------------------------------------------------

BODY = {"status": "UP", "checks": {"db": {"latency_ms": 120}}, "items": [1, 2], "tags": ["prod", "eu"], "version": "1.2.0"}


@pytest.mark.parametrize(
    ("condition", "holds", "seen"),
    [
        ("$.status == UP", True, None),
        ("$.status == DOWN", False, 'got "UP"'),
        ("$.version != 1.2.0", False, 'got "1.2.0"'),
        ("$.version != 1.3.0", True, None),
        ("$.checks.db.latency_ms < 250", True, None),
        ("$.checks.db.latency_ms < 100", False, "got 120"),
        ("$.checks.db.latency_ms <= 120", True, None),
        ("$.checks.db.latency_ms > 200", False, "got 120"),
        ("$.checks.db.latency_ms >= 120", True, None),
        ("len($.items) > 0", True, None),
        ("len($.items) > 2", False, "got length 2"),
        ("$.tags contains prod", True, None),
        ("$.tags contains us", False, 'got ["prod", "eu"]'),
        ("$.tags not contains legacy", True, None),
        ("$.tags not contains eu", False, 'got ["prod", "eu"]'),
        ("$.missing == 1", False, "got nothing (the path matched no value)"),
    ],
)
def test_json_condition_operators(target, condition, holds, seen):
    url = target.route("/health", statuses=[200], body=json.dumps(BODY).encode())
    r = check(spec(url, conditions=[condition]))
    assert r.ok is holds
    if not holds:
        assert r.error is ErrorKind.CONDITION_FAILED and r.status_code == 200
        assert r.message == f"{condition!r} failed: {seen}"


def test_several_conditions_report_the_first_that_fails_and_a_body_that_is_not_json(target):
    url = target.route("/health", statuses=[200], body=json.dumps(BODY).encode())
    r = check(spec(url, conditions=["$.status == UP", "len($.items) >= 3", "$.tags contains nope"]))
    assert not r.ok and r.message == "'len($.items) >= 3' failed: got length 2"
    url = target.route("/text", statuses=[200], body=b"<html>ok</html>")
    r = check(spec(url, conditions=["$.status == UP"]))
    assert not r.ok and r.error is ErrorKind.CONDITION_FAILED and "not JSON" in r.message


def test_slow_answer_is_a_warning_not_a_failure(target):
    url = target.route("/slow", statuses=[200], delay=0.3)
    r = check(spec(url, degraded_after="100ms"))
    assert r.ok and r.warning is ErrorKind.SLOW and "slower than degraded_after (100 ms)" in r.warning_message
    fast = target.route("/fast", statuses=[200])
    assert check(spec(fast, degraded_after="5s")).warning is None


# --- `alerting check` takes each type ----------------------------------------------------------------

ALERTING = str(Path(sys.executable).with_name("alerting"))


def cli(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.Popen([ALERTING, "check", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_cli_checks_tcp_dns_and_json_conditions(dns_server, target):
    listener = TCPListener()
    try:
        done = cli(listener.url, "--json")
        assert done.returncode == 0 and json.loads(done.stdout)["type"] == "tcp"
    finally:
        listener.close()
    done = cli(listener.url, "--attempts", "1", "--json")
    assert done.returncode == 1 and json.loads(done.stdout)["error"] == "tcp_refused"
    done = cli(f"dns://api.test?type=MX&resolver={dns_server.address}&expect=mail.api.test")
    assert done.returncode == 0 and "UP dns://api.test" in done.stdout
    done = cli(f"dns://api.test?resolver={dns_server.address}&expect=10.9.9.9", "--attempts", "1", "--json")
    assert done.returncode == 1 and json.loads(done.stdout)["error"] == "dns_mismatch"
    url = target.route("/health", statuses=[200], body=json.dumps(BODY).encode())
    done = cli(url, "--json-condition", "$.status == UP", "--json-condition", "$.checks.db.latency_ms < 100",
               "--attempts", "1", "--json")
    result = json.loads(done.stdout)
    assert done.returncode == 1 and result["error"] == "condition_failed"
    assert result["message"] == "'$.checks.db.latency_ms < 100' failed: got 120"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["dns://example.com?type=MXX"], "unknown record type 'MXX'"),
        (["tcp://db:70000"], "invalid port in the URL of host 'db' (use 1-65535)"),
        (["https://example.com", "--json-condition", "$.a <"], "has no value after '<'"),
        (["tcp://db:5432", "--json-condition", "$.a == 1"], "only for http monitors (this one is tcp)"),
    ],
)
def test_cli_bad_type_specific_input_is_exit_2(args, said):
    done = cli(*args)
    assert done.returncode == 2 and said in done.stderr and "Traceback" not in done.stderr


def test_a_drill_of_a_tcp_monitor_never_contacts_its_target(tmp_path, receiver):
    from alerting.config import parse_config
    from alerting.standalone import run_drill

    listener = TCPListener()
    try:
        config = parse_config(
            f"state_url: sqlite:///{tmp_path}/state.db\nchannels:\n  ops: {receiver.apprise_url()}\n"
            f"monitors:\n  - name: db\n    url: {listener.url}\n    channels: [ops]\n",
            str(tmp_path / "monitors.yaml"),
        )
        result, deliveries = run_drill(config, config.monitor("db"))
        assert not result.ok and result.error is ErrorKind.TCP_REFUSED and "alerting drill" in result.message
        assert deliveries and all(d.ok for d in deliveries)
        assert receiver.wait_for(1, timeout=30) and receiver.titles() == ["[DRILL] DOWN: db"]
        assert listener.accepted == 0
    finally:
        listener.close()


def test_header_conditions_with_and_without_a_body(target):
    url = target.route("/h", statuses=[200], body=json.dumps(BODY).encode(),
                       headers={"Content-Type": "application/json", "X-Version": "7"})
    assert check(spec(url, conditions=["header.content-type contains json", "header.X-Version >= 7",
                                       "$.status == UP"])).ok
    r = check(spec(url, conditions=["header.X-Version == 8"]))
    assert not r.ok and r.error is ErrorKind.CONDITION_FAILED and r.message == "'header.X-Version == 8' failed: got \"7\""
    r = check(spec(url, conditions=["header.X-Missing == 1"]))
    assert not r.ok and "got nothing" in r.message
    text = target.route("/t", statuses=[200], body=b"<html>", headers={"X-Version": "7"})
    assert check(spec(text, conditions=["header.X-Version == 7"])).ok  # no JSON needed for a header
    assert check(spec(text, method="HEAD", conditions=["header.X-Version == 7"])).ok
