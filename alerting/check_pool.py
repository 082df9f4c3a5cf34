"""Where checks run: threads, one pooled session, and slots that only an attempt holds.

At most ``concurrency`` attempts run at once, and at most ``per_host`` against one host. A slot is
held for one attempt, never during the wait before a retry: a failing monitor backing off on a host
leaves that host's slots to the healthy monitors behind it. Threads outnumber slots (``headroom``
times) so that monitors waiting to retry do not hold up the queue either.

A long-lived pool (the continuous monitor) keeps its connections between cycles (keep-alive);
``check_all`` makes one for a single batch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager

from alerting.check import build_session, check
from alerting.models import CheckResult, MonitorSpec
from alerting.schedule import host_of, interleave_by_host

OnResult = Callable[[CheckResult], None]


class CheckPool:
    def __init__(self, concurrency: int = 32, per_host: int = 8, headroom: int = 4):
        self.concurrency = max(1, concurrency)
        self.per_host = max(1, per_host)
        self.session = build_session(min(self.concurrency, self.per_host))
        self._attempts = threading.BoundedSemaphore(self.concurrency)
        self._hosts: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=self.concurrency * max(1, headroom),
                                            thread_name_prefix="check")

    def _host_limit(self, host: str) -> threading.BoundedSemaphore:
        with self._lock:
            limit = self._hosts.get(host)
            if limit is None:
                limit = self._hosts[host] = threading.BoundedSemaphore(self.per_host)
            return limit

    def _slot(self, host: str) -> Callable[[], AbstractContextManager[None]]:
        limit = self._host_limit(host)

        @contextmanager
        def slot() -> Iterator[None]:
            with limit, self._attempts:
                yield

        return slot

    def run(self, spec: MonitorSpec) -> CheckResult:
        """Check one monitor in the calling thread, under this pool's slots. Never raises."""
        return check(spec, self.session, slot=self._slot(host_key(spec)))

    def submit(self, spec: MonitorSpec, on_result: OnResult | None = None) -> Future:
        """Check ``spec`` in a pool thread; ``on_result`` (if any) gets the result as soon as it is known."""

        def job() -> CheckResult:
            result = self.run(spec)
            if on_result is not None:
                on_result(result)
            return result

        return self._executor.submit(job)

    def check_many(self, specs: list[MonitorSpec], on_result: OnResult | None = None,
                   slots: dict[str, float] | None = None) -> list[CheckResult]:
        """Every result, in the order of ``specs``; hosts interleaved so one slow host goes last.
        A monitor in ``slots`` is not checked before its time (epoch seconds): the calling thread
        waits to hand it over, never a pool thread."""
        hosts = {spec.name: host_key(spec) for spec in specs}
        order = interleave_by_host(specs, hosts)
        if slots:
            order.sort(key=lambda spec: slots.get(spec.name, 0.0))  # stable: the interleaving stays
        futures = {}
        for spec in order:
            wait = (slots.get(spec.name, 0.0) - time.time()) if slots else 0.0
            if wait > 0:
                time.sleep(wait)
            futures[spec.name] = self.submit(spec, on_result)
        return [futures[spec.name].result() for spec in specs]

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.session.close()


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
