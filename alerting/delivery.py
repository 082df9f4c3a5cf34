"""Sending one rendered message to one channel, through Apprise or a Prefect notification block.

Results are read, never assumed: Apprise returns False rather than raising, and Prefect's
notification blocks swallow failures unless called inside ``raise_on_failure()``. Every reason is
scrubbed of the channel's secrets. What to send, when and how often is alerting/outbox.py's job.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, unquote, urlsplit

from alerting.apprise_quiet import instantiate_quietly
from alerting.config import ChannelSpec
from alerting.redact import redact_channel_url, scrub
from alerting.render import AlertMessage

PACING_ENV = "ALERTING_APPRISE_PACING"  # "off" disables Apprise's per-service pacing (tests)


@dataclass(frozen=True)
class DeliveryResult:
    channel: str
    target: str  # redacted
    title: str
    ok: bool
    error: str | None = None
    retry_after: float | None = None  # seconds the service asked us to wait (HTTP 429 Retry-After)
    attempts: int = 1


_SPY = threading.local()
_SPY_LOCK = threading.Lock()
_SPY_INSTALLED = False


def _install_response_spy() -> None:
    """Let a delivering thread see the HTTP status and Retry-After of the requests Apprise makes.

    Apprise reports only True/False; the spy wraps ``requests.Session.send`` once and records
    responses only for a thread that asked (``_SPY.seen`` set), so nothing else changes.
    """
    global _SPY_INSTALLED
    with _SPY_LOCK:
        if _SPY_INSTALLED:
            return
        import requests

        original = requests.Session.send

        def send(self, request, **kwargs):
            response = original(self, request, **kwargs)
            seen = getattr(_SPY, "seen", None)
            if seen is not None:
                seen.append((response.status_code, response.headers.get("Retry-After")))
            return response

        requests.Session.send = send  # type: ignore[method-assign]
        _SPY_INSTALLED = True


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


def channel_secrets(channel: ChannelSpec) -> list[str]:
    """Every piece of a channel URL that could be a secret, for scrubbing free text."""
    url = channel.target.get_secret_value()
    pieces = [url]
    try:
        parts = urlsplit(url)
        pieces += [parts.password or "", parts.username or "", unquote(parts.netloc)]
        pieces += [seg for seg in parts.path.split("/") if len(seg) >= 6]
        pieces += [v for _, v in parse_qsl(parts.query) if len(v) >= 4]
    except ValueError:
        pass
    return [p for p in pieces if p]


class _ThreadLogCapture(logging.Handler):
    """Collects Apprise's warnings and errors emitted by one thread: the reason a send failed."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.thread = threading.get_ident()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.lines.append(record.getMessage())


def _send_apprise(channel: ChannelSpec, messages: list[AlertMessage], plugin=None) -> list[DeliveryResult]:
    """``plugin``: an Apprise service object to reuse (keeps its pacing across calls); else a new one."""
    import apprise

    target = redact_channel_url(channel.target.get_secret_value())
    secrets = channel_secrets(channel)
    if plugin is None:
        plugin = instantiate_quietly(channel.target.get_secret_value())
    if plugin is None:
        return [DeliveryResult(channel.name, target, m.title, False, "not a valid Apprise URL") for m in messages]
    if os.environ.get(PACING_ENV, "").lower() in ("off", "0", "false", "no"):
        plugin.request_rate_per_sec = 0
    markdown = plugin.notify_format in (apprise.NotifyFormat.MARKDOWN, apprise.NotifyFormat.HTML)
    results = []
    apprise_log = logging.getLogger("apprise")
    _install_response_spy()
    for message in messages:
        capture = _ThreadLogCapture()
        apprise_log.addHandler(capture)
        _SPY.seen = []
        try:
            ok = plugin.notify(
                body=message.markdown if markdown else message.text,
                title=message.title,
                body_format=apprise.NotifyFormat.MARKDOWN if markdown else apprise.NotifyFormat.TEXT,
                notify_type=apprise.NotifyType(message.severity),
            )
        except Exception as exc:  # noqa: BLE001 - a plugin bug must not stop other channels
            ok, capture.lines = False, capture.lines + [f"{type(exc).__name__}: {exc}"]
        finally:
            apprise_log.removeHandler(capture)
            seen, _SPY.seen = _SPY.seen, None
        error = retry_after = None
        if not ok:
            reason = "; ".join(dict.fromkeys(capture.lines)) or "the service did not accept the message"
            error = scrub(reason, secrets)[:500]
            retry_after = next((parse_retry_after(h) for code, h in reversed(seen) if code == 429 and h), None)
        results.append(DeliveryResult(channel.name, target, message.title, bool(ok), error, retry_after))
    return results


