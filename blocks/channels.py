"""Channel blocks: where alerts go, configured in the Prefect UI, delivered through Apprise.

Both blocks are Prefect ``NotificationBlock``s, so they work wherever Prefect expects one: in the
monitor flow (``block:<slug>/<name>`` channels), and as the block of a Prefect automation's
"send a notification" action, which runs on the server as ``await block.notify(...)``.

Failure is never silent: outside ``raise_on_failure()`` a failed send is logged (secrets scrubbed);
inside it, ``NotificationError`` is raised, which is how the monitor flow and Prefect automations
learn that a message did not go out.
"""

from __future__ import annotations

import asyncio
from abc import ABC
from enum import Enum
from typing import Annotated
from urllib.parse import quote, urlencode

from prefect._internal.compatibility.async_dispatch import async_dispatch  # what Prefect's own blocks use
from prefect.blocks.abstract import NotificationBlock, NotificationError
from pydantic import ConfigDict, Field, HttpUrl, SecretStr, WithJsonSchema, field_validator

from alerting.apprise_quiet import apprise_accepts
from alerting.channels import AppriseChannel as AppriseURLChannel
from alerting.channels import notify_block
from alerting.config import ChannelSpec
from alerting.render import AlertMessage

DOCS_URL = "https://github.com/caronc/apprise/wiki"
APPRISE_LOGO = HttpUrl("https://raw.githubusercontent.com/caronc/apprise/master/apprise/assets/themes/default/apprise-logo.png")
SEVERITIES = ("info", "success", "warning", "failure")  # Apprise notify types


def _severity(notify_type: object) -> str:
    value = getattr(notify_type, "value", notify_type)
    return value if value in SEVERITIES else "info"


EMAIL_LOGO = HttpUrl("https://raw.githubusercontent.com/caronc/apprise/master/apprise/assets/themes/default/apprise-info-128x128.png")


