"""The distributed mode's batches, carried by the state store (table ``check_batch``).

The scheduler writes a batch (which monitors one location checks, and until when) and sends a Prefect
task run that carries only the batch id; the location's task worker reads the batch, checks, and
writes the results into the same row; the scheduler reads them once the task run has completed and
deletes the row. So Prefect's result storage is not used: the scheduler and the workers share no disk,
only the state store (PostgreSQL when they run on several machines), and nothing piles up per batch.
A row whose scheduler died before taking it is deleted by the next ``put`` once it has expired.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import select

from alerting.store import Store
from alerting.store_schema import check_batch

ORPHAN_AFTER = 600.0  # seconds past its expiry: no scheduler will read this row any more


def put(store: Store, batch_id: str, location: str, names: list[str], expires: float) -> None:
    now = time.time()
    with store.begin() as tx:
        tx.conn.execute(check_batch.delete().where(check_batch.c.expires < now - ORPHAN_AFTER))
        tx.conn.execute(check_batch.insert().values(id=batch_id, location=location, names=json.dumps(names),
                                                    expires=expires, created=now))


def request(store: Store, batch_id: str) -> tuple[list[str], float] | None:
    """(monitor names, expiry) of a batch still wanted; None once the scheduler took it back."""
    with store.engine.connect() as conn:
        row = conn.execute(select(check_batch.c.names, check_batch.c.expires)
                           .where(check_batch.c.id == batch_id)).first()
    return None if row is None else (json.loads(row.names), row.expires)


def answer(store: Store, batch_id: str, results: list[dict[str, Any]]) -> bool:
    """Write a batch's results; False when the scheduler no longer waits for it (row taken back)."""
    with store.begin() as tx:
        done = tx.conn.execute(check_batch.update().where(check_batch.c.id == batch_id)
                               .values(results=json.dumps(results))).rowcount
    return bool(done)


def take(store: Store, batch_id: str) -> list[dict[str, Any]] | None:
    """The batch's results (None if no worker answered), and the row is gone."""
    with store.begin() as tx:
        row = tx.conn.execute(select(check_batch.c.results).where(check_batch.c.id == batch_id)).first()
        tx.conn.execute(check_batch.delete().where(check_batch.c.id == batch_id))
    if row is None or row.results is None:
        return None
    return list(json.loads(row.results))
