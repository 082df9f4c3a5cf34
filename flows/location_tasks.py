"""The check-batch task of each location, and the worker that serves it (Prefect task workers).

One Prefect task per location, keyed by it: the task key starts with ``check-batch-<location>``,
so a batch sent with ``.delay()`` to ``check-batch-eu-west`` reaches only the task workers of
``alerting worker --location eu-west``, and Prefect's server hands each task run to one of them
(whichever takes it first). A worker that joins subscribes and gets its share from the next batch
on; one that dies takes the batches it held with it (the scheduler's deadline sends them again next
cycle, see flows/dispatch.py).

The task run carries nothing but the batch id, in its name (``check-batch-eu-west:<id>``): the batch
itself (monitor *names* and an expiry time, never specs) and its results go through the state store
(alerting/batches.py). So the task takes no parameters, and Prefect's result storage (files under
``~/.prefect/storage``, one per parameters and per result, never deleted) holds only one small file
per location (the count of the last batch, overwritten): scheduler and workers share no disk, only the
state store. Each worker reads the same config file itself (headers, tokens and URLs stay on the
machine), checks with its own CheckPool, and writes the results (URLs redacted, no secrets). A batch that waited past its expiry (queued while the
location had no worker), or that the scheduler took back, is answered with nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import partial
from pathlib import Path

from prefect import Task, task
from prefect.context import TaskRunContext

from alerting import batches
from alerting.check_pool import CheckPool
from alerting.config import Config, ConfigError, load_config
from alerting.store import Store

log = logging.getLogger("alerting.worker")
RELOAD_EVERY = 2.0  # seconds between looks at the config file's modification time


def task_name(location: str) -> str:
    return f"check-batch-{location}"


def run_name(location: str, batch_id: str) -> str:
    """The name of a batch's task run (and of the task sent for it): how the worker finds the batch."""
    return f"{task_name(location)}:{batch_id}"


def batch_id_of(name: str) -> str:
    """The id in a batch's task run name; inside a flow run Prefect appends "-<3 characters>" to it."""
    return name.rpartition(":")[2][:32]


def batch_task(location: str) -> Task[[], int]:
    """The location's check-batch task; the same key in the scheduler and in every worker of this code.
    No parameters: Prefect would store them, with the sender's whole settings, as a file per batch."""

    def check_batch() -> int:
        context = TaskRunContext.get()
        if context is None or context.task_run is None:
            raise RuntimeError("check-batch runs as a Prefect task run (alerting worker serves it)")
        return _checker().check(batch_id_of(context.task_run.name))

    check_batch.__name__ = check_batch.__qualname__ = task_name(location)
    # A task worker persists every result (it forces persist_result=True), by default under a key
    # unique to the run: a file per batch, never deleted. The result is only a count, so it goes under
    # one key per location instead (the file is overwritten by each batch), and is never read back as
    # a cache hit (refresh_cache).
    return task(name=task_name(location), cache_key_fn=partial(_result_key, location), refresh_cache=True,
                retries=0, log_prints=False)(check_batch)


def _result_key(location: str, *_: object) -> str:
    return task_name(location)


class _Checker:
    """The worker's config (re-read when the file changes) and its check pool."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.config: Config | None = None
        self.pool: CheckPool | None = None
        self.store: Store | None = None
        self._mtime: float | None = None
        self._next_look = 0.0
        self._lock = threading.Lock()

    def use(self, path: Path, config: Config, store: Store | None = None) -> None:
        self.path, self.config = path, config
        self._mtime = path.stat().st_mtime
        self.pool = CheckPool(config.concurrency, config.per_host_concurrency)
        self.store = store or Store(config.resolved_state_url())

    def _reload(self) -> None:
        now = time.monotonic()
        if self.path is None or now < self._next_look:
            return
        self._next_look = now + RELOAD_EVERY
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return
        if mtime == self._mtime:
            return
        self._mtime = mtime
        try:
            config = load_config(self.path)
        except ConfigError as exc:
            log.error("%s changed but is unusable (%s); checking with the previous version", self.path,
                      exc.problems[0])
            return
        if self.config is not None and config.resolved_state_url() != self.config.resolved_state_url():
            # as in the scheduler, the store is the one opened at start
            log.warning("%s changed its state_url: restart this worker (and the scheduler) to use it", self.path)
        self.config = config
        log.warning("%s changed: %d monitors now", self.path, len(config.monitors))

    def check(self, batch_id: str) -> int:
        """Check the batch's monitors and write their results into its row; returns how many."""
        with self._lock:
            self._reload()
        config, pool, store = self.config, self.pool, self.store
        if config is None or pool is None or store is None:
            raise RuntimeError("this process serves no location (alerting worker sets it up)")
        wanted = batches.request(store, batch_id)
        if wanted is None:
            log.info("Batch %s is no longer wanted (its round ended)", batch_id)
            return 0
        names, expires = wanted
        if time.time() >= expires:
            return 0  # waited in the queue too long: the scheduler has given up on it
        specs = {m.name: m for m in config.monitors}
        unknown = [n for n in names if n not in specs]
        if unknown:
            log.error("%d monitor(s) of the batch are not in %s (configs differ?): %s", len(unknown), self.path,
                      ", ".join(unknown[:5]))
        results = pool.check_many([specs[n] for n in names if n in specs], timeout=max(0.0, expires - time.time()))
        if not batches.answer(store, batch_id, [result.model_dump(mode="json") for result in results]):
            log.warning("Batch %s was taken back before its %d results came (past its round's deadline)",
                        batch_id, len(results))
        return len(results)


_CHECKER = _Checker()


def _checker() -> _Checker:
    return _CHECKER


def serve_location(config_path: Path, config: Config, location: str, limit: int = 16,
                   store: Store | None = None) -> None:
    """Blocks: this process is a task worker of ``location`` until Ctrl-C or SIGTERM."""
    from prefect.settings import PREFECT_LOGGING_TO_API_ENABLED, temporary_settings
    from prefect.task_worker import serve

    from flows.shared_client import one_sync_client

    _CHECKER.use(config_path, config, store)
    # batches run outside flow runs: the API takes no logs from them (each would only warn)
    with temporary_settings(updates={PREFECT_LOGGING_TO_API_ENABLED: False}), one_sync_client():
        serve(batch_task(location), limit=limit)