class _AppriseChannel(NotificationBlock, ABC):
    """Shared delivery: build one Apprise URL, send, read the result, report failure.

    An ABC (like Prefect's AbstractAppriseNotificationBlock), so it is never registered as a type."""

    def apprise_url(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def channel_spec(self) -> ChannelSpec:
        name = getattr(self, "_block_document_name", None) or self.get_block_type_slug()
        return ChannelSpec(name=name, target=SecretStr(self.apprise_url()))

    def _subject(self, subject: str | None) -> str:
        return subject or ""

    def _channel(self) -> AppriseURLChannel:
        """One Apprise URL channel (one Apprise service object) per block instance and URL, so
        Apprise's per-service pacing holds across notify calls (as in Prefect's own Apprise blocks)."""
        spec = self.channel_spec()
        kept = getattr(self, "_apprise_channel", None)
        if kept is None or kept[0] != spec:
            kept = (spec, AppriseURLChannel(spec.name, spec.target))
            self._apprise_channel = kept
        return kept[1]

    def _deliver(self, body: str, subject: str | None, notify_type: str | None = None, text_body: str | None = None) -> None:
        channel = self._channel()
        message = AlertMessage(
            kind="ALERT" if notify_type else "TEST",
            monitor=None,
            title=self._subject(subject),
            markdown=body,
            text=body if text_body is None else text_body,
            severity=_severity(notify_type),
        )
        result = channel.send(message)
        if result.ok:
            return
        reason = f"{self.get_block_type_name()} '{channel.name}' ({result.target}) did not deliver: {result.error}"
        if self._raise_on_failure:
            raise NotificationError(log=reason)
        self.logger.error("%s", reason)

    async def anotify(
        self, body: str, subject: str | None = None, notify_type: str | None = None, text_body: str | None = None
    ) -> None:
        """Send one message; awaited by Prefect automations on the server. See ``notify``."""
        await asyncio.to_thread(self._deliver, body, subject, notify_type, text_body)

    @async_dispatch(anotify)
    def notify(  # type: ignore[override]
        self, body: str, subject: str | None = None, notify_type: str | None = None, text_body: str | None = None
    ) -> None:
        """Send one message (sync); in async code ``await block.notify(...)`` uses ``anotify``.

        ``body`` is Markdown (what Prefect sends, e.g. from an automation). Optional, beyond Prefect's
        ``notify(body, subject)``: ``notify_type`` is the alert's severity (``info``, ``success``,
        ``warning``, ``failure``; default ``info``), so Slack and Discord colour an outage as one;
        ``text_body`` is the same message as plain text, sent instead of ``body`` to services whose
        native format is text (as the YAML channels do).
        """
        self._deliver(body, subject, notify_type, text_body)

    def notify_alert(self, *, title: str, markdown: str, text: str, severity: str = "info") -> None:
        """Send one rendered alert (sync): its severity as the Apprise notify type, Markdown or plain
        text as this channel's service expects. The duck-typed hook the deliverer looks for
        (``hasattr(block, "notify_alert")``), so the core never imports this package."""
        self._deliver(markdown, title, severity, text)


class AppriseChannel(_AppriseChannel):
    """An alert channel for any service Apprise reaches: Slack, Discord, Teams, Telegram, ntfy,
    e-mail, webhooks and 100+ more, given as one Apprise URL."""

    _block_type_name = "Apprise Channel"
    _block_type_slug = "apprise-channel"
    _logo_url = APPRISE_LOGO
    _documentation_url = HttpUrl(DOCS_URL)
    _description = (
        "Outage alerting: send alerts to any of the 100+ services Apprise knows (Slack, Discord, "
        "Teams, Telegram, ntfy, webhooks, e-mail ...) through one Apprise URL."
    )

    url: SecretStr = Field(
        default=...,
        title="Apprise URL",
        description=(
            "Where alerts go, as an Apprise URL, e.g. slack://T000/B000/XXXX, "
            "discord://webhook_id/webhook_token, json://host:port/path. Kept secret. "
            f"All services: {DOCS_URL}"
        ),
    )
    tags: list[str] = Field(
        default_factory=list,
        description="Optional labels for finding this channel (e.g. team, severity); not sent.",
    )

    model_config = ConfigDict(hide_input_in_errors=True)  # errors never echo the secret URL

    @field_validator("url")
    @classmethod
    def _valid_apprise_url(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value().strip()
        if raw and set(raw) == {"*"}:
            return value  # an obfuscated value, read back from the API without secrets
        if not apprise_accepts(raw):
            raise ValueError(f"not a valid Apprise URL (see {DOCS_URL})")
        return SecretStr(raw)

    def apprise_url(self) -> str:
        return self.url.get_secret_value()


class SmtpSecurity(str, Enum):
    NONE = "none"
    STARTTLS = "starttls"
    SSL = "ssl"


class EmailChannel(_AppriseChannel):
    """An alert channel that e-mails a list of recipients through your SMTP server."""

    _block_type_name = "SMTP E-mail Channel"
    _block_type_slug = "smtp-email-channel"
    _logo_url = EMAIL_LOGO
    _documentation_url = HttpUrl(DOCS_URL + "/Notify_email")
    _description = "Outage alerting: e-mail alerts to a list of recipients through an SMTP server."

    host: str = Field(default=..., title="SMTP host", description="SMTP server host name or IP, e.g. smtp.example.com.")
    port: int = Field(default=587, ge=1, le=65535, title="SMTP port", description="SMTP port: 587 for STARTTLS, 465 for SSL, 25 plain.")
    security: Annotated[
        SmtpSecurity,
        WithJsonSchema({"type": "string", "enum": [m.value for m in SmtpSecurity], "title": "Connection security"}),
    ] = Field(
        default=SmtpSecurity.STARTTLS,
        title="Connection security",
        description="How the connection to the SMTP server is protected: starttls (plain connect, then "
        "upgraded to TLS; usually port 587), ssl (TLS from the start; usually port 465) or none "
        "(no encryption; only for a relay on a trusted network, usually port 25).",
    )
    username: Annotated[str | None, WithJsonSchema({"type": "string"})] = Field(default=None, title="User name", description="SMTP login user name; leave empty for no login.")
    password: Annotated[
        SecretStr | None, WithJsonSchema({"type": "string", "format": "password", "writeOnly": True})
    ] = Field(default=None, title="Password", description="SMTP login password. Kept secret.")
    from_address: str = Field(default=..., title="From", description="Sender address, e.g. alerts@example.com.")
    recipients: list[str] = Field(default=..., min_length=1, title="Recipients", description="Addresses that receive the alerts.")
    subject_prefix: str = Field(default="", title="Subject prefix", description="Text put before every subject, e.g. '[ops] '.")

    @field_validator("recipients")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        cleaned = [v.strip() for v in value if v and v.strip()]
        bad = [v for v in cleaned if "@" not in v]
        if bad:
            raise ValueError(f"not an e-mail address: {', '.join(bad)}")
        if not cleaned:
            raise ValueError("list at least one recipient")
        return cleaned

    def apprise_url(self) -> str:
        scheme = "mailto" if self.security is SmtpSecurity.NONE else "mailtos"
        mode = {"none": "insecure"}.get(self.security.value, self.security.value)
        auth = ""
        if self.username:
            auth = quote(self.username, safe="")
            if self.password is not None:
                auth += ":" + quote(self.password.get_secret_value(), safe="")
            auth += "@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = urlencode({"mode": mode, "from": self.from_address, "to": ",".join(self.recipients)})
        return f"{scheme}://{auth}{host}:{self.port}?{query}"

    def _subject(self, subject: str | None) -> str:
        return f"{self.subject_prefix}{subject or ''}"


# --- for the deliverer (alerting/channels/block.py): one call for any notification block ---------------

def notify_with_severity(block, *, title: str, markdown: str, text: str, severity: str = "info") -> None:
    """Send one alert through any Prefect notification block, with its severity and the right format
    (alerting.channels.notify_block: the deliverer's own way, one implementation)."""
    notify_block(block, title=title, markdown=markdown, text=text, severity=_severity(severity))


