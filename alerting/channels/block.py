"""A Prefect notification block as a channel: ``block:<type-slug>/<document-name>``.

Any notification block works (ours: Apprise Channel, SMTP E-mail Channel; Prefect's: Slack Webhook,
Discord Webhook, ...). The block is loaded for every send, so an edit in the Prefect UI counts from
the next alert on; it is called inside ``raise_on_failure()``, because Prefect's notification blocks
swallow failures otherwise. Needs the Prefect API (the core imports Prefect only here, lazily).
"""

from __future__ import annotations

import re
import threading
from typing import ClassVar

from alerting.channels.base import DeliveryResult, failed, url_secrets
from alerting.redact import masked_in_logs
from alerting.render import AlertMessage

BLOCK_PREFIX = "block:"
BLOCK_REF = re.compile(r"^block:([a-z0-9][a-z0-9-]*)/([A-Za-z0-9_.-][A-Za-z0-9_. -]*)$")


def parse_block_ref(target: str) -> tuple[str, str] | None:
    """(type slug, document name) of ``block:<slug>/<name>``, or None."""
    match = BLOCK_REF.match(target)
    return (match.group(1), match.group(2)) if match else None


def block_target(slug: str, name: str) -> str:
    return f"{BLOCK_PREFIX}{slug}/{name}"


def is_block_target(target: str) -> bool:
    """Does ``target`` name a Prefect block (well formed or not) rather than an Apprise URL?"""
    return target.startswith(BLOCK_PREFIX)


def target_problem(target: str) -> str | None:
    """Why ``target`` is not a usable block reference (for the config), or None."""
    return None if parse_block_ref(target) else "expected block:<block-type-slug>/<document-name>"


class BlockChannel:
    """A channel that sends through a Prefect notification block."""

    kind: ClassVar[str] = "block"

    def __init__(self, name: str, target: str) -> None:
        self.name = name
        self._target = target
        self.block_ref = parse_block_ref(target)
        self._secrets: list[str] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"BlockChannel({self.name!r}, {self.target!r})"

    @property
    def target(self) -> str:
        return self._target  # slug and document name: not secrets (the block holds those)

    def secrets(self) -> list[str]:
        """The block's secret fields (and the pieces of a secret URL), read from the block; []
        when it cannot be loaded."""
        if self._secrets is None:
            try:
                self._load()
            except Exception:  # noqa: BLE001 - secrets() never raises
                return []
        return list(self._secrets or [])

    def _load(self):
        from prefect.blocks.core import Block

        if self.block_ref is None:
            raise ValueError("expected block:<block-type-slug>/<document-name>")
        slug, name = self.block_ref
        block = Block.load(f"{slug}/{name}")
        self._secrets = block_secrets(block)
        return block

    def warm(self) -> None:
        """Nothing: the block is read from the Prefect API at send time (it may change in the UI)."""

    def send(self, message: AlertMessage) -> DeliveryResult:
        try:
            with self._lock:
                return self._send(message)
        except Exception as exc:  # noqa: BLE001
            return failed(self, message, f"{type(exc).__name__}: {exc}")

    def _send(self, message: AlertMessage) -> DeliveryResult:
        try:
            block = self._load()
        except Exception as exc:  # noqa: BLE001
            if self._secrets is None:
                self._secrets = []  # not known: failed() below must not load the block again
            return failed(self, message, f"cannot load Prefect block {self.target}: {type(exc).__name__}: {exc}")
        if not hasattr(block, "notify"):
            return failed(self, message, "block is not a notification block")
        try:
            with masked_in_logs(self._secrets or []):  # the block's own secrets, in any record of this thread
                if hasattr(block, "raise_on_failure"):
                    with block.raise_on_failure():
                        _notify(block, message)
                else:
                    _notify(block, message)
        except Exception as exc:  # noqa: BLE001
            detail = (getattr(exc, "log", None) or str(exc)).strip()  # NotificationError keeps it in .log
            return failed(self, message, f"{type(exc).__name__}: {detail or 'the block reported a failure'}")
        return DeliveryResult(self.name, self.target, message.title, True)


def block_secrets(block) -> list[str]:
    """Every secret value of a block's fields (SecretStr, also in lists), and the pieces of those
    that are URLs (a path segment of a webhook URL is a secret on its own)."""
    from pydantic import SecretStr

    found: list[str] = []
    for value in block.__dict__.values():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, SecretStr):
                secret = item.get_secret_value()
                found += url_secrets(secret) if "://" in secret else [secret]
    return [s for s in dict.fromkeys(found) if s]


def _notify(block, message: AlertMessage) -> None:
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
