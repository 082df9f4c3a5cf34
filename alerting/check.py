"""The HTTP check: one pooled ``requests.Session``, tenacity retries, a typed ``CheckResult``.

Retried (exponential backoff with jitter): timeouts, connection errors, 5xx, 429 (its Retry-After is
honoured up to ``retry_backoff_max``) and a missing keyword. Never retried: other 4xx, TLS errors,
too many redirects; those are answers and are reported at once.
"""

from __future__ import annotations

import http.client
import logging
import os
import socket
import ssl
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urljoin, urlsplit

import requests
from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_exponential_jitter
from urllib3.exceptions import NameResolutionError

from alerting import __version__
from alerting.deadline import DeadlineAdapter, hard_deadline
from alerting.models import CheckResult, ErrorKind, MonitorSpec
from alerting.redact import redact_target_url

BODY_LIMIT = 1024 * 1024  # bytes of body read for the keyword match
USER_AGENT = f"outage-alerting/{__version__} (+https://github.com/)"
log = logging.getLogger(__name__)

Sleep = Callable[[float], None]
Slot = Callable[[], AbstractContextManager]  # held around each attempt, never during a retry's wait


def build_session(pool_size: int = 32) -> requests.Session:
    """A session whose connection pool fits ``pool_size`` concurrent checks per host."""
    session = requests.Session()
    adapter = DeadlineAdapter(pool_connections=max(pool_size, 10), pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    # requests re-reads every proxy variable of os.environ on each request (~0.4 ms); skip that
    # unless a proxy is actually configured, so the common case pays nothing
    session.trust_env = any(k.lower().endswith("_proxy") for k in os.environ)
    return session


@dataclass(frozen=True)
class Attempt:
    ok: bool
    status_code: int | None
    latency_ms: float | None
    error: ErrorKind | None = None
    message: str = ""
    retryable: bool = False
    retry_after: float | None = None
    final_url: str | None = None  # set when redirects were followed


class RedirectElsewhere(Exception):
    """``follow_redirects: same-host`` and the target redirected to another host or port."""

    def __init__(self, where: str):
        super().__init__(where)
        self.where = where


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
    """Map a requests/urllib3 exception to an error kind, with a message free of URLs."""

    host = redact_target_url(f"http://{urlsplit(spec.url).hostname or 'host'}/").split("//", 1)[-1].rstrip("/")
    causes = list(_causes(exc))
    if isinstance(exc, requests.exceptions.SSLError) or any(isinstance(c, ssl.SSLError) for c in causes):
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
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return Attempt(
            False, None, None, ErrorKind.TOO_MANY_REDIRECTS,
            f"more than {spec.max_redirects} redirects", retryable=False,
        )
    if isinstance(exc, (requests.exceptions.Timeout, socket.timeout, TimeoutError)):
        return Attempt(False, None, None, ErrorKind.TIMEOUT, f"no answer within {spec.timeout:g}s", True)
    if any(isinstance(c, (NameResolutionError, socket.gaierror)) for c in causes):
        return Attempt(False, None, None, ErrorKind.DNS, f"DNS lookup failed for {host}", True)
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return Attempt(False, None, None, ErrorKind.REFUSED, f"connection refused by {host}", True)
    if any(isinstance(c, (TimeoutError, socket.timeout)) for c in causes):
        return Attempt(False, None, None, ErrorKind.TIMEOUT, f"no answer within {spec.timeout:g}s", True)
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)):
        return Attempt(False, None, None, ErrorKind.INVALID_RESPONSE, "malformed response body", True)
    invalid = next((c for c in causes if isinstance(c, http.client.HTTPException)
                    and not isinstance(c, http.client.RemoteDisconnected)), None)
    if invalid is not None:
        return Attempt(False, None, None, ErrorKind.INVALID_RESPONSE,
                       f"invalid HTTP response from {host}: {_invalid_reason(invalid)}", True)
    if any(isinstance(c, http.client.RemoteDisconnected) for c in causes):
        return Attempt(False, None, None, ErrorKind.CONNECTION,
                       f"connection closed by {host} without an answer", True)
    if isinstance(exc, requests.exceptions.ConnectionError):
        kind = next((type(c).__name__ for c in causes if isinstance(c, OSError)), "connection error")
        return Attempt(False, None, None, ErrorKind.CONNECTION, f"connection failed ({kind})", True)
    return Attempt(False, None, None, ErrorKind.CONNECTION, f"request failed ({type(exc).__name__})", True)


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


def _retry_after(response: requests.Response) -> float | None:
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
    session: requests.Session, spec: MonitorSpec, headers: dict
) -> tuple[requests.Response, str | None]:
    """(the final response, where redirects led or None). At most ``spec.max_redirects`` hops (a
    per-monitor bound; the session is shared), as ``spec.follow_redirects`` allows. The monitor's
    own headers (often credentials) are never sent to another host."""
    url, method = spec.url, spec.method
    origin = _origin(spec.url)
    follow = spec.max_redirects > 0 and spec.follow_redirects != "none"
    for hop in range(spec.max_redirects + 1):
        same = _origin(url) == origin
        response = session.request(
            method, url, headers=headers if same else {}, timeout=(spec.timeout, spec.timeout),
            allow_redirects=False, verify=spec.verify_tls, stream=True,
        )
        location = response.headers.get("Location") if response.is_redirect else None
        if not location or not follow:
            return response, (url if hop else None)
        response.close()
        if hop == spec.max_redirects:
            raise requests.exceptions.TooManyRedirects(f"more than {spec.max_redirects} redirects")
        url = urljoin(url, location)
        if spec.follow_redirects == "same-host" and _origin(url) != origin:
            host, port = _origin(url)
            raise RedirectElsewhere(f"{host}:{port}")
        if response.status_code in (301, 302, 303) and method != "HEAD":
            method = "GET"
    raise AssertionError("unreachable")


