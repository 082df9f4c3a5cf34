"""Waiting on conditions: poll with a deadline, fail with a message that says what never happened."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A condition did not become true in time (an AssertionError, so pytest reports a failure)."""


def wait_for(
    condition: Callable[[], T],
    timeout: float,
    interval: float = 0.1,
    what: str = "",
    details: Callable[[], str] | None = None,
) -> T:
    """Call ``condition`` every ``interval`` seconds until it returns something truthy; return that.

    After ``timeout`` seconds raise :class:`WaitTimeout` naming ``what`` (default: the condition's
    name) and the last value seen, plus ``details()`` (e.g. a log tail) when given. The condition is
    always called at least once, and once more at the deadline.
    """
    deadline = time.monotonic() + timeout
    last: T = condition()
    while not last:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            label = what or getattr(condition, "__name__", repr(condition))
            message = f"timed out after {timeout:g}s waiting for {label} (last value: {last!r})"
            if details is not None:
                message += "\n" + details()
            raise WaitTimeout(message)
        time.sleep(min(interval, remaining))  # the poll interval of a bounded wait, not a fixed sleep
        last = condition()
    return last
