"""``alerting run``: one cycle as a Prefect flow run, or, when the Prefect API cannot be reached,
the same cycle without it (checks, state, alerts), said plainly instead of a traceback."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from alerting.config import load_config
from alerting.cycle import CycleReport
from alerting.delivery import DeliveryResult

log = logging.getLogger(__name__)


@dataclass
class OneRun:
    ok: bool
    message: str
    cycle: CycleReport = field(default_factory=CycleReport)
    deliveries: list[DeliveryResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    state: str = ""  # the flow run's final state type; "" when it ran without Prefect
    flow_run_id: str | None = None
    not_recorded: str | None = None  # why this run is not in Prefect (the API was unreachable)


def api_unreachable(timeout: float = 3.0) -> str | None:
    """Why the configured Prefect API cannot be used, or None (None also when none is configured:
    Prefect then starts a temporary server of its own)."""
    from prefect.settings import PREFECT_API_URL

    url = os.environ.get("PREFECT_API_URL") or PREFECT_API_URL.value()
    if not url:
        return None
    import httpx

    try:
        response = httpx.get(f"{url.rstrip('/')}/health", timeout=timeout)
    except httpx.HTTPError as exc:
        return f"the Prefect API at {url} does not answer ({type(exc).__name__})"
    if response.status_code != 200:
        return f"the Prefect API at {url} answered HTTP {response.status_code}"
    return None


def run_one(config_path: Path, shard: str | None = None) -> OneRun:
    reason = api_unreachable()
    if reason is None:
        try:
            return _with_prefect(config_path, shard)
        except Exception as exc:  # noqa: BLE001 - the API went away: still check and alert
            reason = f"the Prefect run failed ({type(exc).__name__}: {str(exc)[:200]})"
    return _without_prefect(config_path, shard, reason)


def _with_prefect(config_path: Path, shard: str | None) -> OneRun:
    from flows.service_monitor import run_once

    state, report = run_once(config_path, shard=shard)
    run = OneRun(ok=state.is_completed(), message=state.message or "", state=state.type.value,
                 flow_run_id=str(state.state_details.flow_run_id))
    if report is not None:
        run.cycle, run.deliveries, run.problems = report.cycle, report.deliveries, report.problems
    return run


def _without_prefect(config_path: Path, shard: str | None, reason: str) -> OneRun:
    from alerting.standalone import cycle_and_deliver

    config = load_config(config_path)
    cycle, deliveries = cycle_and_deliver(config, shard=shard)
    return OneRun(ok=cycle.ok, message=cycle.message, cycle=cycle, deliveries=deliveries,
                  problems=[str(p) for p in config.problems], not_recorded=reason)
