"""The http checks' client (urllib3, as requests behaved): what a target sees, environment proxies
read when the client is made, the body's charset, connections kept between checks."""


import pytest

from alerting.check import HttpClient, check
from alerting.http_client import encoding_of
from alerting.models import ErrorKind, MonitorSpec
from toolkit import Proxy, TCPListener


def spec(url, **kw):
    return MonitorSpec(name="svc", url=url, attempts=1, timeout=5, **kw)


def test_what_the_target_sees_default_headers_own_headers_and_url_credentials(target):
    url = target.route("/ok")
    assert check(spec(url, headers={"accept": "text/html", "X-Team": "ops"})).ok
    sent = {k.lower(): v for k, v in target.request_headers[-1].items()}
    assert sent["user-agent"].startswith("outage-alerting/") and sent["accept-encoding"].startswith("gzip")
    assert sent["accept"] == "text/html" and sent["x-team"] == "ops" and sent["connection"] == "keep-alive"
    with_credentials = url.replace("http://", "http://us%40er:p%3Ass@")
    assert check(spec(with_credentials)).ok
    sent = {k.lower(): v for k, v in target.request_headers[-1].items()}
    assert sent["authorization"] == "Basic dXNAZXI6cDpzcw=="  # base64("us@er:p:ss"), as requests sent it


def test_http_proxy_from_the_environment_and_no_proxy_by_cidr(target, monkeypatch):
    url = target.route("/via")
    proxy = Proxy()
    try:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        through = HttpClient(4)
        monkeypatch.setenv("no_proxy", "10.0.0.0/8,127.0.0.0/8")
        direct = HttpClient(4)
        monkeypatch.delenv("HTTP_PROXY")  # read when the client was made: no effect any more
        try:
            assert check(spec(url), through).ok and proxy.paths.get("/via") == 1
            assert check(spec(url), direct).ok and proxy.paths.get("/via") == 1 and target.hits["/via"] == 2
        finally:
            through.close()
            direct.close()
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("no_proxy")
        proxy.refuse()
        refused = check(spec(url))  # as with requests: the refusal is named, not the proxy
        assert refused.error is ErrorKind.REFUSED and target.hits["/via"] == 2
    finally:
        proxy.close()


@pytest.mark.parametrize(("content_type", "expected"), [
    ("text/html; charset=\"UTF-8\"", "UTF-8"), ("text/plain", "ISO-8859-1"), ("application/json", "utf-8"),
    ("application/octet-stream", None), (None, None), ("text/html; Charset=latin1; charset=utf-8", "utf-8"),
])
def test_body_encoding_from_the_content_type_as_requests_read_it(content_type, expected):
    assert encoding_of({"Content-Type": content_type} if content_type else {}) == expected


def test_keyword_in_a_latin1_text_body_without_a_charset(target):
    url = target.route("/fr", body="caf\u00e9 ouvert".encode("latin-1"), headers={"Content-Type": "text/plain"})
    assert check(spec(url, contains="caf\u00e9")).ok


def test_connections_are_kept_between_checks_and_one_cut_at_the_body_limit_is_closed():
    big = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (2 * 1024 * 1024) + b"a" * (2 * 1024 * 1024)
    listener = TCPListener(converse=lambda request: big if b"/big" in request
                           else b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    base = f"http://127.0.0.1:{listener.port}"
    client = HttpClient(4)
    try:
        for method in ("GET", "GET", "HEAD", "POST"):
            assert check(spec(base + "/ok", method=method), client).ok
        assert listener.accepted == 1
        assert check(spec(base + "/big"), client).ok and check(spec(base + "/ok"), client).ok
        assert listener.accepted == 2  # the body cut at 1 MiB closed its connection
    finally:
        client.close()
        listener.close()
