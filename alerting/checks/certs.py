"""Reading a server certificate (DER bytes) for what alerts say: expiry, days left, issuer. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from alerting.models import ErrorKind, MonitorSpec, utcnow

DAY = 86400.0


@dataclass(frozen=True)
class CertInfo:
    not_after: datetime
    issuer: str
    subject: str

    def days_left(self, now: datetime) -> float:
        return (self.not_after - now).total_seconds() / DAY

    def describe(self, now: datetime) -> str:
        return f"expires {self.not_after:%Y-%m-%d %H:%M} UTC, issued by {self.issuer}"


@lru_cache(maxsize=1024)
def read_cert(der: bytes) -> CertInfo:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_der_x509_certificate(der)

    def name(value: x509.Name) -> str:
        common = value.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(common[0].value) if common else value.rfc4514_string() or "an unnamed issuer"

    return CertInfo(cert.not_valid_after_utc, name(cert.issuer), name(cert.subject))


def expiry_warning(spec: MonitorSpec, der: bytes | None, now: datetime | None = None) -> tuple[ErrorKind, str] | None:
    """``(cert_expiring, message)`` when the certificate expires within ``cert_expiry_warning``."""
    if der is None or spec.cert_expiry_warning is None:
        return None
    now = now or utcnow()
    info = read_cert(der)
    left = info.days_left(now)
    if left * DAY > spec.cert_expiry_warning:
        return None
    return ErrorKind.CERT_EXPIRING, (
        f"the certificate expires in {_days(left)} ({info.not_after:%Y-%m-%d %H:%M} UTC; "
        f"warning at {spec.cert_expiry_warning / DAY:g} days), issued by {info.issuer}"
    )


def _days(left: float) -> str:
    if left < 1:
        return f"{max(left * 24, 0):.0f} hours"
    return f"{left:.0f} day{'s' if round(left) != 1 else ''}"