def attempt_once(session: requests.Session, spec: MonitorSpec, clock: Callable[[], float] = time.perf_counter) -> Attempt:
    """One request: status, capped body read and keyword match."""
    started = clock()
    with hard_deadline(spec.timeout) as scope:
        attempt = _attempt(session, spec, clock, started)
    if scope.expired:  # the watchdog cut the connection: whatever arrived is incomplete
        return Attempt(False, attempt.status_code, round((clock() - started) * 1000, 1), ErrorKind.TIMEOUT,
                       f"no complete answer within {spec.timeout:g}s", retryable=True)
    return attempt


def _attempt(session: requests.Session, spec: MonitorSpec, clock: Callable[[], float], started: float) -> Attempt:
    headers = {k: v.get_secret_value() for k, v in spec.headers.items()}
    try:
        response, final_url = _request_following_redirects(session, spec, headers)
        try:
            # Read the body (at most BODY_LIMIT): a fully read body hands the connection back to
            # the pool for the next check of this host; an unread one would be closed.
            body = b""
            if spec.method != "HEAD":
                for chunk in response.iter_content(chunk_size=65536):
                    body += chunk
                    if len(body) >= BODY_LIMIT:
                        body = body[:BODY_LIMIT]
                        break
        finally:
            response.close()
    except Exception as exc:  # noqa: BLE001 - every failure becomes a typed result
        found = classify_exception(exc, spec)
        return Attempt(**{**found.__dict__, "latency_ms": round((clock() - started) * 1000, 1)})
    latency = round((clock() - started) * 1000, 1)
    code = response.status_code
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
        text = body.decode(response.encoding or "utf-8", errors="replace")
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
    return Attempt(True, code, latency, message=_status_text(code), final_url=final_url)


def check(
    spec: MonitorSpec,
    session: requests.Session | None = None,
    sleep: Sleep = time.sleep,
    clock: Callable[[], float] = time.perf_counter,
    slot: Slot = nullcontext,
) -> CheckResult:
    """Check one monitor with tenacity retries; never raises.

    ``slot`` is entered around each attempt only (a per-host limit, say): the wait between attempts
    holds nothing, so healthy monitors never queue behind a failing one's backoff.

    An exception from our own code (not from the network) becomes a ``check_error`` result, which
    the policy keeps apart from the service being down; it is logged with its type only, never with
    the URL (which may carry secrets).
    """
    try:
        return _check(spec, session, sleep, clock, slot)
    except Exception as exc:  # noqa: BLE001 - one monitor's bug never crashes a batch
        log.error("The check of %s failed inside the toolkit (%s); reported as a check error",
                  spec.name, type(exc).__name__)
        return CheckResult(
            monitor=spec.name, url=_safe_url(spec.url), ok=False, attempts=1,
            error=ErrorKind.CHECK_ERROR, message=f"internal check error ({type(exc).__name__})",
        )


def _safe_url(url: str) -> str:
    try:
        return redact_target_url(url)
    except Exception:  # noqa: BLE001
        return "<url hidden>"


def _check(spec: MonitorSpec, session: requests.Session | None, sleep: Sleep, clock: Callable[[], float],
           slot: Slot) -> CheckResult:
    own_session = session is None
    session = session or build_session(4)
    backoff = wait_exponential_jitter(
        initial=spec.retry_backoff, max=spec.retry_backoff_max, jitter=spec.retry_backoff
    )

    def wait(retry_state) -> float:
        base = backoff(retry_state)
        last = retry_state.outcome.result() if retry_state.outcome else None
        if last is not None and last.retry_after is not None:
            return max(base, min(last.retry_after, spec.retry_backoff_max))
        return base

    retrying = Retrying(
        stop=stop_after_attempt(spec.attempts),
        wait=wait,
        retry=retry_if_result(lambda a: not a.ok and a.retryable),
        sleep=sleep,
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
    )
    def attempt() -> Attempt:
        with slot():
            return attempt_once(session, spec, clock)

    started = clock()
    try:
        last = retrying(attempt)
        attempts = retrying.statistics.get("attempt_number", 1)
    finally:
        if own_session:
            session.close()
    return CheckResult(
        monitor=spec.name,
        url=redact_target_url(spec.url),
        ok=last.ok,
        status_code=last.status_code,
        latency_ms=last.latency_ms,
        attempts=attempts,
        elapsed_ms=round((clock() - started) * 1000, 1),
        error=last.error,
        message=last.message,
        final_url=_safe_url(last.final_url) if last.final_url else None,
    )
