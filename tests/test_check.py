"""The HTTP check against real local servers; waits are recorded, never slept."""

import json
import socket
import threading
from datetime import datetime

import pytest

from alerting.check import BODY_LIMIT, HttpClient, check
from alerting.models import ErrorKind, MonitorSpec
from toolkit import Target, TCPListener


class Sleeps(list):
    """Records each tenacity wait instead of sleeping."""

    def __call__(self, seconds):
        self.append(seconds)


def spec(url, **kw):
    kw.setdefault("retry_backoff", 0)
    kw.setdefault("retry_backoff_max", 0)
    return MonitorSpec(name="svc", url=url, **kw)


def test_up(target):
    url = target.route("/ok", statuses=[200], body=b"PlayStation Network is up")
    r = check(spec(url, contains="PlayStation"))
    assert r.ok and r.status_code == 200 and r.attempts == 1 and r.error is None
    assert r.latency_ms is not None and r.latency_ms >= 0
    assert r.checked_at.tzinfo is not None


def test_503_is_retried_and_counted(target):
    url = target.route("/down", statuses=[503])
    sleeps = Sleeps()
    r = check(spec(url, attempts=3), sleep=sleeps)
    assert not r.ok and r.status_code == 503 and r.attempts == 3
    assert r.error is ErrorKind.UNEXPECTED_STATUS
    assert "expected HTTP 2xx, got HTTP 503 Service Unavailable" in r.message
    assert target.hits["/down"] == 3
    assert sleeps == [0, 0]  # zero waits configured: nothing slept


def test_404_is_an_answer_not_retried(target):
    url = target.route("/gone", statuses=[404])
    r = check(spec(url, attempts=5))
    assert not r.ok and r.status_code == 404 and r.attempts == 1
    assert target.hits["/gone"] == 1


def test_fail_twice_then_recover_is_up_after_three_attempts(target):
    url = target.route("/flaky", statuses=[503, 502, 200])
    r = check(spec(url, attempts=3))
    assert r.ok and r.attempts == 3 and r.status_code == 200


def test_hanging_server_hits_the_timeout(target):
    url = target.route("/hang", hang=True)  # holds every request until the test ends
    r = check(spec(url, timeout=0.2, attempts=2))
    assert not r.ok and r.error is ErrorKind.TIMEOUT and r.attempts == 2
    assert target.hits["/hang"] == 2 and r.status_code is None  # each attempt gave up on a server that never answered


def test_refused_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connection refused
        r = check(spec(f"http://127.0.0.1:{port}/", attempts=2))
    assert not r.ok and r.error is ErrorKind.REFUSED and r.attempts == 2
    assert r.status_code is None


def test_dns_failure():
    r = check(spec("http://no-such-host.invalid/", attempts=1))
    assert r.error is ErrorKind.DNS and "no-such-host.invalid" in r.message


def test_keyword_missing(target):
    url = target.route("/page", body=b"Service Unavailable page")
    r = check(spec(url, contains="PlayStation", attempts=2))
    assert not r.ok and r.error is ErrorKind.KEYWORD_MISSING and r.status_code == 200


def test_forbidden_text_present(target):
    url = target.route("/page", body=b"status: MAINTENANCE")
    r = check(spec(url, not_contains="MAINTENANCE", attempts=1))
    assert not r.ok and r.error is ErrorKind.KEYWORD_PRESENT


def test_body_read_is_capped_at_one_mebibyte(target):
    url = target.route("/big", body=b"x" * (BODY_LIMIT + 10) + b"NEEDLE")
    r = check(spec(url, contains="NEEDLE", attempts=1))
    assert r.error is ErrorKind.KEYWORD_MISSING and "1,048,576 bytes" in r.message


def test_expected_status_list(target):
    url = target.route("/created", statuses=[201])
    assert not check(spec(url, expect_status=[200], attempts=1)).ok
    assert check(spec(url, expect_status="200,201")).ok


def test_429_honours_retry_after_capped(target):
    url = target.route("/busy", statuses=[429, 200], headers={"Retry-After": "7"})
    sleeps = Sleeps()
    r = check(spec(url, attempts=3, retry_backoff=0.1, retry_backoff_max=5), sleep=sleeps)
    assert r.ok and r.attempts == 2
    assert sleeps == [5]  # Retry-After 7 s, capped at retry_backoff_max


