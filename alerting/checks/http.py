"""The http type: one request through the pooled HTTP client (urllib3); status, keyword, JSON conditions, and the
certificate's days left on https.

Retried (exponential backoff with jitter, in ``alerting.check``): timeouts, connection errors, 5xx,
429 (its Retry-After is honoured up to ``retry_backoff_max``), a missing keyword and a failed
condition. Never retried: other 4xx, TLS errors, too many redirects; those are answers.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Callable
from http import HTTPStatus
from urllib.parse import urljoin, urlsplit

from urllib3 import BaseHTTPResponse
from urllib3.exceptions import (
    ClosedPoolError,
    ConnectTimeoutError,
    EmptyPoolError,
    LocationValueError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from alerting.checks import conditions
from alerting.checks.base import Attempt, Context
from alerting.checks.certs import expiry_warning
from alerting.deadline import hard_deadline
from alerting.http_client import REDIRECT_STATUSES, HttpClient, MalformedBody, encoding_of, read_body
from alerting.models import ErrorKind, MonitorSpec
from alerting.redact import redact_target_url

BODY_LIMIT = 1024 * 1024  # bytes of body read for the keyword match and the conditions
# what requests called a connection error (urllib3's, raised as they are: ``retries=False``)
CONNECTION_ERRORS = (ProtocolError, OSError, NewConnectionError, ProxyError, ClosedPoolError, EmptyPoolError)


class RedirectElsewhere(Exception):
    """``follow_redirects: same-host`` and the target redirected to another host or port."""

    def __init__(self, where: str):
        super().__init__(where)
        self.where = where


class TooManyRedirects(Exception):
    """More than ``max_redirects`` hops."""


def _causes(exc: BaseException):
    seen, stack = set(), [exc]
    while stack:
        cur = stack.pop()
        if cur is None or id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        # urllib3 keeps the underlying error in ``reason``; ssl errors keep a *string* there
        linked = [cur.__cause__, cur.__context__, getattr(cur, "reason", None), *getattr(cur, "args", ())]
        stack.extend(e for e in linked if isinstance(e, BaseException))


def classify_exception(exc: BaseException, spec: MonitorSpec) -> Attempt:
    """Map a urllib3 (or socket) exception to an error kind, with a message free of URLs."""

    host = redact_target_url(f"http://{urlsplit(spec.url).hostname or 'host'}/").split("//", 1)[-1].rstrip("/")
    causes = list(_causes(exc))
    if isinstance(exc, SSLError) or any(isinstance(c, ssl.SSLError) for c in causes):
        reason = next((c for c in causes if isinstance(c, ssl.SSLError)), None)
        verify = getattr(reason, "verify_message", None)
        if verify:
            detail = f"certificate verify failed: {verify}"
        else:
            detail = str(getattr(reason, "reason", None) or "handshake failed").replace("_", " ").lower()
        return Attempt(False, None, None, ErrorKind.TLS, detail, retryable=False)
    if isinstance(exc, RedirectElsewhere):
        return Attempt(False, None, None, ErrorKind.REDIRECT_ELSEWHERE,
                       f"redirected to another host ({exc.where}), which follow_redirects: same-host forbids")
    if isinstance(exc, TooManyRedirects):
        return Attempt(
            False, None, None, ErrorKind.TOO_MANY_REDIRECTS,
            f"more than {spec.max_redirects} redirects", retryable=False,
        )
    if isinstance(exc, (ReadTimeoutError, socket.timeout, TimeoutError)) or (
            isinstance(exc, ConnectTimeoutError) and not isinstance(exc, NewConnectionError)):
        return Attempt(False, None, None, ErrorKind.TIMEOUT, f"no answer within {spec.timeout:g}s", True)
    if any(isinstance(c, (NameResolutionError, socket.gaierror)) for c in causes):
        return Attempt(False, None, None, ErrorKind.DNS, f"DNS lookup failed for {host}", True)
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return Attempt(False, None, None, ErrorKind.REFUSED, f"connection refused by {host}", True)
    if any(isinstance(c, (TimeoutError, socket.timeout)) for c in causes):
        return Attempt(False, None, None, ErrorKind.TIMEOUT, f"no answer within {spec.timeout:g}s", True)
    if isinstance(exc, MalformedBody):
        return Attempt(False, None, None, ErrorKind.INVALID_RESPONSE, "malformed response body", True)
    invalid = next((c for c in causes if isinstance(c, http.client.HTTPException)
                    and not isinstance(c, http.client.RemoteDisconnected)), None)
    if invalid is not None:
        return Attempt(False, None, None, ErrorKind.INVALID_RESPONSE,
                       f"invalid HTTP response from {host}: {_invalid_reason(invalid)}", True)
    if any(isinstance(c, http.client.RemoteDisconnected) for c in causes):
        return Attempt(False, None, None, ErrorKind.CONNECTION,
                       f"connection closed by {host} without an answer", True)
    if isinstance(exc, CONNECTION_ERRORS):
        kind = "ProxyError" if isinstance(exc, ProxyError) else "ConnectionError"  # the names requests gave
        return Attempt(False, None, None, ErrorKind.CONNECTION, f"connection failed ({kind})", True)
    name = "InvalidURL" if isinstance(exc, LocationValueError) else type(exc).__name__  # requests' name
    return Attempt(False, None, None, ErrorKind.CONNECTION, f"request failed ({name})", True)


def _invalid_reason(exc: http.client.HTTPException) -> str:
    text = str(exc)
    if isinstance(exc, http.client.LineTooLong):
        return "a header line is too long" if "header" in text else f"a line is too long ({text})"
    if "more than" in text and "headers" in text:
        return "too many headers"
    if isinstance(exc, http.client.BadStatusLine):
        return "not an HTTP status line (garbage on the port?)"
    if isinstance(exc, http.client.IncompleteRead):
        return "the body ended early"
    return type(exc).__name__


def _retry_after(response: BaseHTTPResponse) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _status_text(code: int) -> str:
    try:
        return f"HTTP {code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"HTTP {code}"


def _origin(url: str) -> tuple[str, int | None]:
    parts = urlsplit(url)
    return (parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))


def _request_following_redirects(
    client: HttpClient, spec: MonitorSpec, headers: dict
) -> tuple[BaseHTTPResponse, str | None]:
    """(the final response, where redirects led or None). At most ``spec.max_redirects`` hops (a
    per-monitor bound; the client is shared), as ``spec.follow_redirects`` allows. The monitor's
    own headers (often credentials) are never sent to another host."""
    url, method = spec.url, spec.method
    origin = _origin(spec.url)
    follow = spec.max_redirects > 0 and spec.follow_redirects != "none"
    for hop in range(spec.max_redirects + 1):
        same = _origin(url) == origin
        response = client.request(method, url, headers if same else {}, spec.timeout, verify=spec.verify_tls)
        location = response.headers.get("Location") if response.status in REDIRECT_STATUSES else None
        if not location or not follow:
            return response, (url if hop else None)
        read_body(response, BODY_LIMIT)  # read, as requests did: the connection stays open for the next hop
        if hop == spec.max_redirects:
            raise TooManyRedirects(f"more than {spec.max_redirects} redirects")
        url = urljoin(url, location)
        if spec.follow_redirects == "same-host" and _origin(url) != origin:
            host, port = _origin(url)
            raise RedirectElsewhere(f"{host}:{port}")
        if response.status in (301, 302, 303) and method != "HEAD":
            method = "GET"
    raise AssertionError("unreachable")


def attempt_once(client: HttpClient, spec: MonitorSpec, clock: Callable[[], float] = time.perf_counter) -> Attempt:
    """One request: status, capped body read and keyword match."""
    started = clock()
    with hard_deadline(spec.timeout) as scope:
        attempt = _attempt(client, spec, clock, started)
    if scope.expired:  # the watchdog cut the connection: whatever arrived is incomplete
        return Attempt(False, attempt.status_code, round((clock() - started) * 1000, 1), ErrorKind.TIMEOUT,
                       f"no complete answer within {spec.timeout:g}s", retryable=True)
    return attempt


def _attempt(client: HttpClient, spec: MonitorSpec, clock: Callable[[], float], started: float) -> Attempt:
    headers = {k: v.get_secret_value() for k, v in spec.headers.items()}
    try:
        response, final_url = _request_following_redirects(client, spec, headers)
        der = _peer_cert(response) if spec.cert_expiry_warning and spec.url[:6].lower() == "https:" else None
        # Read the body (at most BODY_LIMIT; none after HEAD): a fully read body hands the
        # connection back to the pool for the next check of this host; an unread one is closed.
        body = read_body(response, BODY_LIMIT)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a typed result
        found = classify_exception(exc, spec)
        return Attempt(**{**found.__dict__, "latency_ms": round((clock() - started) * 1000, 1)})
    latency = round((clock() - started) * 1000, 1)
    code = response.status
    if not spec.status_ok(code):
        retryable = code >= 500 or code == 429
        return Attempt(
            False, code, latency, ErrorKind.UNEXPECTED_STATUS,
            f"expected {spec.expectation()}, got {_status_text(code)}",
            retryable=retryable,
            retry_after=_retry_after(response) if code in (429, 503) else None,
            final_url=final_url,
        )
    if spec.contains is not None or spec.not_contains is not None:
        text = body.decode(encoding_of(response.headers) or "utf-8", errors="replace")
        if spec.contains is not None and spec.contains not in text:
            return Attempt(
                False, code, latency, ErrorKind.KEYWORD_MISSING,
                f"text {spec.contains!r} not found in the first {len(body):,} bytes of the body",
                retryable=True,
            )
        if spec.not_contains is not None and spec.not_contains in text:
            return Attempt(
                False, code, latency, ErrorKind.KEYWORD_PRESENT,
                f"forbidden text {spec.not_contains!r} found in the body", retryable=True,
            )
    failure = None
    if spec.conditions:
        headers = {name.lower(): response.headers[name] for name in response.headers}  # repeated: joined
        failure = conditions.first_failure(spec.conditions, body if spec.method != "HEAD" else None, headers)
    if failure is not None:
        return Attempt(False, code, latency, ErrorKind.CONDITION_FAILED, failure, retryable=True,
                       final_url=final_url)
    warning = expiry_warning(spec, der)
    return Attempt(True, code, latency, message=_status_text(code), final_url=final_url,
                   warning=warning[0] if warning else None, warning_message=warning[1] if warning else "")


def _peer_cert(response: BaseHTTPResponse) -> bytes | None:
    """The server certificate (DER) of the connection that answered (``alerting.deadline`` keeps it)."""
    return getattr(response.connection, "peer_cert", None)


class HttpChecker:
    name = "http"
    schemes: tuple[str, ...] = ("http", "https")
    fields: frozenset[str] = frozenset({"method", "headers", "expect_status", "contains", "not_contains", "max_redirects",
                        "follow_redirects", "conditions"})

    def problems(self, spec: MonitorSpec) -> list[tuple[str, str]]:
        found = []
        for index, text in enumerate(spec.conditions):
            try:
                conditions.parse(text)
            except ValueError as exc:
                found.append((f"conditions[{index}]", str(exc)))
        if spec.method == "HEAD" and not found and any(conditions.on_body(text) for text in spec.conditions):
            found.append(("conditions", "a HEAD request has no body to test: use GET or POST (header.NAME "
                                        "conditions work with HEAD)"))
        return found

    def attempt(self, spec: MonitorSpec, context: Context) -> Attempt:
        if context.http is None:
            raise ValueError("an http check needs an HttpClient")
        return attempt_once(context.http, spec, context.clock)

    def classify(self, exc: BaseException, spec: MonitorSpec) -> Attempt:
        return classify_exception(exc, spec)

    def expectation(self, spec: MonitorSpec) -> str:
        parts = [spec.expectation()]
        if spec.contains is not None:
            parts.append(f"body contains {spec.contains!r}")
        if spec.not_contains is not None:
            parts.append(f"body without {spec.not_contains!r}")
        parts += spec.conditions
        return ", ".join(parts)


CHECKER = HttpChecker()


