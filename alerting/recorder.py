"""Recording check results the moment they finish: policy, state, history and alert rows, in small groups.

A result is recorded within ``window`` seconds of its check ending, together with whatever else
finished in that window. Storm grouping therefore covers the alerts decided within one window
(``GROUP_WINDOW``, a fifth of a second): ten services going down together give one storm message,
not ten, and no alert waits for the rest of the cycle. Within a group, the results that may change
a state (failures, and passes of monitors not known to be UP) are committed first, in a small
transaction of their own, and the deliverer is woken before the routine passes are written.

The recorder keeps a ``Journal`` of what it recorded; whoever reports on a cycle (the flow run, the
serving process) takes it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from alerting.config import Config
from alerting.models import AlertEvent, CheckResult, MonitorSpec, MonitorState, Status, utcnow
from alerting.record import record_cycle
from alerting.store import Store

log = logging.getLogger(__name__)
GROUP_WINDOW = 0.2  # seconds: alerts decided this close together share one message per channel (storms)


@dataclass
class Journal:
    """What was recorded since the journal was last taken."""

    results: list[CheckResult] = field(default_factory=list)
    states: dict[str, MonitorState] = field(default_factory=dict)
    events: list[AlertEvent] = field(default_factory=list)
    queued: int = 0
    store_error: str | None = None

    def add(self, results: list[CheckResult], states: dict[str, MonitorState], events: list[AlertEvent],
            queued: int) -> None:
        self.results += results
        self.states.update(states)
        self.events += events
        self.queued += queued


_STOP = object()


class ResultRecorder:
    """``put(result, spec)`` from any thread; a thread of its own records. ``flush()`` waits until
    everything put so far is recorded."""

    def __init__(self, store: Store, config: Config, *, window: float = GROUP_WINDOW, run_url: str | None = None,
                 on_queued: Callable[[], None] | None = None, clock: Callable[[], datetime] = utcnow):
        self.store, self.config, self.window, self.run_url = store, config, window, run_url
        self.on_queued, self.clock = on_queued, clock
        self.journal = Journal()
        self._known_up: set[str] = set()  # monitors whose last recorded state was UP
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Condition()
        self._put = 0
        self._done = 0
        self._thread = threading.Thread(target=self._loop, name="recorder", daemon=True)
        self._thread.start()

    def put(self, result: CheckResult, spec: MonitorSpec) -> None:
        with self._lock:
            self._put += 1
        self._queue.put((result, spec))

    def take(self) -> Journal:
        """The journal so far, and a fresh one from now on."""
        with self._lock:
            journal, self.journal = self.journal, Journal()
        return journal

    def flush(self, timeout: float | None = None) -> bool:
        with self._lock:
            target = self._put
            return self._lock.wait_for(lambda: self._done >= target, timeout)

    def close(self, timeout: float = 30.0) -> None:
        self.flush(timeout)
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch, stop = [first], False
            deadline = time.monotonic() + self.window
            while (left := deadline - time.monotonic()) > 0:
                try:
                    item = self._queue.get(timeout=left)
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            self._record(batch)
            if stop:
                return

    def _record(self, batch: list[tuple[CheckResult, MonitorSpec]]) -> None:
        urgent = [item for item in batch if not item[0].ok or item[0].monitor not in self._known_up]
        routine = [item for item in batch if item[0].ok and item[0].monitor in self._known_up]
        for part in (urgent, routine):
            if part:
                self._record_part(part)
        with self._lock:
            self._done += len(batch)
            self._lock.notify_all()

    def _record_part(self, batch: list[tuple[CheckResult, MonitorSpec]]) -> None:
        results = [r for r, _ in batch]
        specs = {spec.name: spec for _, spec in batch}
        queued = 0
        try:
            states, events, queued = record_cycle(self.store, self.config, specs, results, self.clock(),
                                                  self.run_url, prune=False)
            for name, state in states.items():
                if state.status is Status.UP:
                    self._known_up.add(name)
                else:
                    self._known_up.discard(name)
            with self._lock:
                self.journal.add(results, states, events, queued)
        except Exception as exc:  # noqa: BLE001 - the next check of each monitor tries again
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
            log.error("State store unusable (%s): %d check results not recorded", error, len(results))
            with self._lock:
                self.journal.results += results
                self.journal.store_error = error
        if queued and self.on_queued is not None:
            self.on_queued()