def test_exponential_backoff_with_jitter(target):
    url = target.route("/down", statuses=[500])
    sleeps = Sleeps()
    check(spec(url, attempts=4, retry_backoff=1, retry_backoff_max=30), sleep=sleeps)
    assert len(sleeps) == 3
    assert 1 <= sleeps[0] <= 2 and 2 <= sleeps[1] <= 3 and 4 <= sleeps[2] <= 5


def test_redirects_are_bounded(target):
    target.route("/loop", statuses=[302], headers={"Location": "/loop"})
    r = check(spec(target.url("/loop"), max_redirects=3, attempts=3))
    assert r.error is ErrorKind.TOO_MANY_REDIRECTS and r.attempts == 1


def test_redirect_followed(target):
    target.route("/old", statuses=[301], headers={"Location": "/new"})
    target.route("/new", statuses=[200])
    assert check(spec(target.url("/old"))).ok


def test_result_url_has_no_credentials_or_secret_values(target):
    target.route("/s", statuses=[500])
    url = f"http://user:hunter22@127.0.0.1:{target.port}/s?token=CANARY-TOKEN&page=2"
    r = check(spec(url, attempts=1))
    dumped = r.model_dump_json()
    assert "hunter22" not in dumped and "CANARY-TOKEN" not in dumped
    assert "page=2" in r.url


def test_client_is_shared_across_threads(target):
    url = target.route("/ok")
    client = HttpClient(8)
    results = []
    threads = [threading.Thread(target=lambda: results.append(check(spec(url), client))) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 16 and all(r.ok for r in results)
    assert target.hits["/ok"] == 16


def test_json_shape(target):
    up = check(spec(target.route("/ok")))
    data = json.loads(up.model_dump_json())
    assert (data["monitor"], data["ok"], data["status_code"], data["attempts"], data["error"]) == ("svc", True, 200, 1, None)
    assert data["url"] == target.url("/ok")
    assert isinstance(data["latency_ms"], float) and 0 <= data["latency_ms"] <= data["elapsed_ms"]
    assert datetime.fromisoformat(data["checked_at"]) == up.checked_at  # timezone-aware, round-trips
    down = json.loads(check(spec(target.route("/down", statuses=[503]), attempts=1)).model_dump_json())
    assert (down["ok"], down["status_code"], down["error"]) == (False, 503, "unexpected_status")
    assert down["message"] == "expected HTTP 2xx, got HTTP 503 Service Unavailable"


# --- redirects and malformed answers (issue 10) -----------------------------------------------------

@pytest.mark.parametrize(("answer", "reason"), [
    (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n", "a header line is too long"),
    (b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(500)) + b"\r\n", "too many headers"),
    (b"\x16\x03\x01garbage that is not HTTP\r\n\r\n", "not an HTTP status line"),
], ids=["long-header", "many-headers", "garbage"])
def test_a_malformed_answer_is_an_invalid_response_saying_what_was_wrong(answer, reason):
    listener = TCPListener(reply=answer)  # answers whatever was asked, then closes
    try:
        result = check(MonitorSpec(name="raw", url=f"http://127.0.0.1:{listener.port}/", attempts=1, timeout=5))
    finally:
        listener.close()
    assert not result.ok and result.error is ErrorKind.INVALID_RESPONSE
    assert reason in result.message


def test_follow_redirects_any_same_host_none(target):
    other = Target()
    try:
        other.route("/landing")
        target.route("/elsewhere", statuses=[302], headers={"Location": other.url("/landing")})
        target.route("/here", statuses=[301], headers={"Location": "/home"})
        target.route("/home")
        secret = {"Authorization": "Bearer canary-redirect-secret"}
        anywhere = check(MonitorSpec(name="a", url=target.url("/elsewhere"), attempts=1, headers=secret))
        assert anywhere.ok and anywhere.final_url == other.url("/landing")
        assert all("canary-redirect-secret" not in str(h) for h in other.request_headers)  # not sent elsewhere
        pinned = check(MonitorSpec(name="b", url=target.url("/elsewhere"), attempts=1, follow_redirects="same-host"))
        assert not pinned.ok and pinned.error is ErrorKind.REDIRECT_ELSEWHERE
        assert f"127.0.0.1:{other.port}" in pinned.message
        same = check(MonitorSpec(name="c", url=target.url("/here"), attempts=1, follow_redirects="same-host"))
        assert same.ok and same.final_url == target.url("/home")
        none = check(MonitorSpec(name="d", url=target.url("/here"), attempts=1, follow_redirects="none",
                                 expect_status=[301]))
        assert none.ok and none.status_code == 301 and none.final_url is None
    finally:
        other.close()
