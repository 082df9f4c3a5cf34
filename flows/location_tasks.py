"""The check-batch task of each location, and the worker that serves it (Prefect task workers).

One Prefect task per location, keyed by it: the task key starts with ``check-batch-<location>``,
so a batch sent with ``.delay()`` to ``check-batch-eu-west`` reaches only the task workers of
``alerting worker --location eu-west``, and Prefect's server hands each task run to one of them
(whichever takes it first). A worker that joins subscribes and gets its share from the next batch
on; one that dies takes the batches it held with it (the scheduler's deadline sends them again next
cycle, see flows/dispatch.py).

A batch carries monitor *names* and an expiry time, never specs: each worker reads the same config
file itself (headers, tokens and URLs stay on the machine), checks with its own CheckPool, and
returns the results (URLs redacted, no secrets). A batch that waited past its expiry (queued while the
location had no worker) is answered with nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from prefect import Task, task
from prefect.cache_policies import NO_CACHE

from alerting.check_pool import CheckPool
from alerting.config import Config, ConfigError, load_config

log = logging.getLogger("alerting.worker")
RELOAD_EVERY = 2.0  # seconds between looks at the config file's modification time


def task_name(location: str) -> str:
    return f"check-batch-{location}"


def batch_task(location: str) -> Task[..., list[dict[str, Any]]]:
    """The location's check-batch task; the same key in the scheduler and in every worker of this code."""

    def check_batch(names: list[str], expires: float, batch_id: str) -> list[dict[str, Any]]:
        return _checker().check(names, expires)

    check_batch.__name__ = check_batch.__qualname__ = task_name(location)
    return task(name=task_name(location), cache_policy=NO_CACHE, persist_result=True, retries=0,
                log_prints=False)(check_batch)


class _Checker:
    """The worker's config (re-read when the file changes) and its check pool."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.config: Config | None = None
        self.pool: CheckPool | None = None
        self._mtime: float | None = None
        self._next_look = 0.0
        self._lock = threading.Lock()

    def use(self, path: Path, config: Config) -> None:
        self.path, self.config = path, config
        self._mtime = path.stat().st_mtime
        self.pool = CheckPool(config.concurrency, config.per_host_concurrency)

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
            self.config = load_config(self.path)
            log.warning("%s changed: %d monitors now", self.path, len(self.config.monitors))
        except ConfigError as exc:
            log.error("%s changed but is unusable (%s); checking with the previous version", self.path,
                      exc.problems[0])

    def check(self, names: list[str], expires: float) -> list[dict[str, Any]]:
        with self._lock:
            self._reload()
        config, pool = self.config, self.pool
        if config is None or pool is None:
            raise RuntimeError("this process serves no location (alerting worker sets it up)")
        if time.time() >= expires:
            return []  # waited in the queue too long: the scheduler has given up on it
        specs = {m.name: m for m in config.monitors}
        unknown = [n for n in names if n not in specs]
        if unknown:
            log.error("%d monitor(s) of the batch are not in %s (configs differ?): %s", len(unknown), self.path,
                      ", ".join(unknown[:5]))
        results = pool.check_many([specs[n] for n in names if n in specs], timeout=max(0.0, expires - time.time()))
        return [result.model_dump(mode="json") for result in results]


_CHECKER = _Checker()


def _checker() -> _Checker:
    return _CHECKER


def serve_location(config_path: Path, config: Config, location: str, limit: int = 16) -> None:
    """Blocks: this process is a task worker of ``location`` until Ctrl-C or SIGTERM."""
    from prefect.settings import PREFECT_LOGGING_TO_API_ENABLED, temporary_settings
    from prefect.task_worker import serve

    from flows.shared_client import one_sync_client

    _CHECKER.use(config_path, config)
    # batches run outside flow runs: the API takes no logs from them (each would only warn)
    with temporary_settings(updates={PREFECT_LOGGING_TO_API_ENABLED: False}), one_sync_client():
        serve(batch_task(location), limit=limit)
