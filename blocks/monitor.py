"""The service monitor block: one watched service, added or changed in the Prefect UI.

Its fields are the monitor fields of the YAML file, with the same names. An empty field takes the
YAML file's ``defaults`` (then the built-in default), so a block monitor behaves like a YAML monitor
that leaves that field out. The served flow reads the blocks at every run, so a change in the UI
needs no restart.

``url`` and ``headers`` are secret fields (a URL often carries a token): the Prefect API without
secrets, the UI and the block-document events show them masked. Documents saved before ``url`` was
secret (a plain string, ``timeout`` as a number) still load; see ``blocks.loader`` for how they are
re-saved with the secret schema.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from prefect.blocks.core import Block
from prefect.types import SecretDict
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    ValidationError,
    WithJsonSchema,
    field_validator,
)

from alerting.checks import spec_problems
from alerting.durations import parse_duration
from alerting.models import MonitorSpec
from alerting.prefect_api import MONITOR_BLOCK_SLUG

MONITOR_LOGO = HttpUrl("https://raw.githubusercontent.com/caronc/apprise/master/apprise/assets/themes/default/apprise-warning-128x128.png")

# block field -> MonitorSpec field (every other block field has the MonitorSpec field's name)
RENAMED = {"service_name": "name"}
BLOCK_ONLY = ("enabled",)
DURATION_FIELDS = ("interval", "timeout", "retry_backoff", "retry_backoff_max", "flap_window", "renotify_every",
                   "cert_expiry_warning", "degraded_after", "max_age")
OFF_WORDS = ("never", "off")  # renotify_every, cert_expiry_warning, degraded_after: none at all


def _duration_text(value: object) -> object:
    """Numbers (what older blocks stored for timeout) become text: ``10.0`` -> ``"10"``; blank -> None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return f"{value:g}"
    if isinstance(value, str) and not value.strip():
        return None
    return value


# Optional fields are shown as plain inputs (left empty: None), not as Prefect's "string | null" switch.
DurationText = Annotated[str | None, BeforeValidator(_duration_text), WithJsonSchema({"type": "string"})]
OptionalText = Annotated[str | None, WithJsonSchema({"type": "string"})]
OptionalDatetime = Annotated[datetime | None, WithJsonSchema({"type": "string", "format": "date-time"})]


def _int_schema(low: int, high: int) -> WithJsonSchema:
    return WithJsonSchema({"type": "integer", "minimum": low, "maximum": high})


Attempts = Annotated[int | None, _int_schema(1, 20)]
OptionalSwitch = Annotated[bool | None, WithJsonSchema({"type": "boolean"})]
OptionalSecret = Annotated[SecretStr | None, WithJsonSchema({"type": "string", "format": "password", "writeOnly": True})]
Redirects = Annotated[int | None, _int_schema(0, 30)]
Threshold = Annotated[int | None, _int_schema(1, 1000)]
FlapThreshold = Annotated[int | None, _int_schema(0, 1000)]
# a plain drop-down (left empty: the YAML defaults), not Prefect's "string | null" switch
RedirectRule = Annotated[
    Literal["any", "same-host", "none"] | None, WithJsonSchema({"type": "string", "enum": ["any", "same-host", "none"]})
]


def _duration(title: str, description: str, example: str) -> Any:
    return Field(
        default=None,
        title=title,
        description=f"{description} Written as 30s, 5m, 1h30m or a number of seconds, e.g. {example}. "
        "Empty: the YAML file's defaults, else the built-in default.",
    )


class MaintenanceWindowForm(BaseModel):
    """A time when alerts are held (checks go on): one-off (start, end) or recurring (cron, duration)."""

    model_config = ConfigDict(extra="forbid", title="Maintenance window")

    name: OptionalText = Field(default=None, title="Name", description="Optional label shown in status, e.g. 'weekly DB upgrade'.")
    start: OptionalDatetime = Field(default=None, title="Start", description="One-off window: when it starts.")
    end: OptionalDatetime = Field(default=None, title="End", description="One-off window: when it ends.")
    cron: OptionalText = Field(
        default=None, title="Repeats (cron)", description="Recurring window: when it starts, as cron, e.g. '0 2 * * SUN'."
    )
    duration: DurationText = Field(default=None, title="Lasts", description="Recurring window: how long, e.g. 2h.")
    timezone: OptionalText = Field(
        default=None, title="Time zone", description="IANA name for cron and dates without a zone, e.g. Europe/Madrid. Empty: UTC."
    )


