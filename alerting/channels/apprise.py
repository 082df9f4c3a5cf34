"""An Apprise URL as a channel: Slack, Discord, e-mail (``mailto://``), ``json://`` and the 100+
other services Apprise knows.

Apprise never raises on a failed delivery; it returns False and logs why. So the result is read,
the reason is taken from Apprise's own log lines for this thread, and the HTTP status and
Retry-After of the requests it made are seen by a spy on ``requests.Session.send``.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import ClassVar

from pydantic import SecretStr

from alerting.apprise_quiet import instantiate_quietly
from alerting.channels.base import DeliveryResult, failed, parse_retry_after, url_secrets
from alerting.redact import masked_in_logs, redact_channel_url
from alerting.render import AlertMessage

PACING_ENV = "ALERTING_APPRISE_PACING"  # "off" disables Apprise's per-service pacing (tests)
DOCS = "https://github.com/caronc/apprise/wiki"

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


class _ThreadLogCapture(logging.Handler):
    """Collects Apprise's warnings and errors emitted by one thread: the reason a send failed."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.thread = threading.get_ident()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.lines.append(record.getMessage())


def target_problem(url: str) -> str | None:
    """Why Apprise cannot use ``url`` (for the config), or None."""
    return None if instantiate_quietly(url) is not None else f"not a valid Apprise URL (see {DOCS})"


class AppriseChannel:
    """A channel given as one Apprise URL. It keeps one Apprise service object for its lifetime, so
    Apprise's per-service pacing (Slack 1.2 s, e-mail 5.5 s between messages) holds across sends;
    ``ALERTING_APPRISE_PACING=off`` turns pacing off (tests)."""

    kind: ClassVar[str] = "apprise"

    def __init__(self, name: str, url: SecretStr | str) -> None:
        self.name = name
        self._url = url if isinstance(url, SecretStr) else SecretStr(url)
        self._plugin = None
        self._plugin_made = False
        self._target: str | None = None
        self._lock = threading.Lock()  # one send at a time: Apprise's pacing is per service object

    def __repr__(self) -> str:
        return f"AppriseChannel({self.name!r}, {self.target!r})"

    @property
    def target(self) -> str:
        if self._target is None:
            self._target = redact_channel_url(self._url.get_secret_value())
        return self._target

    def secrets(self) -> list[str]:
        return url_secrets(self._url.get_secret_value())

    def plugin(self):
        """The Apprise service object of this channel (None for a URL Apprise cannot use)."""
        if not self._plugin_made:
            self._plugin = instantiate_quietly(self._url.get_secret_value())
            self._plugin_made = True
        return self._plugin

    def warm(self) -> None:
        try:
            with masked_in_logs(self.secrets()):
                self.plugin()  # Apprise loads the service's plugin on first use: ~1-2 s on this machine
        except Exception:  # noqa: BLE001 - send() reports it
            pass

    def send(self, message: AlertMessage) -> DeliveryResult:
        try:
            with self._lock, masked_in_logs(self.secrets()):
                return self._send(message)
        except Exception as exc:  # noqa: BLE001 - a plugin bug must not stop other channels
            return failed(self, message, f"{type(exc).__name__}: {exc}")

    def _send(self, message: AlertMessage) -> DeliveryResult:
        import apprise

        plugin = self.plugin()
        if plugin is None:
            return failed(self, message, "not a valid Apprise URL")
        if os.environ.get(PACING_ENV, "").lower() in ("off", "0", "false", "no"):
            plugin.request_rate_per_sec = 0
        markdown = plugin.notify_format in (apprise.NotifyFormat.MARKDOWN, apprise.NotifyFormat.HTML)
        apprise_log = logging.getLogger("apprise")
        _install_response_spy()
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
        except Exception as exc:  # noqa: BLE001
            ok, capture.lines = False, capture.lines + [f"{type(exc).__name__}: {exc}"]
        finally:
            apprise_log.removeHandler(capture)
            seen, _SPY.seen = _SPY.seen, None
        if ok:
            return DeliveryResult(self.name, self.target, message.title, True)
        reason = "; ".join(dict.fromkeys(capture.lines)) or "the service did not accept the message"
        retry_after = next((parse_retry_after(h) for code, h in reversed(seen) if code == 429 and h), None)
        return failed(self, message, reason, retry_after=retry_after)
