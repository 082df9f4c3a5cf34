"""Checking one monitor from several locations: which locations, how many must agree, and the one
result the policy sees (pure; no I/O, no clock).

    locations_of(spec, known)        the monitor's locations (default: every known one)
    quorum_of(spec, known)           failing locations needed for DOWN (default: a majority)
    combine(spec, known, answers)    one CheckResult from each location's result (None: no live worker)

The rule: DOWN (a failing result) only when at least ``quorum`` locations saw it fail in the same
cycle. Fewer failing locations is PARTIAL: a passing result with the ``partial`` warning, which the
policy keeps on the warning level beside UP (alerting/policy.py), so status, history and the artifact
show it and it never sends a DOWN. A location that did not answer (no live worker, its batch lost with
a killed worker) counts as neither up nor down; it is named in the text. The text lists every
location's result: "eu-west: timeout after 3 attempts; us-east: HTTP 503; ap-south: up, 120 ms".
"""

from __future__ import annotations

from collections.abc import Mapping

from alerting.models import CheckResult, ErrorKind, MonitorSpec

NO_WORKER = "no live worker"


def locations_of(spec: MonitorSpec, known: list[str]) -> list[str]:
    return list(spec.locations) if spec.locations else list(known)


def quorum_of(spec: MonitorSpec, known: list[str]) -> int:
    if spec.quorum is not None:
        return spec.quorum
    return len(locations_of(spec, known)) // 2 + 1


def describe(result: CheckResult | None) -> str:
    """One location's result, as the DOWN text lists it."""
    if result is None:
        return NO_WORKER
    if result.ok:
        return "up" if result.latency_ms is None else f"up, {result.latency_ms:.0f} ms"
    return result.summary()


def combine(spec: MonitorSpec, known: list[str], answers: Mapping[str, CheckResult | None]) -> CheckResult | None:
    """The monitor's result for this cycle from each of its locations' results, or None when no
    location answered (nothing was checked: the policy must not see a cycle)."""
    where = locations_of(spec, known)
    got = {loc: answers.get(loc) for loc in where}
    answered = [r for r in got.values() if r is not None]
    if not answered:
        return None
    failed = [r for r in answered if not r.ok]
    text = "; ".join(f"{loc}: {describe(r)}" for loc, r in got.items())
    newest = max(r.checked_at for r in answered)
    base = failed[0] if failed else min(answered, key=lambda r: r.latency_ms or 0.0)
    update: dict = {"checked_at": newest, "attempts": max(r.attempts for r in answered),
                    "elapsed_ms": max(r.elapsed_ms for r in answered)}
    if len(failed) >= quorum_of(spec, known):
        return base.model_copy(update={**update, "message": text})
    if failed:
        up = [r for r in answered if r.ok]
        latency = min((r.latency_ms for r in up if r.latency_ms is not None), default=None)
        status = next((r.status_code for r in up), None)
        return base.model_copy(update={
            **update, "ok": True, "error": None, "status_code": status, "latency_ms": latency,
            "message": "", "warning": ErrorKind.PARTIAL,
            "warning_message": f"failing from {len(failed)} of {len(where)} locations (quorum {quorum_of(spec, known)}): {text}",
        })
    if len(answered) < len(where) and base.warning is None:
        return base.model_copy(update={**update, "message": text})
    return base.model_copy(update=update)
