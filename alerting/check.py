"""One check of one monitor, whatever its type: tenacity retries around the type's attempt
(``alerting/checks/``), then the slow rule (``degraded_after``); a typed ``CheckResult``, never an
exception.

Which failures are retried is the type's answer (``Attempt.retryable``): for http, timeouts,
connection errors, 5xx, 429 (its Retry-After is honoured up to ``retry_backoff_max``), a missing
keyword and a failed condition; never other 4xx, TLS errors or too many redirects.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime

from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_exponential_jitter

from alerting.checks import checker_for
from alerting.checks.base import Attempt, Context, elapsed_ms
from alerting.checks.http import BODY_LIMIT, attempt_once, classify_exception
from alerting.http_client import HttpClient
from alerting.models import CheckResult, ErrorKind, MonitorSpec, utcnow
from alerting.redact import redact_target_url, scrub

log = logging.getLogger(__name__)
__all__ = ["BODY_LIMIT", "Attempt", "HttpClient", "attempt_once", "check", "classify_exception"]

Sleep = Callable[[float], None]
Slot = Callable[[], AbstractContextManager]  # held around each attempt, never during a retry's wait


def check(
    spec: MonitorSpec,
    client: HttpClient | None = None,
    sleep: Sleep = time.sleep,
    clock: Callable[[], float] = time.perf_counter,
    slot: Slot = nullcontext,
    now: Callable[[], datetime] = utcnow,
) -> CheckResult:
    """Check one monitor with tenacity retries; never raises.

    ``client`` is the pooled HTTP client that http checks share (keep-alive across checks); without
    one, an http check makes its own for this check only.

    ``slot`` is entered around each attempt only (a per-host limit, say): the wait between attempts
    holds nothing, so healthy monitors never queue behind a failing one's backoff.

    An exception from our own code (not from the network) becomes a ``check_error`` result, which
    the policy keeps apart from the service being down; it is logged with its type only, never with
    the URL (which may carry secrets).
    """
    try:
        return _check(spec, client, sleep, clock, slot, now)
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


def _check(spec: MonitorSpec, client: HttpClient | None, sleep: Sleep, clock: Callable[[], float],
           slot: Slot = nullcontext, now: Callable[[], datetime] = utcnow) -> CheckResult:
    own_client = client is None and spec.type == "http"  # the other types open their own sockets
    client = client or (HttpClient(4) if own_client else None)
    backoff = wait_exponential_jitter(
        initial=spec.retry_backoff, max=spec.retry_backoff_max, jitter=spec.retry_backoff
    )

    def wait(retry_state) -> float:
        base = backoff(retry_state)
        last = retry_state.outcome.result() if retry_state.outcome else None
        if last is not None and last.retry_after is not None:
            return max(base, min(last.retry_after, spec.retry_backoff_max))
        return base

    checker = checker_for(spec.type)
    context = Context(client, clock, now)

    def attempt() -> Attempt:
        with slot():  # held around the attempt only, never during a retry's wait
            started = clock()
            try:
                return checker.attempt(spec, context)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a typed result
                found = checker.classify(exc, spec)
                return Attempt(**{**found.__dict__, "latency_ms": elapsed_ms(clock, started)})

    started, started_at = clock(), now()
    try:
        last, attempts = attempt(), 1
        if not last.ok and last.retryable and spec.attempts > 1:
            # tenacity only when a retry is due (most checks pass at once); it replays the first
            # attempt's outcome, so waits, Retry-After and statistics are exactly its own
            first: list[Attempt] = [last]
            retrying = Retrying(
                stop=stop_after_attempt(spec.attempts),
                wait=wait,
                retry=retry_if_result(lambda a: not a.ok and a.retryable),
                sleep=sleep,
                retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
            )
            last = retrying(lambda: first.pop() if first else attempt())
            attempts = retrying.statistics.get("attempt_number", 1)
    finally:
        if own_client and client is not None:
            client.close()
    return CheckResult(
        monitor=spec.name,
        url=redact_target_url(spec.url),
        ok=last.ok,
        status_code=last.status_code,
        latency_ms=last.latency_ms,
        attempts=attempts,
        elapsed_ms=round((clock() - started) * 1000, 1),
        error=last.error,
        message=scrub(last.message),  # a condition, a reply or a value seen may hold a ${VAR} secret
        final_url=_safe_url(last.final_url) if last.final_url else None,
        type=spec.type,
        checked_at=started_at,  # when the check started: the next one is due one interval after it
        **_warning(spec, last),
    )


def _warning(spec: MonitorSpec, last: Attempt) -> dict:
    """The warning level: the type's own (a certificate expiring), else slower than ``degraded_after``
    on the last attempt's latency."""
    if not last.ok:
        return {}
    if last.warning is not None:
        return {"warning": last.warning, "warning_message": scrub(last.warning_message)}
    if spec.degraded_after is not None and last.latency_ms is not None and last.latency_ms > spec.degraded_after * 1000:
        return {"warning": ErrorKind.SLOW,
                "warning_message": f"answered in {last.latency_ms:,.0f} ms, slower than degraded_after "
                                   f"({spec.degraded_after * 1000:,.0f} ms)"}
    return {}
