"""Per-process record of each flow run's outcome, read by the on_failure hook and the CLI.

It lives in its own module, imported by package name, because a served deployment may load
``flows/monitor.py`` from its file path as a separate module object: a dict defined there would not
be the one the hook sees. Prefect 3.9's runner goes further: it hands the served flow to the run's
process serialized (cloudpickle), and a module-level dict referenced by the flow would arrive as a
copy, different from the hook's. So the dict lives on ``sys`` (never reloaded), and pickling it
yields a reference to that one dict, never a copy.
"""

from __future__ import annotations

import sys
from typing import Any

_KEY = "_outage_alerting_outcomes"


class _Outcomes(dict):
    """flow run id -> CycleOutcome; one per process however often this module is loaded."""

    def __reduce__(self):
        return (shared_outcomes, ())


def shared_outcomes() -> dict[str, Any]:
    return sys.__dict__.setdefault(_KEY, _Outcomes())


OUTCOMES: dict[str, Any] = shared_outcomes()


KEEP = 4  # outcomes kept per process: a served process runs flow after flow and must not grow


def remember(run_id: str, outcome: Any) -> None:
    """Record a run's outcome, forgetting the oldest beyond ``KEEP`` (dicts keep insertion order)."""
    OUTCOMES[run_id] = outcome
    while len(OUTCOMES) > KEEP:
        OUTCOMES.pop(next(iter(OUTCOMES)))
