"""What every check type shares: one attempt's outcome, and the ``Checker`` interface.

A check type is one module of this package with one ``Checker`` object, registered by one line in
``alerting/checks/__init__.py``. ``alerting.check.check`` runs it: tenacity retries around
``attempt``, an exception from ``attempt`` goes through ``classify``, then the slow/degraded rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from alerting.http_client import HttpClient
from alerting.models import ErrorKind, MonitorSpec, utcnow

Clock = Callable[[], float]


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
    warning: ErrorKind | None = None  # ok, but degraded (cert_expiring)
    warning_message: str = ""


@dataclass(frozen=True)
class Context:
    """What an attempt may use: the pooled HTTP client (http only), the clock for latencies and the
    wall clock (``now``: injected by tests of time-based checks)."""

    http: HttpClient | None
    clock: Clock
    now: Callable[[], datetime] = utcnow


class Checker(Protocol):
    """One check type."""

    name: str  # the ``type:`` value, and the URL scheme that selects it (http also takes https)
    schemes: tuple[str, ...]
    fields: frozenset[str]  # MonitorSpec fields that only this type reads (elsewhere: a config problem)

    def problems(self, spec: MonitorSpec) -> list[tuple[str, str]]:
        """(field, message) for each type-specific field that cannot work; empty when all is well."""
        ...

    def attempt(self, spec: MonitorSpec, context: Context) -> Attempt:
        """One attempt; may raise (``classify`` turns the exception into an Attempt)."""
        ...

    def classify(self, exc: BaseException, spec: MonitorSpec) -> Attempt:
        """An exception from ``attempt`` as an error kind and a message free of secrets."""
        ...

    def expectation(self, spec: MonitorSpec) -> str:
        """What a passing check means, for alert texts ("Expected: ...")."""
        ...


def failed(kind: ErrorKind, message: str, retryable: bool = True) -> Attempt:
    return Attempt(False, None, None, kind, message, retryable=retryable)


def elapsed_ms(clock: Clock, started: float) -> float:
    return round((clock() - started) * 1000, 1)
