"""The service monitor block: one watched service, added or changed in the Prefect UI.

Its fields are the monitor fields of the YAML file. Empty channels, status codes and texts take the
YAML file's ``defaults`` (then the built-in default); timeout and attempts are set on the block
itself (10 s and 3 unless changed). Other YAML defaults (retry backoff ...) apply as they are.
The served flow reads the blocks at every run, so a change in the UI needs no restart.
"""

from __future__ import annotations

from typing import Any, Literal

from prefect.blocks.core import Block
from prefect.types import SecretDict
from pydantic import Field, HttpUrl

from alerting.models import MonitorSpec

MONITOR_LOGO = HttpUrl("https://raw.githubusercontent.com/caronc/apprise/master/apprise/assets/themes/default/apprise-warning-128x128.png")


class ServiceMonitor(Block):
    """A service to watch: an HTTP(S) URL checked by the served monitor flow, alerting the named
    channels when it goes down."""

    _block_type_name = "Service Monitor"
    _block_type_slug = "service-monitor"
    _logo_url = MONITOR_LOGO
    _documentation_url = HttpUrl("https://docs.prefect.io/v3/concepts/blocks")
    _description = (
        "Outage alerting: an HTTP(S) service the monitor flow checks on every run; when it is down, "
        "its channels get a DOWN alert. Empty channels take the YAML file's defaults."
    )

    service_name: str = Field(
        default="",
        title="Service name",
        description="Name shown in alerts and on the dashboard; unique across all monitors. Empty: the block's name.",
    )
    url: str = Field(default=..., title="URL", description="http:// or https:// URL to check.")
    method: Literal["GET", "HEAD", "POST"] = Field(default="GET", description="HTTP method of the check.")
    expect_status: list[int] = Field(
        default_factory=list, description="Accepted HTTP status codes, e.g. [200, 204]. Empty: any 2xx."
    )
    contains: str = Field(default="", description="Text that must be in the response body. Empty: no text check.")
    not_contains: str = Field(default="", description="Text that must not be in the response body. Empty: no check.")
    timeout: float = Field(default=10.0, gt=0, le=600, description="Seconds per attempt (connect and read).")
    attempts: int = Field(default=3, ge=1, le=20, description="Attempts inside one check before the service counts as down.")
    channels: list[str] = Field(
        default_factory=list,
        description=(
            "Who is alerted, e.g. [\"ops\"]: channel names from the YAML file, names of channel blocks "
            "(Apprise Channel, SMTP E-mail Channel, or any notification block), or block:TYPE-SLUG/BLOCK-NAME. "
            "Empty: the YAML file's defaults.channels."
        ),
    )
    headers: SecretDict = Field(
        default_factory=lambda: SecretDict({}), description="Request headers, e.g. {\"Authorization\": \"...\"}. Kept secret."
    )
    verify_tls: bool = Field(default=True, title="Verify TLS", description="Reject invalid TLS certificates.")
    tags: list[str] = Field(
        default_factory=list, description="Labels; the monitor flow can be limited to monitors with one tag."
    )
    enabled: bool = Field(default=True, description="Uncheck to pause this monitor without deleting it.")

    def to_spec(self, document_name: str, defaults: dict[str, Any] | None = None) -> MonitorSpec:
        """The validated MonitorSpec; raises pydantic's ValidationError naming the bad field."""
        fields: dict[str, Any] = {
            "name": self.service_name.strip() or document_name,
            "url": self.url,
            "method": self.method,
            "timeout": self.timeout,
            "attempts": self.attempts,
            "verify_tls": self.verify_tls,
            "tags": list(self.tags),
        }
        for key in ("expect_status", "contains", "not_contains", "channels"):
            if value := getattr(self, key):  # empty: the YAML defaults, else the built-in default
                fields[key] = value
        if headers := self.headers.get_secret_value():
            fields["headers"] = headers
        return MonitorSpec.model_validate({**(defaults or {}), **fields})
