"""Typed values that flow through the toolkit: monitor specs in, check results out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from alerting.durations import bounded_duration, parse_duration

Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    Field(ge=0, description="seconds; written as 30s, 5m, 1h or a number of seconds"),
]

MINUTE, DAY = 60.0, 86400.0


def _within(low: float, high: float) -> BeforeValidator:
    return BeforeValidator(lambda value: bounded_duration(value, low, high))


# Bounds: 0, negative, .inf, .nan and absurd values are refused with a message stating the bound,
# instead of passing validation and then failing every check ("request failed (ValueError)").
Timeout = Annotated[float, _within(0.1, 5 * MINUTE), Field(ge=0.1, le=5 * MINUTE)]  # 100ms to 5m
Interval = Annotated[float, _within(1.0, DAY), Field(ge=1.0, le=DAY)]  # 1s to 1d
Backoff = Annotated[float, _within(0.0, 5 * MINUTE), Field(ge=0, le=5 * MINUTE)]  # 0 (no wait) to 5m
BackoffMax = Annotated[float, _within(0.0, 10 * MINUTE), Field(ge=0, le=10 * MINUTE)]  # 0 to 10m
FlapWindow = Annotated[float, _within(MINUTE, 7 * DAY), Field(ge=MINUTE, le=7 * DAY)]  # 1m to 7d
WindowLength = Annotated[float, _within(MINUTE, 31 * DAY), Field(ge=MINUTE, le=31 * DAY)]  # 1m to 31d
RENOTIFY_BOUNDS = (MINUTE, 30 * DAY)  # 1m to 30d, or never


@dataclass(frozen=True)
class ChannelSpec:
    """A named destination of alerts, as the config gives it: an Apprise URL or a Prefect
    notification block (``block:slug/name``). ``alerting.channels.channel_for`` makes it a channel."""

    name: str
    target: SecretStr


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _never_or_duration(value: object) -> object:
    """``renotify_every``: a duration, or ``never`` / ``0`` / empty for no reminders (None)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("never", "off", "")):
        return None
    try:
        if parse_duration(value) == 0:  # 0, "0", "0s": no reminders, as documented
            return None
    except ValueError:
        pass  # bounded_duration says what is wrong, with the bounds
    return bounded_duration(value, *RENOTIFY_BOUNDS)


def _aware(value: datetime, tz: str | None) -> datetime:
    if value.tzinfo is not None:
        return value.astimezone(timezone.utc)
    from zoneinfo import ZoneInfo

    return value.replace(tzinfo=ZoneInfo(tz) if tz else timezone.utc).astimezone(timezone.utc)


