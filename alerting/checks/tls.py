"""The tls type: ``tls://host[:port]`` (443 by default) presents a certificate that is trusted, valid
for the host name and not expired; fewer days left than ``cert_expiry_warning`` is a warning
(DEGRADED), not DOWN. Alerts carry the issuer and the expiry date."""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

from alerting.checks.base import Attempt, Context, elapsed_ms, failed
from alerting.checks.certs import expiry_warning, read_cert
from alerting.deadline import hard_deadline, watch_socket
from alerting.models import ErrorKind, MonitorSpec, utcnow

EXPIRED = 10  # X509_V_ERR_CERT_HAS_EXPIRED


def address(spec: MonitorSpec) -> tuple[str, int]:
    parts = urlsplit(spec.url)
    return parts.hostname or "", parts.port or 443


def _handshake(host: str, port: int, timeout: float, verify: bool) -> bytes | None:
    """The server certificate (DER) after a handshake; raises what the handshake raises."""
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    with hard_deadline(timeout), socket.create_connection((host, port), timeout=timeout) as raw:
        watch_socket(raw)
        with context.wrap_socket(raw, server_hostname=host) as sock:
            return sock.getpeercert(binary_form=True)


class TlsChecker:
    name = "tls"
    schemes: tuple[str, ...] = ("tls",)
    fields: frozenset[str] = frozenset()  # cert_expiry_warning and verify_tls are shared with https

    def problems(self, spec: MonitorSpec) -> list[tuple[str, str]]:
        return []

    def attempt(self, spec: MonitorSpec, context: Context) -> Attempt:
        host, port = address(spec)
        started = context.clock()
        der = _handshake(host, port, spec.timeout, spec.verify_tls)
        latency = elapsed_ms(context.clock, started)
        if not der:
            return Attempt(False, None, latency, ErrorKind.CERT_INVALID, "the server sent no certificate")
        info, now = read_cert(der), utcnow()
        if info.not_after <= now:  # only seen with verify_tls: false (verification refuses it first)
            return Attempt(False, None, latency, ErrorKind.CERT_EXPIRED,
                           f"the certificate expired on {info.not_after:%Y-%m-%d %H:%M} UTC, issued by {info.issuer}")
        warning = expiry_warning(spec, der, now)
        return Attempt(True, None, latency, message=f"certificate valid for {info.days_left(now):.0f} days "
                       f"({info.describe(now)})",
                       warning=warning[0] if warning else None, warning_message=warning[1] if warning else "")

    def classify(self, exc: BaseException, spec: MonitorSpec) -> Attempt:
        host, port = address(spec)
        if isinstance(exc, ssl.SSLCertVerificationError):
            detail = _details(host, port, spec.timeout)
            if exc.verify_code == EXPIRED:
                return failed(ErrorKind.CERT_EXPIRED, f"the certificate has expired{detail}", retryable=False)
            reason = exc.verify_message or "verification failed"
            return failed(ErrorKind.CERT_INVALID, f"certificate not accepted: {reason}{detail}", retryable=False)
        if isinstance(exc, ssl.SSLError):
            reason = str(exc.reason or "handshake failed").replace("_", " ").lower()
            return failed(ErrorKind.TLS, f"TLS handshake with {host} port {port} failed: {reason}", retryable=False)
        if isinstance(exc, ConnectionRefusedError):
            return failed(ErrorKind.REFUSED, f"connection to {host} port {port} refused")
        if isinstance(exc, (TimeoutError, socket.timeout)):
            return failed(ErrorKind.TIMEOUT, f"no TLS handshake with {host} port {port} within {spec.timeout:g}s")
        if isinstance(exc, socket.gaierror):
            return failed(ErrorKind.DNS, f"DNS lookup failed for {host}")
        if isinstance(exc, OSError):
            return failed(ErrorKind.CONNECTION, f"connection to {host} port {port} failed ({type(exc).__name__})")
        raise exc

    def expectation(self, spec: MonitorSpec) -> str:
        warn = spec.cert_expiry_warning
        days = f"; warning within {warn / 86400:g} days of expiry" if warn else ""
        return f"a trusted, unexpired certificate for {address(spec)[0]}{days}"


def _details(host: str, port: int, timeout: float) -> str:
    """``(expires ..., issued by ...)`` of a certificate that failed verification, read again without
    verifying; empty when that fails too."""
    try:
        der = _handshake(host, port, timeout, verify=False)
    except (OSError, ValueError):
        return ""
    if not der:
        return ""
    info = read_cert(der)
    return f" ({info.describe(utcnow())})"


CHECKER = TlsChecker()
