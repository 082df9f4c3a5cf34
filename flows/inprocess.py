"""Serve the monitor flow's deployment with its runs executed inside this process.

Prefect's ``flow.serve`` starts a new Python process for every flow run: robust (a crashing run
cannot take the runner down; cancellation works), but each start costs ~2-3 s of CPU, which is most
of the cost of a 30 s cycle. This loop registers the same deployment (same schedule, same
parameters), claims its scheduled runs (Scheduled -> Pending, like Prefect's runner does, so two
servers never run one) and executes them here with Prefect's own flow engine. Runs, states, logs,
hooks and artifacts are the same; what it gives up is process isolation and remote cancellation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

log = logging.getLogger("alerting.serve")
UNSCHEDULED_AFTER = 1.5  # intervals without a scheduled run before this loop creates one itself


async def serve_in_process(flow, *, name: str, interval: float, parameters: dict, poll: float | None = None,
                           description: str = "", tags: list[str] | None = None,
                           on_registered: Callable[[Any], object] | None = None) -> None:
    """Blocks: registers the deployment, then runs each scheduled run when it is due."""
    from prefect.client.orchestration import get_client

    deployment = await flow.ato_deployment(
        name=name, interval=interval, parameters=parameters, description=description, tags=tags or []
    )
    deployment_id = await deployment.aapply()
    if on_registered is not None:
        on_registered(deployment_id)
    poll = poll or max(0.5, min(10.0, interval / 3))  # runs only report: a few seconds late is fine
    print(f"Serving deployment '{flow.name}/{name}' in this process; polling every {poll:g}s.", flush=True)
    failing_since: float | None = None
    loop = asyncio.get_running_loop()
    last_run = loop.time()
    async with get_client() as client:
        while True:
            try:
                if failing_since is not None:  # the server may have lost it (a new database)
                    deployment_id = await deployment.aapply()
                    log.warning("Prefect API reachable again; running scheduled flow runs")
                    failing_since = None
                if await _run_due(client, flow, deployment_id):
                    last_run = loop.time()
                elif loop.time() - last_run > UNSCHEDULED_AFTER * interval:
                    # the server has planned no run (Prefect 3.9.0 plans a new deployment's runs
                    # only on its scheduler's loop): one now, so the reports never stop
                    await client.create_flow_run_from_deployment(deployment_id, tags=["unscheduled"])
                    last_run = loop.time()
            except Exception as exc:  # noqa: BLE001 - the API is away: flows/serving.py checks meanwhile
                if failing_since is None:
                    failing_since = asyncio.get_running_loop().time()
                    log.error("Prefect API unusable (%s); flow runs wait for it, the serve guard keeps checking",
                              type(exc).__name__)
            await asyncio.sleep(poll)


async def _run_due(client, flow, deployment_id) -> bool:
    """Claim and run the newest of the deployment's scheduled runs that are due (older ones are
    skipped); True when there was one."""
    from prefect.flow_engine import run_flow_async
    from prefect.states import Cancelled, Pending
    from prefect.utilities.engine import propose_state

    now = datetime.now(timezone.utc)
    runs = await client.get_scheduled_flow_runs_for_deployments(
        deployment_ids=[deployment_id], scheduled_before=now + timedelta(seconds=0.5)
    )
    runs = sorted(runs, key=lambda r: r.next_scheduled_start_time or now)
    for stale in runs[:-1]:  # after an outage: one run catches up, the older ones are skipped
        try:
            await propose_state(client, Cancelled(message="skipped: a later run covers this slot"),
                                flow_run_id=stale.id)
        except Exception:  # noqa: BLE001
            pass
    for flow_run in runs[-1:]:
        try:
            state = await propose_state(client, Pending(), flow_run_id=flow_run.id)
        except Exception as exc:  # noqa: BLE001 - another runner took it, or it was cancelled
            log.info("Skipping flow run %s: %s", flow_run.id, exc)
            continue
        if not state.is_pending():
            continue
        flow_run = await client.read_flow_run(flow_run.id)
        await run_flow_async(flow, flow_run=flow_run, parameters=flow_run.parameters, return_type="state")
    return bool(runs)
