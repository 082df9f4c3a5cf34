"""Check types: one module each, behind one ``Checker`` interface (``alerting.checks.base``).

A new type is one module with a ``CHECKER`` and one line in ``CHECKERS`` below; the type then works
in YAML (``type:`` or the URL's scheme), in ``alerting check SCHEME://...`` and in ``validate``.
"""

from __future__ import annotations

from collections.abc import Iterable

from alerting.checks import dns, http, prefect_deployment, tcp, tls
from alerting.checks.base import Checker
from alerting.models import MonitorSpec

CHECKERS: dict[str, Checker] = {
    "http": http.CHECKER,
    "tcp": tcp.CHECKER,
    "dns": dns.CHECKER,
    "tls": tls.CHECKER,
    "prefect-deployment": prefect_deployment.CHECKER,
}


def checker_for(type_name: str) -> Checker:
    try:
        return CHECKERS[type_name]
    except KeyError:
        raise KeyError(f"unknown monitor type {type_name!r} (known: {', '.join(CHECKERS)})") from None


def type_fields() -> dict[str, str]:
    """Each type-specific field -> the type that owns it."""
    return {name: checker.name for checker in CHECKERS.values() for name in checker.fields}


def spec_problems(spec: MonitorSpec, given: Iterable[str]) -> list[tuple[str, str]]:
    """(field, message) for the type-specific problems of ``spec``: an unknown type, a URL scheme of
    another type, a field of another type among ``given`` (the fields written for this monitor,
    defaults excluded), and what the type's own checker finds."""
    checker = CHECKERS.get(spec.type)
    if checker is None:
        if spec.url.split("://", 1)[0].lower() == spec.type:  # the type came from the URL's scheme
            from alerting.redact import redact_target_url

            return [("url", f"expected an http:// or https:// URL with a host, got {redact_target_url(spec.url)!r}")]
        return [("type", f"unknown monitor type {spec.type!r} (known: {', '.join(CHECKERS)})")]
    scheme = spec.url.split("://", 1)[0].lower()
    if scheme not in checker.schemes:
        wanted = " or ".join(f"{s}://" for s in checker.schemes)
        return [("url", f"a {checker.name} monitor takes a {wanted} URL, got {scheme}://")]
    owners = type_fields()
    found = [
        (name, f"only for {owners[name]} monitors (this one is {spec.type})")
        for name in given if name in owners and owners[name] != spec.type
    ]
    return found + checker.problems(spec)


def expectation(spec: MonitorSpec) -> str:
    """What passing means, for alert texts; ``${VAR}`` values (a condition may hold one) masked."""
    from alerting.redact import scrub

    checker = CHECKERS.get(spec.type)
    return scrub(checker.expectation(spec)) if checker is not None else spec.type


__all__ = ["CHECKERS", "Checker", "checker_for", "expectation", "spec_problems", "type_fields"]
