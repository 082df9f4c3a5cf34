"""The outbox deliverer in a thread of its own: woken the moment alert rows are queued, and every
``poll`` seconds for rows backing off after a failed send. ``alerting.outbox.deliver_pending`` does
the work (claims, order per channel, backoff), so several deliverers never send a row twice."""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable

from alerting.config import Config
from alerting.delivery import DeliveryResult
from alerting.outbox import ChannelCache, deliver_pending
from alerting.store import Store

log = logging.getLogger(__name__)


class Deliverer:
    def __init__(self, store: Store, config: Callable[[], Config], poll: float = 5.0,
                 on_delivered: Callable[[list[DeliveryResult]], None] | None = None):
        self.store, self.config, self.poll, self.on_delivered = store, config, poll, on_delivered
        self.delivered: list[DeliveryResult] = []
        self.channels = ChannelCache()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        # the creator's context (its Prefect settings: block channels read blocks from that API)
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, args=(self._loop,), name="deliverer", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def take(self) -> list[DeliveryResult]:
        """What was sent (or failed) since the last take."""
        with self._lock:
            done, self.delivered = self.delivered, []
        return done

    def close(self, timeout: float = 60.0) -> list[DeliveryResult]:
        """A last pass over the outbox, then stop; returns everything not yet taken."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        return self.take()

    def _loop(self) -> None:
        self.channels.warm(self.config())
        while True:
            self._wake.wait(self.poll)
            self._wake.clear()
            stopping = self._stop.is_set()  # read before the pass: a close() during it gets one more
            self._pass()
            if stopping:
                return

    def _pass(self) -> None:
        try:
            results = deliver_pending(self.store, self.config(), channels=self.channels)
        except Exception as exc:  # noqa: BLE001 - the rows stay in the outbox; the next pass retries
            log.error("Alert delivery failed (%s); undelivered alerts stay in the outbox", type(exc).__name__)
            return
        if not results:
            return
        with self._lock:
            self.delivered += results
        if self.on_delivered is not None:
            self.on_delivered(results)


def log_deliveries(logger: logging.Logger | logging.LoggerAdapter, deliveries: list[DeliveryResult]) -> None:
    """One line per alert sent or refused (the reason is already scrubbed of secrets)."""
    for d in deliveries:
        if d.ok:
            logger.info("Sent %r to channel %s (%s)", d.title, d.channel, d.target)
        else:
            logger.error("Could not send %r to channel %s (%s): %s; it stays in the outbox",
                         d.title, d.channel, d.target, d.error)