class MaintenanceWindow(BaseModel):
    """A time when alerts are held (checks still run, history is kept).

    One-off: ``{start: 2026-01-10T02:00:00Z, end: 2026-01-10T04:00:00Z}``; recurring:
    ``{cron: "0 2 * * SUN", duration: 2h}`` (cron in ``timezone``, default UTC). Naive datetimes are
    read in ``timezone`` too.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    cron: str | None = None
    duration: WindowLength | None = None
    timezone: str | None = Field(default=None, description="IANA zone for cron and naive datetimes")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Madrid)") from None
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> MaintenanceWindow:
        one_off = self.start is not None or self.end is not None
        recurring = self.cron is not None or self.duration is not None
        if one_off and recurring:
            raise ValueError("a window is either start/end or cron/duration, not both")
        if one_off:
            if self.start is None or self.end is None:
                raise ValueError("a one-off window needs both start and end")
            start, end = _aware(self.start, self.timezone), _aware(self.end, self.timezone)
            if end <= start:
                raise ValueError("end must be after start")
            object.__setattr__(self, "start", start)
            object.__setattr__(self, "end", end)
        elif recurring:
            if self.cron is None or not self.duration:
                raise ValueError("a recurring window needs both cron and a non-zero duration")
            from cronsim import CronSim, CronSimError

            try:
                CronSim(self.cron, datetime(2000, 1, 1, tzinfo=timezone.utc))
            except CronSimError as exc:
                raise ValueError(f"invalid cron expression {self.cron!r}: {exc}") from None
        else:
            raise ValueError("give start and end, or cron and duration")
        return self

    def active_until(self, now: datetime) -> datetime | None:
        """The end of the window when ``now`` is inside it, else None."""
        if self.start is not None and self.end is not None:
            return self.end if self.start <= now < self.end else None
        from zoneinfo import ZoneInfo

        from cronsim import CronSim

        zone = ZoneInfo(self.timezone) if self.timezone else timezone.utc
        local = now.astimezone(zone).replace(microsecond=0) + timedelta(seconds=1)
        try:
            began = next(CronSim(self.cron or "", local, reverse=True))
        except StopIteration:  # pragma: no cover - cron that never fires
            return None
        if began.tzinfo is None:
            began = began.replace(tzinfo=zone)
        end = began.astimezone(timezone.utc) + timedelta(seconds=self.duration or 0)
        return end if began.astimezone(timezone.utc) <= now < end else None

    def label(self) -> str:
        if self.name:
            return self.name
        if self.cron:
            return f"{self.cron} for {self.duration:g}s"
        return f"{self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC"


class ErrorKind(str, Enum):
    """Why a check failed; stable strings for JSON output and alert texts."""

    TIMEOUT = "timeout"
    REFUSED = "refused"
    DNS = "dns"
    TLS = "tls"
    CONNECTION = "connection"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    UNEXPECTED_STATUS = "unexpected_status"
    KEYWORD_MISSING = "keyword_missing"
    KEYWORD_PRESENT = "keyword_present"
    INVALID_RESPONSE = "invalid_response"
    REDIRECT_ELSEWHERE = "redirect_elsewhere"  # follow_redirects: same-host, and it went elsewhere
    CONDITION_FAILED = "condition_failed"  # a json: condition on the body did not hold
    TCP_REFUSED = "tcp_refused"  # tcp: nothing listens on the port
    REPLY_MISMATCH = "reply_mismatch"  # tcp: the reply lacked the expected text
    DNS_NXDOMAIN = "dns_nxdomain"  # dns: the name does not exist
    DNS_NO_ANSWER = "dns_no_answer"  # dns: the name exists, no record of that type
    DNS_MISMATCH = "dns_mismatch"  # dns: records, but not the expected values
    DNS_TIMEOUT = "dns_timeout"  # dns: the resolver did not answer
    CERT_EXPIRED = "cert_expired"  # tls: the certificate is past its notAfter
    CERT_INVALID = "cert_invalid"  # tls: hostname mismatch, untrusted chain, self-signed
    STALE_DEPLOYMENT = "stale_deployment"  # prefect-deployment: no Completed run within max_age
    DEPLOYMENT_FAILED = "deployment_failed"  # prefect-deployment: a Failed/Crashed run since the last Completed
    DEPLOYMENT_MISSING = "deployment_missing"  # prefect-deployment: no such deployment
    # warnings: the check passed, but the monitor is DEGRADED (alerting.policy; never DOWN)
    SLOW = "slow"  # slower than degraded_after
    CERT_EXPIRING = "cert_expiring"  # fewer days left than cert_expiry_warning
    PARTIAL = "partial"  # locations: some saw it fail, fewer than the quorum (alerting/quorum.py)
    CHECK_ERROR = "check_error"  # our own code failed, not the service: never a DOWN on its own


def _parse_status_list(value: object) -> object:
    """Accept ``200``, ``"200,204"`` or a list of codes."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if isinstance(value, str):
        parts = [part for part in value.replace(" ", "").split(",") if part]
        if not all(part.isascii() and part.isdigit() for part in parts):
            shown = value if len(value) <= 40 else value[:37] + "..."
            raise ValueError(f"expected HTTP status codes such as 200 or 200,204, got {shown!r}")
        return [int(part) for part in parts]
    return value


# RFC 9110 token: what a header name may be. Values: no CR, LF, NUL or other control character
# (a tab inside is fine), no leading whitespace, Latin-1 only (what http.client can send).
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_HEADER_VALUE_BAD = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HOST_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")
MAX_URL_LENGTH = 8192


