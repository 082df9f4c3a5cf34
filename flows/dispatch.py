"""The scheduler's side of distributed checks: a pool that sends due monitors to the task workers of
their locations instead of checking them here.

``ContinuousMonitor`` (alerting/continuous.py) decides what is due, exactly as in the single-process
mode, and hands each monitor to ``LocationPool.submit``. Every ``FLUSH`` seconds (at most a tenth of an interval) the pool sends what
came in as one *round*: for each location, batches of up to ``BATCH`` monitor names as task runs of
that location's check-batch task (flows/location_tasks.py, ``.delay()``). It waits for them until the
round's deadline (``DEADLINE_SHARE`` of the shortest interval in it, from when its first monitor came due), combines each monitor's results
across its locations with the quorum rule (alerting/quorum.py), and hands the one result to the
recorder. A monitor no location answered for is handed back as lost: its next slot sends it again,
so a worker killed with its batches costs those monitors one cycle, never two.

A location without a live task worker (Prefect's server lists the subscribed workers) gets no task
runs (they would queue up on the server); it is logged once when it goes quiet and once when it is
back, and each monitor's text names it ("us-east: no live worker").
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from alerting import batches as batch_store
from alerting.check_pool import CheckPool, OnResult
from alerting.config import Config
from alerting.models import CheckResult, MonitorSpec
from alerting.quorum import combine, locations_of
from alerting.schedule import effective_interval
from alerting.store import Store
from flows.location_tasks import batch_task, run_name, task_name
from flows.shared_client import SharedAsyncClient

log = logging.getLogger("alerting.serve")
FLUSH = 2.0  # seconds (at most a tenth of the shortest interval waiting): monitors due this close together
# go in one round; each round costs a task run per location and batch, ~0.2 s of CPU in all
BATCH = 1000  # monitor names per task run
DEADLINE_SHARE = 0.8  # of the shortest interval in a round: results later than that are dropped
WORKERS_TTL = 5.0  # seconds between looks at which locations have live task workers
# how long a one-shot run (`alerting run`) looks again for a location's worker before it calls it
# absent: Prefect's server drops a task worker from its list after each task run it hands it and
# lists it again on its connection's next turn (up to ~1 s later, more on a busy machine)
ONE_SHOT_GRACE = 5.0
# a one-shot run has no next slot to catch up in: it waits at least this long for the locations'
# answers (a served round waits DEADLINE_SHARE of the interval); a busy machine took more than 4.8 s
ONE_SHOT_WAIT = 30.0


class LocationPool:
    """``submit(spec, on_result)`` like CheckPool; ``on_lost(name)`` when nothing answered for it."""

    # A round ends by its deadline (DEADLINE_SHARE of the interval), so a slot that came while a
    # monitor's round was out means the scheduler ran late (a busy machine, a worker killed holding
    # the batch while another location answered), not a check that outlasts its interval: the
    # continuous monitor makes that slot as soon as the round returns instead of dropping it, and a
    # location that lost its batch checks again then, not two slots later.
    runs_late_slots = True
    # New monitors' first slots come in groups a quarter of their interval apart (3 rounds per cycle
    # for a list of monitors that all came at once, instead of one every FLUSH seconds): each round
    # costs a task run per location, ~0.2 s of CPU over the server, the scheduler and a worker, while
    # a bigger batch costs a worker only its checks. Phases found in the state store are kept.
    first_slot_group_share: float | None = 0.25

    def __init__(self, config: Callable[[], Config], on_lost: Callable[[str], None], default_interval: float,
                 flush: float = FLUSH, batch: int = BATCH, concurrency: int = 8):
        self.config, self.on_lost, self.default_interval = config, on_lost, default_interval
        self.flush, self.batch = flush, batch
        self._pending: list[tuple[MonitorSpec, OnResult | None]] = []
        self._first_at: float | None = None  # when the oldest pending monitor came due
        self._shortest: float | None = None  # the shortest interval among the pending monitors
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._tasks: dict[str, Any] = {}
        self._live: dict[str, bool] = {}
        self._live_at = 0.0
        self._quiet: set[str] = set()  # locations reported as without a live worker
        self._rounds = ThreadPoolExecutor(concurrency, thread_name_prefix="round")
        self._client = SharedAsyncClient()  # one Prefect client for every round's calls
        self._store: Store | None = None  # the batches go through it (alerting/batches.py)
        self._store_lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="location-pool", daemon=True)
        self._thread.start()

    def submit(self, spec: MonitorSpec, on_result: OnResult | None = None) -> None:
        with self._lock:
            interval = effective_interval(spec, self.default_interval)
            if not self._pending:
                self._first_at, self._shortest = time.monotonic(), interval
            self._shortest = min(self._shortest or interval, interval)
            self._pending.append((spec, on_result))
        self._wake.set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(10)
        self._rounds.shutdown(wait=False, cancel_futures=True)
        try:
            self._client.close()
        except Exception as exc:  # noqa: BLE001 - closing at shutdown: nothing left to do with it
            log.debug("Closing the Prefect client: %s", exc)
        if self._store is not None:
            self._store.close()

    def _batch_store(self) -> Store:
        """The state store the batches go through, opened at the first round (a StoreError then fails
        the round, and its monitors go back to the timetable); like the recorder's, kept until exit."""
        with self._store_lock:
            if self._store is None:
                self._store = Store(self.config().resolved_state_url())
            return self._store

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            with self._lock:
                wait = min(self.flush, 0.1 * (self._shortest or self.default_interval))
            if self._stop.wait(wait):  # let the monitors due together arrive
                return
            self._wake.clear()
            with self._lock:
                items, self._pending, due = self._pending, [], self._first_at or time.monotonic()
            if items:
                self._rounds.submit(self._round_safely, items, due)

    def _task(self, location: str):
        if location not in self._tasks:
            self._tasks[location] = batch_task(location)
        return self._tasks[location]

    def _live_locations(self, locations: list[str]) -> dict[str, bool]:
        """Which locations have a subscribed task worker (asked at most every WORKERS_TTL seconds)."""
        now = time.monotonic()
        if now - self._live_at >= WORKERS_TTL or any(loc not in self._live for loc in locations):
            keys = {self._task(loc).task_key: loc for loc in locations}
            try:
                from prefect.utilities.asyncutils import run_coro_as_sync

                with self._client.active() as client:
                    response: httpx.Response = run_coro_as_sync(client._client.post(
                        "/task_workers/filter", json={"task_worker_filter": {"task_keys": list(keys)}}))
                response.raise_for_status()
                subscribed = {key for worker in response.json() for key in worker.get("task_keys", [])}
                self._live = {loc: key in subscribed for key, loc in keys.items()}
                self._live_at = now
            except Exception as exc:  # noqa: BLE001 - without the answer, try every location
                log.warning("Could not list the task workers (%s); sending to every location", type(exc).__name__)
                return dict.fromkeys(locations, True)
        return {loc: self._live.get(loc, False) for loc in locations}

    def _round_safely(self, items: list[tuple[MonitorSpec, OnResult | None]], due: float) -> None:
        try:
            with self._client.active():
                self._round(items, due)
        except Exception as exc:  # noqa: BLE001 - the monitors go back to the timetable
            log.error("A round of %d checks failed: %s: %s", len(items), type(exc).__name__, str(exc)[:200])
            for spec, _ in items:
                self.on_lost(spec.name)

    def check_once(self, specs: list[MonitorSpec], on_result: OnResult) -> list[str]:
        """One round now, in this thread (``alerting run``): each monitor's result combined over its
        locations goes to ``on_result``; returns the names that no location answered for."""
        lost: list[str] = []
        if specs:
            known = self.config().locations
            with self._client.active():
                self._await_workers(sorted({loc for spec in specs for loc in locations_of(spec, known)}))
                self._round([(spec, on_result) for spec in specs], time.monotonic(), lost.append,
                            min_wait=ONE_SHOT_WAIT)
        return lost

    def _await_workers(self, locations: list[str], grace: float = ONE_SHOT_GRACE) -> None:
        """Look again, for up to ``grace`` seconds, while a location seems to have no live worker."""
        deadline = time.monotonic() + grace
        absent = [loc for loc, alive in self._live_locations(locations).items() if not alive]
        if absent:
            log.info("No live worker listed for %s yet; looking again for up to %gs", ", ".join(absent), grace)
        while not all(self._live_locations(locations).values()) and time.monotonic() < deadline:
            time.sleep(0.5)
            self._live_at = 0.0  # the next look asks the server again

    def _round(self, items: list[tuple[MonitorSpec, OnResult | None]], due: float,
               on_lost: Callable[[str], None] | None = None, min_wait: float = 0.0) -> None:
        """Send, wait, combine. The deadline counts from when the first of them came due, so a lost
        batch frees its monitors before their next slot."""
        known = self.config().locations
        by_location: dict[str, list[str]] = {}
        for spec, _ in items:
            for loc in locations_of(spec, known):
                by_location.setdefault(loc, []).append(spec.name)
        shortest = min(effective_interval(spec, self.default_interval) for spec, _ in items)
        deadline = max(due + DEADLINE_SHARE * shortest, time.monotonic() + min_wait)
        expires = time.time() + (deadline - time.monotonic())
        live = self._live_locations(list(by_location))
        self._report_quiet(live)
        store = self._batch_store()
        sent = []
        for loc, names in by_location.items():
            if not live[loc]:
                continue
            for part in batches(names, self.batch):
                batch_id = uuid.uuid4().hex
                batch_store.put(store, batch_id, loc, part, expires)
                try:  # the task run carries only the batch id, in its name
                    sent.append((loc, batch_id, self._task(loc).with_options(name=run_name(loc, batch_id)).delay()))
                except Exception:
                    batch_store.take(store, batch_id)
                    raise
        answers: dict[str, dict[str, CheckResult | None]] = {}
        for loc, batch_id, future in sent:
            try:
                future.wait(timeout=max(0.0, deadline - time.monotonic()))
            except Exception as exc:  # noqa: BLE001 - what the worker wrote (if anything) is in the row
                log.warning("Waiting for a %s batch failed: %s", task_name(loc), type(exc).__name__)
            results = batch_store.take(store, batch_id)  # answered or not, the row goes now
            if results is None:  # a lost batch: its monitors are lost for this cycle
                log.warning("A %s batch was not answered by its deadline", task_name(loc))
                continue
            for raw in results:
                result = CheckResult.model_validate(raw)
                answers.setdefault(result.monitor, {})[loc] = result
        for spec, on_result in items:
            combined = combine(spec, known, answers.get(spec.name, {}))
            if combined is None:
                (on_lost or self.on_lost)(spec.name)
            elif on_result is not None:
                on_result(combined)

    def _report_quiet(self, live: dict[str, bool]) -> None:
        for loc, alive in live.items():
            if not alive and loc not in self._quiet:
                self._quiet.add(loc)
                log.error("Location %s has no live worker (alerting worker --location %s): its checks are "
                          "not made, and count as neither up nor down", loc, loc)
            elif alive and loc in self._quiet:
                self._quiet.discard(loc)
                log.warning("Location %s has a live worker again", loc)


def batches(names: list[str], batch: int) -> list[list[str]]:
    """A location's share of a round as task runs of at most ``batch`` names each, as even as can be.
    One run per round and location while it fits: every task run costs server, scheduler and worker
    CPU (about 0.2 s in all), and cutting rounds into a run per live worker measured 10.2 ms of CPU per
    check at 1,000 monitors against 4.7 ms (bench/distributed.py)."""
    if not names:
        return []
    parts = -(-len(names) // batch)
    size, extra = divmod(len(names), parts)  # the first `extra` get one more
    bounds = [i * size + min(i, extra) for i in range(parts + 1)]
    return [names[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def pool_for(config: Callable[[], Config], on_lost: Callable[[str], None], default_interval: float):
    """The served monitor's pool: task workers of the locations when the config names any
    (``locations:``), else threads in this process."""
    cfg = config()
    if cfg.locations:
        log.warning("Checks go to the task workers of %s (alerting worker --location NAME)", ", ".join(cfg.locations))
        return LocationPool(config, on_lost, default_interval)
    return CheckPool(cfg.concurrency, cfg.per_host_concurrency)
