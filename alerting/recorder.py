"""Recording check results the moment they finish: policy, state, history and alert rows, in small groups.

A result is recorded within ``window`` seconds of its check ending, together with whatever else
finished in that window. Storm grouping therefore covers the alerts decided within one window
(``GROUP_WINDOW``, a fifth of a second): ten services going down together give one storm message,
not ten, and no alert waits for the rest of the cycle. Within a group, the results that may change
a state (failures, and passes of monitors not known to be UP) are committed first, in a small
transaction of their own, and the deliverer is woken; passes of monitors known to be UP (nothing to
decide) are written together every ``ROUTINE_EVERY`` seconds, ten times fewer transactions, which
leaves SQLite's write lock free for the deliverer; ``ROUTINE_CHUNK`` rows at a time, so a result that
may change a state (or the deliverer) never waits behind a long write. ``flush()`` waits until
everything put before it is written.

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
_FLUSH = object()
ROUTINE_EVERY = 2.0  # seconds: passes of monitors known to be UP are written together, this often
ROUTINE_MAX = 1000  # ... or as soon as this many wait
ROUTINE_CHUNK = 200  # rows per transaction when they are written (~50 ms of SQLite's write lock)


class ResultRecorder:
    """``put(result, spec)`` from any thread; a thread of its own records. ``flush()`` waits until
    everything put so far is recorded."""

    def __init__(self, store: Store, config: Config, *, window: float = GROUP_WINDOW, run_url: str | None = None,
                 on_queued: Callable[[], None] | None = None, clock: Callable[[], datetime] = utcnow,
                 routine_every: float = ROUTINE_EVERY):
        self.store, self.config, self.window, self.run_url = store, config, window, run_url
        self.routine_every = routine_every
        self.on_queued, self.clock = on_queued, clock
        self.journal = Journal()
        self._known_up: set[str] = set()  # monitors plainly UP when last recorded (not degraded, no count running)
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
        """Wait until everything put so far is written (routine passes included)."""
        with self._lock:
            target = self._put
        self._queue.put(_FLUSH)
        with self._lock:
            return self._lock.wait_for(lambda: self._done >= target, timeout)

    def close(self, timeout: float = 30.0) -> None:
        self.flush(timeout)
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _loop(self) -> None:
        routine: list[tuple[CheckResult, MonitorSpec]] = []  # passes of monitors known UP, not written yet
        routine_due = 0.0
        draining = False  # routine passes are being written, a chunk at a time
        while True:
            if draining:
                wait: float | None = 0.0
            elif routine:
                wait = max(0.0, routine_due - time.monotonic())
            else:
                wait = None
            try:
                first = self._queue.get(timeout=wait)
            except queue.Empty:
                first = _FLUSH  # the routine passes' time has come
            items = [first]
            if first is not _STOP and first is not _FLUSH:
                deadline = time.monotonic() + self.window
                while (left := deadline - time.monotonic()) > 0:
                    try:
                        item = self._queue.get(timeout=left)
                    except queue.Empty:
                        break
                    items.append(item)
                    if item is _STOP or item is _FLUSH:
                        break
            stop = any(i is _STOP for i in items)
            flush = stop or any(i is _FLUSH for i in items)
            batch = [i for i in items if i is not _STOP and i is not _FLUSH]
            # a monitor with a result that may change its state: all its results go together, in order
            names = {r.monitor for r, _ in batch if not self._routine(r)}
            urgent = [i for i in batch if i[0].monitor in names]
            fresh = [i for i in batch if i[0].monitor not in names]
            if urgent:
                earlier = [i for i in routine if i[0].monitor in names]
                if earlier:  # each monitor's results in order
                    routine = [i for i in routine if i[0].monitor not in names]
                    self._write(earlier)
                self._write(urgent)
            if fresh:
                if not routine:
                    routine_due = time.monotonic() + self.routine_every
                routine += fresh
            if routine and (flush or draining or time.monotonic() >= routine_due or len(routine) >= ROUTINE_MAX):
                # in chunks: a result that may change a state waits for one chunk at most, and the
                # deliverer gets SQLite's write lock between chunks
                chunk, routine = routine[:ROUTINE_CHUNK], routine[ROUTINE_CHUNK:]
                self._write(chunk)
                draining = bool(routine)
            if stop:
                while routine:
                    chunk, routine = routine[:ROUTINE_CHUNK], routine[ROUTINE_CHUNK:]
                    self._write(chunk)
                return

    def _routine(self, result: CheckResult) -> bool:
        """A pass with nothing to decide: no warning, and the monitor plainly UP when last recorded."""
        return result.ok and result.warning is None and result.monitor in self._known_up

    def _write(self, part: list[tuple[CheckResult, MonitorSpec]]) -> None:
        self._record_part(part)
        with self._lock:
            self._done += len(part)
            self._lock.notify_all()

    def _record_part(self, batch: list[tuple[CheckResult, MonitorSpec]]) -> None:
        results = [r for r, _ in batch]
        specs = {spec.name: spec for _, spec in batch}
        queued = 0
        try:
            states, events, queued = record_cycle(self.store, self.config, specs, results, self.clock(),
                                                  self.run_url, prune=False)
            for name, state in states.items():
                if (state.status is Status.UP and not state.degraded and not state.consecutive_warnings
                        and not state.consecutive_failures and not state.flapping):
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
