"""The continuous monitor: every monitor checked on its own interval, alerts sent the moment a check decides.

What ``alerting serve`` runs by default, inside the serving process, with or without the Prefect API:

    timetable (alerting/timetable.py): which monitor's slot has come
      -> CheckPool (threads; a slot per attempt, none held while a retry waits; keep-alive pool)
      -> ResultRecorder (policy + state + history + outbox rows, grouped over a quarter second)
      -> Deliverer (woken at once; retries backed-off rows every few seconds)

The scheduled flow runs of the deployment report on it (``take_report``): what was checked since
the previous run, what the policy decided, what was sent, and they end Failed while any service is
DOWN, so hooks, automations and the dashboard see every outage. When the Prefect API is away the
checks and alerts simply go on; only the reports wait.

The YAML file is re-read when it changes (not every cycle); Service Monitor blocks come with each
flow run (``use_config``) and are kept when the API is away.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Protocol

from alerting.check_pool import CheckPool, OnResult
from alerting.config import Config, ConfigError, load_config
from alerting.cycle import CycleReport, confirmation_notes, open_store
from alerting.deliverer import Deliverer, log_deliveries
from alerting.delivery import DeliveryResult
from alerting.models import CheckResult, MonitorSpec, Status, utcnow
from alerting.record import prune_history
from alerting.recorder import ResultRecorder
from alerting.render import cycle_message
from alerting.schedule import effective_interval, in_shard, parse_shard
from alerting.store import Store
from alerting.timetable import Timetable

log = logging.getLogger("alerting.serve")

RELOAD_EVERY = 2.0  # seconds between looks at the config file's modification time
PRUNE_EVERY = 600.0  # seconds between history prunes
TICK = 0.02  # seconds: the timetable's resolution (slots stay exact; a check starts at most this late)
_running: dict[str, ContinuousMonitor] = {}  # config path -> the monitor checking it in this process


def running_for(config_path: str | os.PathLike[str]) -> ContinuousMonitor | None:
    """The continuous monitor of this config file in this process, if one runs."""
    return _running.get(str(Path(config_path).resolve()))


@dataclass
class Stats:
    started: int = 0  # checks started
    finished: int = 0
    last_finished: float | None = None  # monotonic time of the newest result


@dataclass
class CycleWindow:
    """What happened between two reports."""

    report: CycleReport
    deliveries: list[DeliveryResult] = field(default_factory=list)
    missed: int = 0


class Pool(Protocol):
    """Where checks run: CheckPool (here, threads) or flows/dispatch.LocationPool (Prefect task workers)."""

    # True: a slot that came while the monitor's check was out is made when it returns (a pool whose
    # checks end by a deadline within the interval); False: that slot is skipped (a long retry)
    runs_late_slots: bool
    # new monitors' first slots come in groups this share of their interval apart; None: every
    # GROUP_EVERY seconds (alerting/timetable.py), which suits checks made here
    first_slot_group_share: float | None

    def submit(self, spec: MonitorSpec, on_result: OnResult | None = None) -> object: ...

    def close(self) -> None: ...


# (the config as it is now, the callback for a monitor nobody checked this slot, the default interval)
PoolFactory = Callable[[Callable[[], Config], Callable[[str], None], float], Pool]


class ContinuousMonitor:
    def __init__(self, config_path: Path, interval: float, shard: str | None = None,
                 pool_factory: PoolFactory | None = None):
        self.config_path = Path(config_path).resolve()
        self.interval = interval
        self.shard = parse_shard(shard) if shard else None
        self.yaml = load_config(self.config_path)  # a bad file is the caller's ConfigError, before anything starts
        self._mtime = self._stat()
        self._extra_monitors: list[MonitorSpec] = []
        self._extra_channels: dict = {}
        self._skip_channels: set[str] = set()
        self.config = self.yaml
        self.specs: dict[str, MonitorSpec] = {}
        self.timetable = Timetable()
        self.stats = Stats()
        self._in_flight: set[str] = set()
        self._skipped: set[str] = set()  # a slot came while its check was out (lost ones are re-sent at once)
        self._missed_reported = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._first_round: set[str] = set()
        self._first_round_done = threading.Event()
        self.store: Store | None = None
        self.pool: Pool | None = None
        self.local_pool: CheckPool | None = None  # with a pool_factory: for monitors not in the YAML file
        self._yaml_names: set[str] = set()
        self.pool_factory = pool_factory
        self.recorder: ResultRecorder | None = None
        self.deliverer: Deliverer | None = None
        self._thread: threading.Thread | None = None
        self.run_url: str | None = None

    # --- life -----------------------------------------------------------------------------------------
    def start(self) -> ContinuousMonitor:
        if self._thread is not None:
            return self  # the deployment was registered again (the API came back): already checking
        self.store = open_store(self.config)
        if self.pool_factory is not None:
            self.pool = self.pool_factory(lambda: self.config, self._lost, self.interval)
            # monitors the workers cannot know (Service Monitor blocks: workers read only the YAML
            # file) are checked here, never left unchecked
            self.local_pool = CheckPool(self.config.concurrency, self.config.per_host_concurrency)
        else:
            self.pool = CheckPool(self.config.concurrency, self.config.per_host_concurrency)
        self.deliverer = Deliverer(self.store, lambda: self.config, on_delivered=partial(log_deliveries, log))
        self.recorder = ResultRecorder(self.store, self.config, on_queued=self.deliverer.wake, run_url=self.run_url)
        self._apply(self.config, first=True)
        _running[str(self.config_path)] = self
        self._thread = threading.Thread(target=self._loop, name="continuous-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        _running.pop(str(self.config_path), None)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.pool is not None:
            self.pool.close()
        if self.local_pool is not None:
            self.local_pool.close()
        if self.recorder is not None:
            self.recorder.close(timeout)
        if self.deliverer is not None:
            self.deliverer.close(timeout)
        if self.store is not None:
            self.store.close()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def link(self, url: str | None) -> ContinuousMonitor:
        """Alerts link this page of the Prefect UI (the deployment: its runs report on these checks)."""
        self.run_url = url
        if self.recorder is not None:
            self.recorder.run_url = url
        return self

    # --- configuration --------------------------------------------------------------------------------
    def use_config(self, merged: Config, skip_channels: set[str] | None = None) -> None:
        """The config with Service Monitor blocks merged in (a flow run's view), and the channels the
        server's automations alert instead (never alerted from here); kept across reloads of the YAML
        file until the next run brings newer ones."""
        names = {m.name for m in self.yaml.monitors}
        self._extra_monitors = [m for m in merged.monitors if m.name not in names]
        self._extra_channels = {k: v for k, v in merged.channels.items() if k not in self.yaml.channels}
        if skip_channels is not None:
            self._skip_channels = set(skip_channels)
        self._apply(self._merged())

    def _merged(self) -> Config:
        monitors = [*self.yaml.monitors, *self._extra_monitors]
        if self._skip_channels:
            monitors = [m.model_copy(update={"channels": [c for c in m.channels if c not in self._skip_channels]})
                        for m in monitors]
        return replace(self.yaml, monitors=monitors, channels={**self._extra_channels, **self.yaml.channels})

    def _stat(self) -> float | None:
        try:
            return self.config_path.stat().st_mtime
        except OSError:
            return None

    def _reload_if_changed(self) -> None:
        mtime = self._stat()
        if mtime == self._mtime:
            return
        self._mtime = mtime
        try:
            self.yaml = load_config(self.config_path)
        except ConfigError as exc:
            log.error("%s changed but is unusable (%s); still checking with the previous version",
                      self.config_path, exc.problems[0])
            return
        for problem in self.yaml.problems:
            log.error("%s", problem)
        log.warning("%s changed: %d monitors now", self.config_path, len(self.yaml.monitors))
        self._apply(self._merged())

    def _apply(self, config: Config, first: bool = False) -> None:
        specs = [s for s in config.monitors if self.shard is None or in_shard(s, self.shard)]
        with self._lock:
            self._yaml_names = {m.name for m in self.yaml.monitors}
            self.config = config
            self.specs = {s.name: s for s in specs}
            if self.recorder is not None:
                self.recorder.config = config
            if self.pool is None:
                return  # not started: start() schedules every monitor, with the pool's grouping and the store's phases
            ages = {}
            if first and self.store is not None:
                try:
                    now = utcnow()
                    ages = {name: (now - at).total_seconds() for name, at in self.store.last_checked().items()}
                except Exception as exc:  # noqa: BLE001 - without the store everything is due now
                    log.error("State store unusable (%s): checking every monitor now", type(exc).__name__)
            intervals = {s.name: effective_interval(s, self.interval) for s in specs}
            self.timetable.set_monitors(intervals, time.monotonic(), ages,
                                        group_share=self.pool.first_slot_group_share)
            if first:  # the first report waits for these; the others' stored states are less than an interval old
                self._first_round = {name for name in self.specs if ages.get(name, math.inf) >= intervals[name]}
                if not self._first_round:
                    self._first_round_done.set()
        self._wake.set()

    # --- the loop -------------------------------------------------------------------------------------
    def _loop(self) -> None:
        next_reload = next_prune = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                if now >= next_reload:
                    next_reload = now + RELOAD_EVERY
                    self._reload_if_changed()
                if now >= next_prune:
                    next_prune = now + PRUNE_EVERY
                    if self.store is not None:
                        prune_history(self.store, self.config, utcnow())
                self._dispatch(now)
            except Exception as exc:  # noqa: BLE001 - the loop never dies; the next tick tries again
                log.error("Continuous monitor: %s: %s", type(exc).__name__, str(exc)[:200])
            with self._lock:
                due = self.timetable.next_due()
            wait = min(next_reload, due if due is not None else next_reload) - time.monotonic()
            self._wake.wait(max(TICK, wait))  # slots due within a tick are dispatched together
            self._wake.clear()

    def _dispatch(self, now: float) -> None:
        with self._lock:
            slots = self.timetable.pop_due(now)
            specs = self.specs
        for name, _slot in slots:
            spec = specs.get(name)
            if spec is None:
                continue
            with self._lock:
                if name in self._in_flight:
                    self.timetable.skip()  # its previous check is still running (long retries)
                    self._skipped.add(name)
                    continue
                self._in_flight.add(name)
                self.stats.started += 1
            pool: Pool | None = self.local_pool if self.local_pool is not None and name not in self._yaml_names else self.pool
            assert pool is not None
            pool.submit(spec, partial(self._finished, spec=spec, late_slot_now=pool.runs_late_slots))

    def _finished(self, result: CheckResult, *, spec: MonitorSpec, late_slot_now: bool = False) -> None:
        with self._lock:
            self._in_flight.discard(result.monitor)
            if result.monitor in self._skipped:
                self._skipped.discard(result.monitor)
                if late_slot_now:  # its slot came while the round was out: made now, late, not dropped
                    self.timetable.due_now(result.monitor, time.monotonic())
                    self._wake.set()
            self.stats.finished += 1
            self.stats.last_finished = time.monotonic()
            if self._first_round:
                self._first_round.discard(result.monitor)
                if not self._first_round:
                    self._first_round_done.set()
        assert self.recorder is not None
        self.recorder.put(result, spec)

    def _lost(self, name: str) -> None:
        """Nobody checked it this slot (its workers died or none answered): the next slot tries again."""
        with self._lock:
            self._in_flight.discard(name)
            if name in self._skipped:  # its slot passed while it was out: check it now, not a slot later
                self._skipped.discard(name)
                self.timetable.due_now(name, time.monotonic())
                self._wake.set()

    # --- reports --------------------------------------------------------------------------------------
    def wait_first_round(self, timeout: float) -> bool:
        """True once every monitor has been checked at least once since start."""
        return self._first_round_done.wait(timeout)

    def take_report(self, now: datetime | None = None) -> CycleWindow:
        """Everything recorded and delivered since the previous report, as one cycle's report:
        ok False while any service is DOWN (checked in this window or not)."""
        assert self.recorder is not None and self.deliverer is not None
        self.recorder.flush(timeout=10.0)
        journal = self.recorder.take()
        deliveries = self.deliverer.take()
        with self._lock:
            specs = dict(self.specs)
            missed = self.timetable.missed - self._missed_reported
            self._missed_reported = self.timetable.missed
        latest: dict[str, CheckResult] = {}
        for result in journal.results:
            latest[result.monitor] = result
        results = [latest[name] for name in specs if name in latest]
        still_down: list[str] = []
        store_error = journal.store_error
        try:
            assert self.store is not None
            # the states the recorder wrote in this window are the stored ones (it is their only
            # writer here); the store is read only for the monitors not checked in the window
            unchecked = [name for name in specs if name not in latest]
            stored = self.store.states(unchecked)
            still_down = [name for name in unchecked if name in stored and stored[name].status is Status.DOWN]
            states = {name: journal.states[name] for name in latest if name in journal.states}
            missing = [name for name in latest if name not in states]
            if missing:  # a result not applied (older than one recorded): the store has its state
                states.update(self.store.states(missing))
        except Exception as exc:  # noqa: BLE001
            store_error = store_error or f"{type(exc).__name__}: {str(exc)[:200]}"
            states = journal.states
        ok, message = cycle_message(
            results, [str(p).split(": ", 1)[-1] for p in self.config.problems], self.config.path,
            notes=confirmation_notes(results, states, specs), not_due=len(specs) - len(results),
            still_down=still_down,
        )
        # the run reports the state of each service, not only the last check: a confirmed DOWN
        # monitor keeps the run Failed even when its latest check in this window passed unconfirmed
        down_now = [n for n, s in states.items() if s.status is Status.DOWN]
        if down_now and ok:
            ok, message = False, f"{message}; still DOWN: {', '.join(down_now)}"
        if missed:
            message += f" ({missed} check slot{'s' if missed != 1 else ''} missed: checks still running)"
        if store_error:
            ok, message = False, f"state store unusable ({store_error}); {message}"
        report = CycleReport(results, states, journal.events, journal.queued, len(specs) - len(results), still_down,
                             store_error, ok, message)
        return CycleWindow(report, deliveries, missed)