def _send_block(channel: ChannelSpec, messages: list[AlertMessage]) -> list[DeliveryResult]:
    from prefect.blocks.core import Block

    slug, name = channel.block_ref  # type: ignore[misc]
    target = f"block:{slug}/{name}"
    try:
        block = Block.load(f"{slug}/{name}")
    except Exception as exc:  # noqa: BLE001
        reason = f"cannot load Prefect block {target}: {type(exc).__name__}: {exc}"
        return [DeliveryResult(channel.name, target, m.title, False, reason[:500]) for m in messages]
    if not hasattr(block, "notify"):
        return [
            DeliveryResult(channel.name, target, m.title, False, "block is not a notification block")
            for m in messages
        ]
    secrets = [s.get_secret_value() for s in _block_secrets(block)]
    results = []
    for message in messages:
        try:
            if hasattr(block, "raise_on_failure"):
                with block.raise_on_failure():
                    _call_notify(block, message)
            else:
                _call_notify(block, message)
            results.append(DeliveryResult(channel.name, target, message.title, True))
        except Exception as exc:  # noqa: BLE001
            detail = (getattr(exc, "log", None) or str(exc)).strip()  # NotificationError keeps it in .log
            reason = scrub(f"{type(exc).__name__}: {detail or 'the block reported a failure'}", secrets)[:500]
            results.append(DeliveryResult(channel.name, target, message.title, False, reason))
    return results


def _call_notify(block, message: AlertMessage) -> None:
    notify_block(block, title=message.title, markdown=message.markdown, text=message.text,
                 severity=message.severity)


def notify_block(block, *, title: str, markdown: str, text: str, severity: str = "info") -> None:
    """Send one alert through any Prefect notification block, with its severity and the right format.

    * Blocks with ``notify_alert`` (our Apprise Channel and SMTP E-mail Channel) get the severity and
      both renderings, and send what a YAML channel with the same URL sends.
    * Prefect's Apprise-based blocks (Slack Webhook, Discord Webhook, ...) have a ``notify_type``
      field: set to ``severity`` for this call (and put back); the body is the Markdown.
    * Any other notification block: ``block.notify(markdown, subject=title)``.

    Synchronous; an async-only ``notify`` is awaited here. Call it inside ``raise_on_failure()``.
    """
    if hasattr(block, "notify_alert"):
        _awaited_now(block.notify_alert(title=title, markdown=markdown, text=text, severity=severity))
        return
    if "notify_type" not in getattr(type(block), "model_fields", {}):
        _awaited_now(block.notify(markdown, subject=title))
        return
    before = block.notify_type
    block.notify_type = severity
    try:
        _awaited_now(block.notify(markdown, subject=title))
    finally:
        block.notify_type = before


def _awaited_now(result) -> None:
    """A block whose notify is async only returns a coroutine: run it, never drop it."""
    import asyncio
    import inspect

    if inspect.isawaitable(result):
        asyncio.run(_awaited(result))


async def _awaited(awaitable):
    return await awaitable


def with_prefect_settings(fn):
    """Worker threads do not inherit context variables, so they would miss Prefect settings set
    with ``temporary_settings`` (e.g. the API URL of the server ``alerting serve`` started) and
    load blocks from the wrong API. Carry the caller's settings into the thread."""
    try:
        from prefect.context import SettingsContext
    except ImportError:  # pragma: no cover
        return fn
    current = SettingsContext.get()
    if current is None:
        return fn

    def run(*args):
        with SettingsContext(profile=current.profile, settings=current.settings):
            return fn(*args)

    return run


def _block_secrets(block):
    from pydantic import SecretStr

    for value in block.__dict__.values():
        if isinstance(value, SecretStr):
            yield value
        elif isinstance(value, list):
            yield from (v for v in value if isinstance(v, SecretStr))


def send(channel: ChannelSpec, messages: list[AlertMessage], plugin=None) -> list[DeliveryResult]:
    """Send messages to one channel, in order; never raises. ``plugin``: see ``_send_apprise``."""
    if not messages:
        return []
    try:
        if channel.kind == "block":
            return _send_block(channel, messages)
        return _send_apprise(channel, messages, plugin)
    except Exception as exc:  # noqa: BLE001
        reason = scrub(f"{type(exc).__name__}: {exc}", channel_secrets(channel))[:500]
        target = redact_channel_url(channel.target.get_secret_value())
        return [DeliveryResult(channel.name, target, m.title, False, reason) for m in messages]
