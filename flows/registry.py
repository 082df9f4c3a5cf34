"""Per-process record of each flow run's outcome, read by the on_failure hook and the CLI.

It lives in its own module, imported by package name, because a served deployment may load
``flows/monitor.py`` from its file path as a separate module object: a dict defined there would not
be the one the hook sees.
"""

from __future__ import annotations

from typing import Any

OUTCOMES: dict[str, Any] = {}  # flow run id -> flows.monitor.CycleOutcome
