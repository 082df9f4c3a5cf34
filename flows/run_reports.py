"""Where a flow run in this process leaves its report for the caller (``alerting run``).

Its own module, reached through functions: Prefect's runner cloudpickles the flow's module by value
for each run, and a ContextVar cannot be pickled; a function of another module is pickled by
reference. Only the process that called the flow reads the reports; hooks never do.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_SINK: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar("alerting_run_reports", default=None)


def report(value: Any) -> None:
    """Hand a run's report to the caller, if one is collecting in this context."""
    sink = _SINK.get()
    if sink is not None:
        sink.append(value)


@contextmanager
def collecting() -> Iterator[list[Any]]:
    sink: list[Any] = []
    token = _SINK.set(sink)
    try:
        yield sink
    finally:
        _SINK.reset(token)
