"""One Prefect client per process for the API calls Prefect makes on the distributed mode's behalf.

Each time Prefect's ``get_client()`` finds no active client context it builds a new client, and with
it a new TLS context loaded from certifi's CA bundle: ~22 ms of CPU measured on the 2-core machine,
even for a plain-HTTP API. ``Task.delay()``, a future's ``wait()`` and ``result()``, and the
result-storage lookups behind them each ask for one: at 1,000 monitors that was 42% of the
scheduler's CPU (py-spy, bench/distributed.py), and 13 CSRF-token fetches per cycle (one per new
client). A task worker built one or two per batch. Prefect reuses the client of an active ``AsyncClientContext`` / ``SyncClientContext``, as it
does for the tasks of a flow run; these helpers keep one open for the process's life.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient
    from prefect.context import AsyncClientContext

log = logging.getLogger("alerting.worker")


class SharedAsyncClient:
    """An async Prefect client opened once on Prefect's run-sync loop (where ``.delay()``, ``wait()``
    and ``result()`` run their coroutines) and made current for the calls inside ``active()``, from
    any number of threads at once. httpx reconnects by itself after the API was away."""

    def __init__(self) -> None:
        self._context: AsyncClientContext | None = None
        self._lock = threading.Lock()

    def _open(self) -> AsyncClientContext:
        from prefect.context import AsyncClientContext
        from prefect.utilities.asyncutils import run_coro_as_sync

        async def enter() -> AsyncClientContext:
            context = AsyncClientContext()
            await context.client.__aenter__()  # binds the client to this (the run-sync) loop
            return context

        return run_coro_as_sync(enter())

    @contextmanager
    def active(self) -> Iterator[PrefectClient]:
        """The client, current for every Prefect call made in this thread until the block ends."""
        with self._lock:
            if self._context is None:
                self._context = self._open()
            context = self._context
        with context.model_copy():  # a copy per entry: Prefect's contexts hold one token each
            yield context.client

    def close(self) -> None:
        from prefect.utilities.asyncutils import run_coro_as_sync

        with self._lock:
            context, self._context = self._context, None
        if context is not None:
            run_coro_as_sync(context.client.__aexit__(None, None, None))


@contextmanager
def one_sync_client() -> Iterator[None]:
    """A task worker's task runs share one sync client: its threads inherit this context (Prefect's
    task worker copies the context into each run's thread, as a flow run's task runner does)."""
    from prefect.context import SyncClientContext

    try:
        context = SyncClientContext()
        context.__enter__()  # asks the server's API version once, as each batch's own client did
    except Exception as exc:  # noqa: BLE001 - the batches still run, each with its own client (slower)
        log.warning("Could not open one Prefect client for this worker's batches (%s: %s); each batch opens "
                    "its own", type(exc).__name__, str(exc)[:200])
        yield
        return
    try:
        yield
    finally:
        context.__exit__(None, None, None)
