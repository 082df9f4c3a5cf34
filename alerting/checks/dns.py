"""The dns type: ``dns://name`` resolves (``record_type`` A, AAAA, CNAME, MX, TXT or NS) through the
system's resolver or ``resolver`` (ip or ip:port), and the answer holds every ``expect_values``."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from alerting.checks.base import Attempt, Context, elapsed_ms, failed
from alerting.models import ErrorKind, MonitorSpec

RECORD_TYPES = ("A", "AAAA", "CNAME", "MX", "TXT", "NS")


def name_of(spec: MonitorSpec) -> str:
    return urlsplit(spec.url).hostname or ""


def parse_resolver(text: str) -> tuple[str, int]:
    """``1.1.1.1``, ``1.1.1.1:5353``, ``::1`` or ``[::1]:5353`` -> (ip, port); ValueError otherwise."""
    text = text.strip()
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"expected an IP address or IP:port, got {text!r}")
            port = _port(rest[1:], text)
    elif text.count(":") == 1:
        host, _, number = text.partition(":")
        port = _port(number, text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"expected an IP address or IP:port such as 1.1.1.1 or 127.0.0.1:5353, got {text!r}") from None
    return host, port


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"port out of range in {whole!r} (use 1-65535)")
    return int(text)


def _normal(value: str, record_type: str) -> str:
    return value if record_type == "TXT" else value.rstrip(".").lower()


def _values(answer, record_type: str) -> list[str]:
    found = []
    for rdata in answer:
        if record_type == "TXT":
            found.append(b"".join(rdata.strings).decode("utf-8", errors="replace"))
        else:
            found.append(rdata.to_text())
    return found


class DnsChecker:
    name = "dns"
    schemes: tuple[str, ...] = ("dns",)
    fields: frozenset[str] = frozenset({"record_type", "expect_values", "resolver"})

    def problems(self, spec: MonitorSpec) -> list[tuple[str, str]]:
        found = []
        if spec.record_type.upper() not in RECORD_TYPES:
            found.append(("record_type", f"unknown record type {spec.record_type!r} (use {', '.join(RECORD_TYPES)})"))
        if spec.resolver is not None:
            try:
                parse_resolver(spec.resolver)
            except ValueError as exc:
                found.append(("resolver", str(exc)))
        if urlsplit(spec.url).port or urlsplit(spec.url).path not in ("", "/"):
            found.append(("url", "a dns monitor takes a name only: dns://example.com (the resolver goes in resolver:)"))
        return found

    def attempt(self, spec: MonitorSpec, context: Context) -> Attempt:
        import dns.resolver

        record_type = spec.record_type.upper()
        resolver = dns.resolver.Resolver(configure=spec.resolver is None)
        if spec.resolver is not None:
            ip, port = parse_resolver(spec.resolver)
            resolver.nameservers, resolver.port = [ip], port
        resolver.timeout = resolver.lifetime = spec.timeout
        resolver.cache = None
        started = context.clock()
        answer = resolver.resolve(name_of(spec), record_type, search=False)
        latency = elapsed_ms(context.clock, started)
        values = _values(answer, record_type)
        seen = {_normal(v, record_type) for v in values}
        shown = ", ".join(values[:5]) + (f" (+{len(values) - 5} more)" if len(values) > 5 else "")
        missing = [v for v in spec.expect_values if _normal(v, record_type) not in seen
                   and not (record_type == "MX" and any(s.split()[-1] == _normal(v, record_type) for s in seen))]
        if missing:
            return Attempt(False, None, latency, ErrorKind.DNS_MISMATCH,
                           f"{record_type} {name_of(spec)}: expected {', '.join(missing)}, got {shown}", retryable=True)
        return Attempt(True, None, latency, message=f"{record_type} {name_of(spec)}: {shown}")

    def classify(self, exc: BaseException, spec: MonitorSpec) -> Attempt:
        import dns.exception
        import dns.resolver

        name, record_type = name_of(spec), spec.record_type.upper()
        via = f" (resolver {spec.resolver})" if spec.resolver else ""
        if isinstance(exc, dns.resolver.NXDOMAIN):
            return failed(ErrorKind.DNS_NXDOMAIN, f"{name} does not exist (NXDOMAIN){via}", retryable=False)
        if isinstance(exc, dns.resolver.NoAnswer):
            return failed(ErrorKind.DNS_NO_ANSWER, f"{name} has no {record_type} record{via}", retryable=False)
        if isinstance(exc, dns.exception.Timeout):
            return failed(ErrorKind.DNS_TIMEOUT, f"no DNS answer for {name} within {spec.timeout:g}s{via}")
        if isinstance(exc, dns.resolver.NoNameservers):
            return failed(ErrorKind.DNS, f"no resolver could answer for {name} (SERVFAIL or refused){via}")
        if isinstance(exc, (dns.exception.DNSException, OSError)):
            return failed(ErrorKind.DNS, f"DNS query for {name} failed ({type(exc).__name__}){via}")
        raise exc

    def expectation(self, spec: MonitorSpec) -> str:
        values = f" with {', '.join(spec.expect_values)}" if spec.expect_values else ""
        return f"{spec.record_type.upper()} record for {name_of(spec)}{values}"


CHECKER = DnsChecker()