def _check_host(host: str) -> str | None:
    """Why ``host`` (from a URL, without brackets or port) cannot be connected to, or None."""
    if host.startswith("[") or ":" in host:  # an IPv6 literal (urlsplit strips the brackets)
        import ipaddress

        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return f"invalid IPv6 address {host!r}"
        return None
    if not host.isascii():  # the two IDNA steps requests takes (urllib3's per label, then UTS 46)
        import idna

        try:
            for label in host.split("."):
                idna.encode(label.lower(), strict=True, std3_rules=True)
            host = idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError) as exc:
            return f"invalid international domain name {host!r} ({exc})"
    name = host[:-1] if host.endswith(".") else host
    if len(name) > 253:
        return "host name longer than 253 characters"
    for label in name.split("."):
        if not label:
            return f"host {host!r} has an empty label (two dots in a row, or a leading dot)"
        if not _HOST_LABEL.match(label):
            bad = next((c for c in label if not (c.isalnum() or c in "-_")), None)
            if bad is not None:
                return f"host {host!r} contains the character {bad!r}"
            if len(label) > 63:
                return f"host {host!r} has a label longer than 63 characters"
            return f"host {host!r}: a label cannot start or end with '-'"
    return None


StatusList = Annotated[list[int], BeforeValidator(_parse_status_list)]


def _one_or_many(value: object) -> object:
    """A list, or one string for a list of one."""
    return [value] if isinstance(value, str) else value


def _off_or_days(value: object) -> object:
    """``cert_expiry_warning``: a duration (14d) or off / never / 0 for no warning (None)."""
    if value is None or value is False or (isinstance(value, str) and value.strip().lower() in ("never", "off", "")):
        return None
    try:
        if parse_duration(value) == 0:
            return None
    except ValueError:
        pass
    return bounded_duration(value, 3600.0, 365 * DAY)


