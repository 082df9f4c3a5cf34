"""What every channel kind shares: the ``Channel`` protocol, the result of one send, and the helpers
that keep a failure a result (never an exception) with the channel's secrets scrubbed out."""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import ClassVar, Protocol, runtime_checkable
from urllib.parse import parse_qsl, unquote, urlsplit

from alerting.redact import scrub
from alerting.render import AlertMessage

MAX_REASON = 500  # characters of a failure reason kept (they go into the store and the CLI)


@dataclass(frozen=True)
class DeliveryResult:
    channel: str
    target: str  # redacted
    title: str
    ok: bool
    error: str | None = None
    retry_after: float | None = None  # seconds the service asked us to wait (HTTP 429 Retry-After)
    attempts: int = 1


@runtime_checkable
class Channel(Protocol):
    """One named destination of alerts, of one kind (an Apprise URL, a Prefect notification block).

    * ``send`` delivers one message and never raises: the result says whether the service accepted
      it and, when not, why (scrubbed of ``secrets()``), and how long the service asked us to wait;
    * ``target`` is where it goes, redacted: fit for logs, CLI output, the store and alert texts;
    * ``secrets()`` are the strings to mask in any text about this channel (``alerting.redact.scrub``);
    * ``warm()`` prepares what the first send would otherwise load (a plugin), so the first alert is
      not the slow one; never raises.
    """

    kind: ClassVar[str]
    name: str

    @property
    def target(self) -> str: ...

    def secrets(self) -> list[str]: ...

    def send(self, message: AlertMessage) -> DeliveryResult: ...

    def warm(self) -> None: ...


def failed(channel: Channel, message: AlertMessage, reason: str, extra_secrets: list[str] | None = None,
           retry_after: float | None = None) -> DeliveryResult:
    """A refused send: ``reason`` scrubbed of the channel's secrets, cut to ``MAX_REASON``."""
    secrets = [*channel.secrets(), *(extra_secrets or [])]
    return DeliveryResult(channel.name, channel.target, message.title, False,
                          scrub(reason, secrets)[:MAX_REASON], retry_after)


def url_secrets(url: str) -> list[str]:
    """Every piece of a URL that could be a secret (the whole URL, user, password, netloc, long path
    segments, query values), for scrubbing free text."""
    pieces = [url]
    try:
        parts = urlsplit(url)
        pieces += [parts.password or "", parts.username or "", unquote(parts.netloc)]
        pieces += [seg for seg in parts.path.split("/") if len(seg) >= 6]
        pieces += [v for _, v in parse_qsl(parts.query) if len(v) >= 4]
    except ValueError:
        pass
    return list(dict.fromkeys(p for p in pieces if p))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
