"""Where checks run: threads, one pooled HTTP client, and slots that only an attempt holds.

At most ``concurrency`` attempts run at once, and at most ``per_host`` against one host. A slot is
held for one attempt, never during the wait before a retry: a failing monitor backing off on a host
leaves that host's slots to the healthy monitors behind it. Threads outnumber slots (``headroom``
times) so that monitors waiting to retry do not hold up the queue either.

A long-lived pool (the continuous monitor) keeps its connections between cycles (keep-alive);
``check_all`` makes one for a single batch.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from alerting.check import check
from alerting.http_client import HttpClient
from alerting.models import CheckResult, MonitorSpec
from alerting.schedule import host_of, interleave_by_host

OnResult = Callable[[CheckResult], None]
log = logging.getLogger(__name__)
_STOP = None  # a worker that takes this from the queue ends


class _HostSlot:
    """The slot an attempt holds: one of its host's ``per_host`` and one of the pool's ``concurrency``.
    One object per host, shared by every check of it (it keeps no per-use state)."""

    __slots__ = ("_host", "_pool")

    def __init__(self, host: threading.BoundedSemaphore, pool: threading.BoundedSemaphore):
        self._host, self._pool = host, pool

    def __call__(self) -> _HostSlot:
        return self

    def __enter__(self) -> None:
        self._host.acquire()
        self._pool.acquire()

    def __exit__(self, *exc: object) -> None:
        self._pool.release()
        self._host.release()


class _Batch:
    """The results of one ``check_many`` call, by position; done when every one is in."""

    def __init__(self, size: int):
        self.results: list[CheckResult | None] = [None] * size
        self._left = size
        self._lock = threading.Lock()
        self.done = threading.Event()
        if size == 0:
            self.done.set()

    def settle(self, index: int, result: CheckResult | None) -> None:
        with self._lock:
            self.results[index] = result
            self._left -= 1
            if self._left == 0:
                self.done.set()


class CheckPool:
    """Worker threads fed by one queue: a check costs a queue put and get, no future or lock of its
    own (``concurrent.futures`` cost ~0.1 ms per check in profiles at 5,000 monitors)."""

    runs_late_slots = False  # a check here that outlasts its slot is a long retry: that slot stays skipped
    first_slot_group_share: float | None = None  # first slots in small groups: a burst here holds this process's CPU

    def __init__(self, concurrency: int = 32, per_host: int = 8, headroom: int = 4):
        self.concurrency = max(1, concurrency)
        self.per_host = max(1, per_host)
        self.http = HttpClient(min(self.concurrency, self.per_host))  # a host's connections kept: its slots
        self._attempts = threading.BoundedSemaphore(self.concurrency)
        self._slots: dict[str, _HostSlot] = {}
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._max_threads = self.concurrency * max(1, headroom)
        self._threads: list[threading.Thread] = []
        self._closed = False

    def _slot(self, host: str) -> _HostSlot:
        slot = self._slots.get(host)
        if slot is None:
            with self._lock:
                slot = self._slots.get(host)
                if slot is None:
                    slot = self._slots[host] = _HostSlot(threading.BoundedSemaphore(self.per_host), self._attempts)
        return slot

    def run(self, spec: MonitorSpec) -> CheckResult:
        """Check one monitor in the calling thread, under this pool's slots. Never raises."""
        return check(spec, self.http, slot=self._slot(host_key(spec)))

    def submit(self, spec: MonitorSpec, on_result: OnResult | None = None) -> None:
        """Check ``spec`` in a pool thread; ``on_result`` (if any) gets the result as soon as it is
        known, in that thread. Checks still queued when the pool closes are dropped."""
        self._put((spec, on_result))

    def _put(self, job: tuple) -> None:
        if self._closed:
            raise RuntimeError("the check pool is closed")
        if len(self._threads) < self._max_threads:  # one thread more per check until the maximum
            with self._lock:
                if len(self._threads) < self._max_threads and not self._closed:
                    thread = threading.Thread(target=self._work, name=f"check_{len(self._threads)}", daemon=True)
                    self._threads.append(thread)
                    thread.start()
        self._jobs.put(job)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return
            spec, on_result = job
            if self._closed:
                if isinstance(on_result, _Settle):
                    on_result.batch.settle(on_result.index, None)
                continue
            try:
                result = self.run(spec)
            except Exception as exc:  # noqa: BLE001 - check() never raises; this thread must not end if it did
                log.error("Checking %s failed inside the pool (%s)", spec.name, type(exc).__name__)
                if isinstance(on_result, _Settle):
                    on_result.batch.settle(on_result.index, None)
                continue
            if on_result is not None:
                try:
                    on_result(result)
                except Exception as exc:  # noqa: BLE001 - a caller's bug must not end this thread
                    log.error("The result handler of %s failed (%s)", spec.name, type(exc).__name__)

    def check_many(self, specs: list[MonitorSpec], on_result: OnResult | None = None,
                   slots: dict[str, float] | None = None, timeout: float | None = None) -> list[CheckResult]:
        """Every result, in the order of ``specs``; hosts interleaved so one slow host goes last.
        A monitor in ``slots`` is not checked before its time (epoch seconds): the calling thread
        waits to hand it over, never a pool thread. With ``timeout``, or when the pool closes
        meanwhile, only the results that are in by then."""
        hosts = {spec.name: host_key(spec) for spec in specs}
        order = interleave_by_host(specs, hosts)
        if slots:
            order.sort(key=lambda spec: slots.get(spec.name, 0.0))  # stable: the interleaving stays
        positions: dict[int, list[int]] = {}
        for i, spec in enumerate(specs):
            positions.setdefault(id(spec), []).append(i)
        batch = _Batch(len(specs))
        for spec in order:
            wait = (slots.get(spec.name, 0.0) - time.time()) if slots else 0.0
            if wait > 0:
                time.sleep(wait)
            self._put((spec, _Settle(batch, positions[id(spec)].pop(0), on_result)))
        batch.done.wait(timeout)
        return [r for r in batch.results if r is not None]

    def close(self) -> None:
        """Stop the threads once the checks running now end; queued ones are dropped."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._jobs.put(_STOP)
        for thread in threads:
            thread.join()
        self.http.close()


class _Settle:
    """``on_result`` for a check of a batch: the caller's handler, then the batch's slot."""

    __slots__ = ("batch", "index", "on_result")

    def __init__(self, batch: _Batch, index: int, on_result: OnResult | None):
        self.batch, self.index, self.on_result = batch, index, on_result

    def __call__(self, result: CheckResult) -> None:
        try:
            if self.on_result is not None:
                self.on_result(result)
        finally:
            self.batch.settle(self.index, result)


def host_key(spec: MonitorSpec) -> str:
    try:
        return host_of(spec)
    except ValueError:
        return spec.name  # an unparsable URL fails in its own check, alone


def check_all(specs: list[MonitorSpec], concurrency: int = 32, per_host: int = 8,
              on_result: OnResult | None = None, slots: dict[str, float] | None = None) -> list[CheckResult]:
    """Check a batch with a pool of its own. Never raises: ``check`` turns every failure, ours
    included, into that monitor's result."""
    if not specs:
        return []
    pool = CheckPool(min(concurrency, len(specs)), per_host)
    try:
        return pool.check_many(specs, on_result, slots)
    finally:
        pool.close()