def _off_or_latency(value: object) -> object:
    """``degraded_after``: a latency (800ms, 2s) or off (None)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("never", "off", "")):
        return None
    return bounded_duration(value, 0.1, 5 * MINUTE)


class MonitorSpec(BaseModel):
    """One watched service, as validated from the YAML file (defaults already merged)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200, description="unique name of the service")
    type: str = Field(
        default="http", min_length=1, max_length=40,
        description="what to check: http (default), tcp, dns, tls (alerting/checks/); "
        "by default the URL's scheme says it (tcp://, dns://, tls://)",
    )
    url: str = Field(description="what to check: http(s)://, tcp://host:port, dns://name, tls://host[:port]")
    method: Literal["GET", "HEAD", "POST"] = "GET"
    headers: dict[str, SecretStr] = Field(
        default_factory=dict, description="request headers; values are treated as secrets"
    )
    expect_status: StatusList | None = Field(
        default=None, description="accepted HTTP status codes; default: any 2xx"
    )
    contains: str | None = Field(default=None, description="text that must be in the body")
    not_contains: str | None = Field(default=None, description="text that must not be in the body")
    interval: Interval = Field(default=30.0, description="how often to check: 1s to 1d")
    timeout: Timeout = Field(default=10.0, description="per attempt (connect and read): 100ms to 5m")
    attempts: int = Field(default=3, ge=1, le=20, description="tenacity attempts inside one check")
    retry_backoff: Backoff = Field(
        default=1.0, description="first wait between attempts; doubles each attempt, with jitter: 0 to 5m"
    )
    retry_backoff_max: BackoffMax = Field(
        default=30.0, validate_default=True, description="cap on one wait: 0 to 10m, at least retry_backoff"
    )
    max_redirects: int = Field(default=5, ge=0, le=30)
    follow_redirects: Literal["any", "same-host", "none"] = Field(
        default="any",
        description="any: follow redirects anywhere (as browsers do); same-host: only to the same host and "
        "port (a redirect elsewhere is a failure); none: the redirect itself is the answer",
    )
    verify_tls: bool = True
    conditions: Annotated[list[str], BeforeValidator(_one_or_many)] = Field(
        default_factory=list,
        description="http: conditions on the JSON body and headers, all must hold: '$.status == UP', "
        "'$.db.latency_ms < 250', 'len($.items) > 0', '$.tags contains prod', 'header.Content-Type contains json'",
    )
    send: SecretStr | None = Field(
        default=None, max_length=4096, description="tcp: text to send after connecting (a secret: never shown)"
    )
    expect: str | None = Field(default=None, max_length=4096, description="tcp: text the reply must contain")
    record_type: str = Field(default="A", description="dns: A, AAAA, CNAME, MX, TXT or NS")
    expect_values: Annotated[list[str], BeforeValidator(_one_or_many)] = Field(
        default_factory=list, description="dns: values the answer must include (all of them)"
    )
    resolver: str | None = Field(default=None, description="dns: resolver address, ip or ip:port (default: the system's)")
    cert_expiry_warning: Annotated[float | None, BeforeValidator(_off_or_days)] = Field(
        default=14 * DAY,
        description="tls and https: warn (DEGRADED, not DOWN) when the certificate expires within this; off for never",
    )
    degraded_after: Annotated[float | None, BeforeValidator(_off_or_latency)] = Field(
        default=None, description="slower than this (the last attempt's latency) is DEGRADED, not DOWN: 100ms to 5m",
    )
    max_age: Annotated[float | None, _within(MINUTE, 366 * DAY)] = Field(
        default=None, description="prefect-deployment: the last Completed run must have ended within this: 1m to 366d"
    )
    fail_on_failed_run: bool = Field(
        default=True, description="prefect-deployment: a Failed or Crashed run after the last Completed is DOWN"
    )
    degraded_threshold: int = Field(
        default=1, ge=1, le=1000, description="consecutive degraded runs (slow, certificate expiring) before a warning"
    )
    channels: list[str] = Field(default_factory=list, description="channel names to alert")
    tags: list[str] = Field(default_factory=list)
    # alert lifecycle (see docs/lifecycle.md)
    failure_threshold: int = Field(
        default=1, ge=1, le=1000,
        description="consecutive failing runs before DOWN (each run already retries; the starter config uses 2)",
    )
    success_threshold: int = Field(default=1, ge=1, le=1000, description="consecutive passing runs before RESOLVED")
    renotify_every: Annotated[float | None, BeforeValidator(_never_or_duration)] = Field(
        default=None, description="REMINDER interval while still down (1m to 30d); never (default) for none"
    )
    maintenance: list[MaintenanceWindow] = Field(default_factory=list, description="windows when alerts are held")
    flap_threshold: int = Field(
        default=5, ge=0, le=1000, description="state changes within flap_window that mean FLAPPING; 0 turns it off"
    )
    flap_window: FlapWindow = Field(default=3600.0, description="window for counting state changes: 1m to 7d")
    # checking from several locations (docs/scaling.md): where from, and how many must see it fail
    locations: Annotated[list[str] | None, BeforeValidator(_one_or_many)] = Field(
        default=None, description="locations to check from (names in the top-level 'locations:'); default: all of them",
    )
    quorum: int | None = Field(
        default=None, ge=1, le=100,
        description="locations that must see it fail in the same cycle for DOWN; fewer is PARTIAL; "
        "default: a majority of its locations (1 of 1, 2 of 2 or 3, 3 of 4 or 5)",
    )
    partial_alert: bool = Field(default=False, description="send a low-severity PARTIAL alert (and its RESOLVED)")

    @model_validator(mode="before")
    @classmethod
    def _type_from_scheme(cls, data: object) -> object:
        """No ``type``: the URL's scheme says it (``tcp://`` is a tcp monitor); http(s) is http."""
        if isinstance(data, dict) and data.get("type") is None and isinstance(data.get("url"), str):
            scheme, sep, _ = data["url"].strip().partition("://")
            if sep and scheme.lower() not in ("http", "https") and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
                return {**data, "type": scheme.lower()}
        return data

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("name")
    @classmethod
    def _printable_name(cls, value: str) -> str:
        if _CONTROL.search(value):
            raise ValueError("a name cannot contain line breaks, tabs or other control characters")
        if value != value.strip():
            raise ValueError("a name cannot start or end with a space")
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str, info: ValidationInfo) -> str:
        # The messages name the problem and the host, never the URL as written (it may carry a token).
        value = value.strip()
        if len(value) > MAX_URL_LENGTH:
            raise ValueError(f"URL longer than {MAX_URL_LENGTH} characters")
        if _CONTROL.search(value):
            raise ValueError("URL contains a line break, tab or other control character")
        try:
            parts = urlsplit(value)
        except ValueError as exc:
            raise ValueError(f"not a valid URL ({exc})") from None
        http = info.data.get("type", "http") == "http"
        if (http and parts.scheme not in ("http", "https")) or not parts.hostname:
            from alerting.redact import redact_target_url  # no user info, no secret query values

            wanted = "an http:// or https://" if http else f"a {parts.scheme}://"
            raise ValueError(f"expected {wanted} URL with a host, got {redact_target_url(value)!r}")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise ValueError(f"invalid port in the URL of host {parts.hostname!r} (use 1-65535)") from None
        if parts.port == 0:
            raise ValueError(f"invalid port in the URL of host {parts.hostname!r} (use 1-65535)")
        if " " in value:
            where = "host" if " " in parts.netloc else "URL"
            raise ValueError(f"{where} contains a space (write %20 for a space in a path or query)")
        if reason := _check_host(parts.hostname):  # what requests would refuse (tests/test_config.py)
            raise ValueError(reason)
        return value

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        # a value is a secret: the message names the header, never its value
        for name, secret in value.items():
            if not _HEADER_NAME.match(name):
                shown = name if len(name) <= 40 else name[:37] + "..."
                raise ValueError(
                    f"invalid header name {shown!r}: letters, digits and !#$%&'*+-.^_`|~ only, no spaces or ':'"
                )
            text = secret.get_secret_value()
            if _HEADER_VALUE_BAD.search(text):
                raise ValueError(f"the value of header {name!r} contains a line break or other control character")
            if text[:1].isspace():
                raise ValueError(f"the value of header {name!r} starts with whitespace")
            try:
                text.encode("latin-1")
            except UnicodeEncodeError:
                raise ValueError(f"the value of header {name!r} has characters HTTP headers cannot carry "
                                 "(use ASCII)") from None
        return value

    @field_validator("expect_status")
    @classmethod
    def _valid_codes(cls, value: list[int] | None) -> list[int] | None:
        if value is not None:
            if not value:
                raise ValueError("list at least one status code, or leave it out for any 2xx")
            bad = [code for code in value if not 100 <= code <= 599]
            if bad:
                raise ValueError(f"HTTP status codes are 100-599, got {bad}")
        return value

    @field_validator("locations")
    @classmethod
    def _some_locations(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if not value:
                raise ValueError("list at least one location, or leave it out for every location")
            value = list(dict.fromkeys(value))
        return value

    @field_validator("channels")
    @classmethod
    def _unique_channels(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _backoff_order(self) -> MonitorSpec:
        if self.retry_backoff > self.retry_backoff_max:  # normally caught by _backoff_cap, with its field
            raise ValueError("retry_backoff must not exceed retry_backoff_max")
        return self

    @field_validator("retry_backoff_max")
    @classmethod
    def _backoff_cap(cls, value: float, info: ValidationInfo) -> float:
        first = info.data.get("retry_backoff")
        if first is not None and first > value:
            raise ValueError(f"must be at least retry_backoff ({first:g}s), got {value:g}s")
        return value

    def status_ok(self, status: int) -> bool:
        if self.expect_status is None:
            return 200 <= status < 300
        return status in self.expect_status

    def expectation(self) -> str:
        if self.expect_status is None:
            return "HTTP 2xx"
        return "HTTP " + " or ".join(str(code) for code in self.expect_status)


UtcDatetime = Annotated[datetime, PlainSerializer(lambda d: d.isoformat(), return_type=str)]


class CheckResult(BaseModel):
    """The outcome of one check of one monitor (all tenacity attempts included)."""

    model_config = ConfigDict(frozen=True)

    monitor: str
    url: str = Field(description="the checked URL with credentials and secret values redacted")
    final_url: str | None = Field(default=None, description="where redirects led (redacted), when they were followed")
    ok: bool
    status_code: int | None = None
    latency_ms: float | None = Field(default=None, description="latency of the last attempt")
    attempts: int = 1
    elapsed_ms: float = Field(default=0.0, description="all attempts and waits together")
    error: ErrorKind | None = None
    message: str = ""
    checked_at: UtcDatetime = Field(default_factory=utcnow, description="when the check started")
    type: str = Field(default="http", description="the monitor's type (http, tcp, dns, tls)")
    warning: ErrorKind | None = Field(
        default=None, description="ok, but DEGRADED: slow or cert_expiring (alerting.policy's warning level)"
    )
    warning_message: str = ""

    def summary(self) -> str:
        """Short reason used in flow state messages: ``HTTP 503``, ``timeout after 3 attempts``."""
        if self.ok:
            return f"HTTP {self.status_code}" if self.status_code is not None else "up"
        if self.error in (ErrorKind.UNEXPECTED_STATUS,) and self.status_code is not None:
            reason = f"HTTP {self.status_code}"
        elif self.error is ErrorKind.KEYWORD_MISSING:
            reason = "keyword missing"
        elif self.error is ErrorKind.KEYWORD_PRESENT:
            reason = "forbidden text present"
        elif self.error is ErrorKind.TLS:
            reason = f"TLS: {self.message}" if self.message else "TLS error"
        elif self.error is not None:
            reason = self.error.value.replace("_", " ")
        else:
            reason = "down"
        if self.attempts > 1:
            reason += f" after {self.attempts} attempts"
        return reason


# --- the alert lifecycle's values (alerting/policy.py decides them, alerting/store.py keeps them) ---

class Status(str, Enum):
    UP = "UP"
    DOWN = "DOWN"
    UNKNOWN = "UNKNOWN"


class AlertKind(str, Enum):
    DOWN = "DOWN"
    RESOLVED = "RESOLVED"
    REMINDER = "REMINDER"
    FLAPPING = "FLAPPING"
    # the warning level (DEGRADED: up, but slow or its certificate expiring); its RESOLVED has level "warning"
    SLOW = "SLOW"
    CERT_EXPIRING = "CERT_EXPIRING"
    PARTIAL = "PARTIAL"  # failing from fewer locations than the quorum (only with partial_alert: true)


@dataclass(frozen=True)
class MonitorState:
    """What the store keeps per monitor between runs."""

    monitor: str
    status: Status = Status.UNKNOWN
    since: datetime | None = None  # when the confirmed status began (DOWN: the first failing check)
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    notified_down: bool = False
    last_alert_at: datetime | None = None
    episode_start: datetime | None = None  # first failing check of the current/last failure episode
    episode_end: datetime | None = None  # first passing check after it
    first_error: str | None = None
    last_error: str | None = None
    silenced_until: datetime | None = None
    silence_reason: str | None = None
    changes: tuple[datetime, ...] = ()  # confirmed UP<->DOWN changes inside the flap window
    flapping: bool = False
    # the warning level, beside UP (never while DOWN: DOWN wins): slow, or a certificate expiring
    degraded: bool = False  # confirmed: degraded_threshold consecutive passing runs with a warning
    notified_degraded: bool = False  # a SLOW / CERT_EXPIRING alert was sent, and no RESOLVED yet
    consecutive_warnings: int = 0
    degraded_since: datetime | None = None
    warning_kind: str | None = None  # ErrorKind value of the last warning (slow, cert_expiring)
    warning_text: str | None = None  # what the last warning said

    def silenced(self, now: datetime) -> bool:
        return self.silenced_until is not None and now < self.silenced_until


@dataclass(frozen=True)
class AlertEvent:
    kind: AlertKind
    monitor: str
    at: datetime  # when the policy decided (the alert's original time, kept through retries)
    down_since: datetime | None = None
    up_since: datetime | None = None
    first_error: str | None = None
    last_error: str | None = None
    result: CheckResult | None = None  # the check that led to it
    detail: str = ""  # FLAPPING: how many changes in what window; held DOWN: why it comes late
    level: str = "down"  # "warning" for SLOW, CERT_EXPIRING and the RESOLVED that ends them

    @property
    def downtime(self) -> timedelta | None:
        if self.down_since is None:
            return None
        end = self.up_since or self.at
        return max(end - self.down_since, timedelta(0))