class ServiceMonitor(Block):
    """A service to watch: an HTTP(S) URL checked by the served monitor flow, alerting the named
    channels when it goes down."""

    _block_type_name = "Service Monitor"
    _block_type_slug = MONITOR_BLOCK_SLUG  # the CLI asks the API for it without importing Prefect
    _logo_url = MONITOR_LOGO
    _documentation_url = HttpUrl("https://docs.prefect.io/v3/concepts/blocks")
    _description = (
        "Outage alerting: a service the monitor flow checks (HTTP(S), TCP, DNS, TLS certificate or a Prefect "
        "deployment's runs); when it is down, "
        "its channels get a DOWN alert. Every field left empty takes the YAML file's defaults."
    )

    model_config = ConfigDict(hide_input_in_errors=True)  # errors never echo the secret URL or headers

    # --- what to check
    service_name: str = Field(
        default="",
        title="Service name",
        description="Name shown in alerts, on the dashboard and on the command line; unique across all "
        "monitors. Empty: the block's name.",
    )
    url: SecretStr = Field(
        default=...,
        title="URL",
        description="What to check: an http:// or https:// address, or tcp://host:port, dns://name, "
        "tls://host:port, prefect-deployment://FLOW/DEPLOYMENT. Kept secret (URLs often carry tokens); "
        "alerts show it with credentials and tokens masked.",
    )
    type: OptionalText = Field(
        default=None, title="Check type",
        description="http (default), tcp, dns, tls or prefect-deployment. Empty: the URL's scheme says it "
        "(tcp://host:port, dns://name, tls://host:port, prefect-deployment://FLOW/DEPLOYMENT), else http.",
    )
    method: Literal["GET", "HEAD", "POST"] = Field(default="GET", title="HTTP method", description="HTTP method of the check.")
    headers: SecretDict = Field(
        default_factory=lambda: SecretDict({}),
        title="Request headers",
        description="Headers sent with every check, e.g. {\"Authorization\": \"Bearer ...\"}. Kept secret.",
    )
    # --- what counts as up
    expect_status: list[int] = Field(
        default_factory=list,
        title="Expected status codes",
        description="HTTP status codes that mean up, e.g. [200, 204]. Empty: any 2xx.",
    )
    contains: str = Field(
        default="", title="Body must contain", description="Text that must be in the response body. Empty: no text check."
    )
    not_contains: str = Field(
        default="", title="Body must not contain", description="Text that must not be in the response body. Empty: no check."
    )
    conditions: list[str] = Field(
        default_factory=list, title="JSON conditions",
        description="http: conditions on the JSON body, all must hold, e.g. [\"$.status == UP\", "
        "\"$.db.latency_ms < 250\", \"len($.items) > 0\"]. Empty: none.",
    )
    send: OptionalSecret = Field(
        default=None, title="TCP: text to send", description="tcp: text sent after connecting. Kept secret. Empty: none.",
    )
    expect: OptionalText = Field(
        default=None, title="TCP: reply must contain", description="tcp: text the reply must contain. Empty: no reply check.",
    )
    record_type: OptionalText = Field(
        default=None, title="DNS: record type", description="dns: A, AAAA, CNAME, MX, TXT or NS. Empty: A.",
    )
    expect_values: list[str] = Field(
        default_factory=list, title="DNS: expected values",
        description="dns: values the answer must include, e.g. [\"10.0.0.7\"]. Empty: any answer.",
    )
    resolver: OptionalText = Field(
        default=None, title="DNS: resolver", description="dns: resolver address, ip or ip:port. Empty: the system's.",
    )
    cert_expiry_warning: DurationText = _duration(
        "Certificate expiry warning",
        "tls and https: a certificate expiring within this is a warning (DEGRADED, not DOWN); 'off' for none.", "14d",
    )
    degraded_after: DurationText = _duration(
        "Slow after", "Slower than this (the last attempt) is DEGRADED with a SLOW alert, not DOWN; 'off' for none.",
        "800ms",
    )
    degraded_threshold: Threshold = Field(
        default=None, ge=1, le=1000, title="Degraded runs before a warning",
        description="Consecutive slow (or certificate expiring) runs before the SLOW alert. Empty: defaults, else 1.",
    )
    max_age: DurationText = _duration(
        "Prefect deployment: max age",
        "prefect-deployment: the last Completed run must have ended within this (required for that type).", "26h",
    )
    fail_on_failed_run: OptionalSwitch = Field(
        default=None, title="Prefect deployment: a failed run is DOWN",
        description="prefect-deployment: a Failed or Crashed run since the last Completed one is DOWN. Empty: yes.",
    )
    # --- how often and how hard
    interval: DurationText = _duration(
        "Check every", "How often the served monitor checks this service (the flow runs every --interval).", "1m"
    )
    timeout: DurationText = _duration("Timeout", "Time allowed per attempt, for connecting and for reading.", "10s")
    attempts: Attempts = Field(
        default=None, ge=1, le=20, title="Attempts",
        description="Tries inside one check before the service counts as failing (1-20). Empty: defaults, else 3.",
    )
    retry_backoff: DurationText = _duration(
        "First wait between attempts", "Wait after a failed attempt; it doubles each time, plus jitter.", "1s"
    )
    retry_backoff_max: DurationText = _duration(
        "Longest wait between attempts", "Cap on one wait (a 429's Retry-After is honoured up to this).", "30s"
    )
    max_redirects: Redirects = Field(
        default=None, ge=0, le=30, title="Redirects followed",
        description="How many redirects to follow (0-30); 0 checks the 3xx answer itself. Empty: defaults, else 5.",
    )
    follow_redirects: RedirectRule = Field(
        default=None, title="Follow redirects",
        description="any: wherever they lead (as browsers do); same-host: only to the same host and port, a "
        "redirect elsewhere counts as a failure; none: the 3xx answer itself is checked. Empty: defaults, else any.",
    )
    verify_tls: bool = Field(
        default=True, title="Verify TLS",
        description="Reject invalid or expired TLS certificates (a switch is never empty: set here, default on).",
    )
    # --- who is alerted, and when
    channels: list[str] = Field(
        default_factory=list,
        title="Channels",
        description=(
            "Who is alerted, e.g. [\"ops\"]: channel names from the YAML file, names of channel blocks "
            "(Apprise Channel, SMTP E-mail Channel, or any notification block), or block:TYPE-SLUG/BLOCK-NAME. "
            "Empty: the YAML file's defaults.channels."
        ),
    )
    failure_threshold: Threshold = Field(
        default=None, ge=1, le=1000, title="Failed runs before DOWN",
        description="Consecutive failing runs before a DOWN alert (each run already retries). Empty: defaults, else 1.",
    )
    success_threshold: Threshold = Field(
        default=None, ge=1, le=1000, title="Passing runs before RESOLVED",
        description="Consecutive passing runs before a RESOLVED alert. Empty: defaults, else 1.",
    )
    renotify_every: DurationText = Field(
        default=None, title="Remind every",
        description="While still down, send a REMINDER this often, e.g. 2h; 'never' for no reminders. "
        "Empty: the YAML file's defaults, else never.",
    )
    flap_threshold: FlapThreshold = Field(
        default=None, ge=0, le=1000, title="Changes that mean flapping",
        description="Up/down changes within the flapping window that send one FLAPPING alert instead of a "
        "stream; 0 turns it off. Empty: defaults, else 5.",
    )
    flap_window: DurationText = _duration("Flapping window", "Window for counting up/down changes.", "1h")
    maintenance: list[MaintenanceWindowForm] = Field(
        default_factory=list, title="Maintenance windows",
        description="Times when alerts are held (checks go on): a one-off window with start and end, or a "
        "recurring one with cron (e.g. '0 2 * * SUN') and duration (e.g. 2h), in timezone (default UTC).",
    )
    # --- labels and switch
    tags: list[str] = Field(
        default_factory=list, title="Tags",
        description="Labels; a served monitor can be limited to monitor blocks with one tag (ALERTING_MONITOR_TAG).",
    )
    enabled: bool = Field(default=True, title="Enabled", description="Switch off to pause this monitor without deleting it.")

    @field_validator(*DURATION_FIELDS)
    @classmethod
    def _readable_duration(cls, value: str | None, info) -> str | None:
        if value is None or (info.field_name != "interval" and value.strip().lower() in OFF_WORDS):
            return value
        parse_duration(value)  # raises a readable ValueError naming the expected form
        return value.strip()

    def to_spec(self, document_name: str, defaults: dict[str, Any] | None = None) -> MonitorSpec:
        """The validated MonitorSpec; raises pydantic's ValidationError naming the bad field."""
        fields: dict[str, Any] = {
            "name": self.service_name.strip() or document_name,
            "url": self.url.get_secret_value(),
            "method": self.method,
            "tags": list(self.tags),
        }
        for name in type(self).model_fields:
            if name in fields or name in RENAMED or name in BLOCK_ONLY or name in ("url", "headers"):
                continue
            value = getattr(self, name)
            if value is None or (isinstance(value, (list, str)) and not value):
                continue  # empty: the YAML defaults, else the built-in default
            if name == "maintenance":
                value = [w.model_dump(exclude_none=True) for w in value]
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            fields[name] = list(value) if isinstance(value, list) else value
        if headers := self.headers.get_secret_value():
            fields["headers"] = headers
        spec = MonitorSpec.model_validate({**(defaults or {}), **fields})
        # what the block sets for its type; verify_tls (a switch, shared by http and tls) and the default
        # method are always there, whatever the type
        given = [name for name in fields if name != "verify_tls" and not (name == "method" and self.method == "GET")]
        if problems := spec_problems(spec, given):  # the type's own fields, as for a YAML monitor
            raise ValidationError.from_exception_data("ServiceMonitor", [
                {"type": "value_error", "loc": (field,), "input": None, "ctx": {"error": ValueError(message)}}
                for field, message in problems
            ])
        return spec
