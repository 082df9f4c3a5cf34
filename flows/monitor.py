"""The ``service-monitor`` flow: check every monitor, end Failed when any service is down.

Checks run in batched tasks (one task run per up to ``BATCH_SIZE`` monitors, checks concurrent
inside it), because each task run costs the Prefect server ~17 ms and ~20 KB. A batch task keeps the
tutorial's contract: it returns ``Failed(message=...)`` naming the services down. The flow is async,
so it does not wait ~1 s for the heartbeat thread at its end. The flow-level ``on_failure`` hook
sends one DOWN alert per down service to that service's channels.
"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging.loggers import flow_run_logger
from prefect.states import Completed, Failed

from alerting.check import build_session, check
from alerting.config import Config, ConfigError, load_config
from alerting.delivery import DeliveryResult, deliver
from alerting.models import CheckResult, MonitorSpec
from alerting.render import cycle_message, render_down
from blocks.loader import with_block_monitors
from flows.registry import OUTCOMES

FLOW_NAME = "service-monitor"
BATCH_SIZE = 500


@dataclass
class CycleOutcome:
    """What one flow run found and sent; kept in-process for the hook and the CLI."""

    config_path: str
    results: list[CheckResult] = field(default_factory=list)
    specs: dict[str, MonitorSpec] = field(default_factory=dict)
    config: Config | None = None
    problems: list[str] = field(default_factory=list)
    drill: bool = False
    run_url: str | None = None
    deliveries: list[DeliveryResult] = field(default_factory=list)
    message: str = ""




class BatchResults(list):
    """A batch's check results; a short repr keeps Prefect's state logs readable at any size."""

    def __repr__(self) -> str:
        down = sum(1 for r in self if not r.ok)
        return f"<{len(self)} check results, {down} down>"


@contextmanager
def simulated_outage(spec: MonitorSpec, status: int):
    """The tutorial's simulation as a feature: ``responses`` answers this target with ``status``;
    every other request (other targets, alert channels) passes through to the network."""
    import responses

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(spec.method, spec.url, status=status, body=f"simulated HTTP {status} (alerting drill)")
        mock.add_passthru(re.compile(r".*"))
        yield


@task(name="check-services", cache_policy=NO_CACHE, log_prints=False)
def check_services(specs: list[MonitorSpec], concurrency: int = 32):
    """Check a batch of monitors concurrently; ``Failed(message=...)`` when any is down."""
    session = build_session(min(concurrency, len(specs)) or 1)
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(specs))), thread_name_prefix="check") as pool:
            results = BatchResults(pool.map(lambda spec: check(spec, session), specs))
    finally:
        session.close()
    down = [r for r in results if not r.ok]
    if down:
        listed = ", ".join(f"{r.monitor} ({r.summary()})" for r in down)
        return Failed(message=f"{len(down)} of {len(results)} down: {listed}", data=results)
    return results


def _run_url(flow_run_id) -> str | None:
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL
    from prefect.utilities.urls import url_for

    if not PREFECT_API_URL.value():
        return None  # an ephemeral server: its UI is gone when the run ends
    try:
        return url_for("flow-run", obj_id=flow_run_id, default_base_url=PREFECT_UI_URL.value())
    except Exception:  # noqa: BLE001
        return None


def plan_down_alerts(outcome: CycleOutcome) -> dict:
    """channel name -> (channel, [DOWN messages]) for every down service."""
    plan: dict = {}
    config = outcome.config
    for result in outcome.results:
        if result.ok:
            continue
        spec = outcome.specs[result.monitor]
        message = render_down(result, spec, run_url=outcome.run_url, drill=outcome.drill)
        for name in spec.channels:
            channel = config.channels.get(name) if config else None
            if channel is None:
                continue
            plan.setdefault(name, (channel, []))[1].append(message)
    return plan


def send_down_alerts(flow, flow_run, state) -> None:
    """Flow-level on_failure hook: one DOWN alert per down service, channels in parallel."""
    logger = flow_run_logger(flow_run, flow)
    outcome = OUTCOMES.get(str(flow_run.id))
    if outcome is None:
        logger.error("No check results in this process for flow run %s; no alerts sent", flow_run.id)
        return
    plan = plan_down_alerts(outcome)
    silent = [r.monitor for r in outcome.results if not r.ok and not outcome.specs[r.monitor].channels]
    for name in silent:
        logger.warning("%s is down but has no channels configured: nobody is alerted", name)
    outcome.deliveries = deliver(plan)
    for d in outcome.deliveries:
        if d.ok:
            logger.info("Sent %r to channel %s (%s)", d.title, d.channel, d.target)
        else:
            logger.error("Could not send %r to channel %s (%s): %s", d.title, d.channel, d.target, d.error)


@flow(name=FLOW_NAME, on_failure=[send_down_alerts], log_prints=False, validate_parameters=True)
async def service_monitor(
    config_path: str = "monitors.yaml",
    drill_monitor: str | None = None,
    drill_status: int = 503,
    use_monitor_blocks: bool = True,
    monitor_block_tag: str | None = None,
):
    """Check every monitor in the config; Failed (naming the services down) or Completed.

    Service Monitor blocks (all, or only those tagged ``monitor_block_tag``) run with the YAML
    monitors unless ``use_monitor_blocks`` is false; see blocks/loader.py for the rules."""
    from prefect.runtime import flow_run

    logger = get_run_logger()
    run_id = str(flow_run.id)
    outcome = CycleOutcome(config_path=config_path, drill=drill_monitor is not None)
    OUTCOMES[run_id] = outcome
    outcome.run_url = _run_url(flow_run.id)
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        for problem in exc.problems:
            logger.error("%s", problem)
        outcome.message = f"config unusable: {exc.problems[0]}" + (
            f" (+{len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
        )
        return Failed(message=outcome.message)
    config = await with_block_monitors(config, use_monitor_blocks, monitor_block_tag)  # blocks/loader.py
    outcome.config = config
    outcome.problems = [str(p) for p in config.problems]
    for problem in config.problems:
        logger.error("%s", problem)
    specs = config.monitors
    guard = nullcontext()
    if drill_monitor is not None:
        spec = next((s for s in specs if s.name == drill_monitor), None)
        if spec is None:
            outcome.message = f"drill: no monitor named {drill_monitor!r} in {config_path}"
            return Failed(message=outcome.message)
        specs = [spec]
        guard = simulated_outage(spec, drill_status)
        logger.warning("FIRE DRILL: %s answered with a simulated HTTP %s", spec.name, drill_status)
    outcome.specs = {s.name: s for s in specs}
    batches = [specs[i : i + BATCH_SIZE] for i in range(0, len(specs), BATCH_SIZE)]
    with guard:
        futures = [check_services.submit(batch, config.concurrency) for batch in batches]
        batch_data = await asyncio.to_thread(lambda: [f.result(raise_on_failure=False) for f in futures])
    for data in batch_data:
        if isinstance(data, list):
            outcome.results.extend(data)
        else:
            logger.error("A check batch crashed: %s", data)
    for r in outcome.results:
        if not r.ok:
            logger.error("DOWN %s: %s (%s attempts)", r.monitor, r.message, r.attempts)
    all_good, outcome.message = cycle_message(
        outcome.results, [p.split(": ", 1)[1] for p in outcome.problems], config_path
    )
    await _publish_table(outcome)
    if drill_monitor is not None:
        outcome.message = f"[DRILL] {outcome.message}"
    if all_good and len(outcome.results) == len(specs):
        return Completed(message=outcome.message)
    return Failed(message=outcome.message)


async def _publish_table(outcome: CycleOutcome) -> None:
    rows = [
        {
            "service": r.monitor,
            "status": "UP" if r.ok else "DOWN",
            "http": r.status_code if r.status_code is not None else "",
            "latency_ms": r.latency_ms if r.latency_ms is not None else "",
            "attempts": r.attempts,
            "error": r.message if not r.ok else "",
            "checked_at": r.checked_at.isoformat(timespec="seconds"),
        }
        for r in outcome.results
    ]
    try:
        await acreate_table_artifact(
            table=rows, key="service-status", description=f"**{outcome.message}**"
        )
    except Exception as exc:  # noqa: BLE001 - the UI table is a nicety, never a reason to fail
        get_run_logger().warning("Could not publish the status table: %s", exc)


def run_once(config_path: str | Path, drill_monitor: str | None = None, drill_status: int = 503):
    """Run the flow in this process; return (final state, outcome)."""
    state = asyncio.run(
        service_monitor(
            config_path=str(config_path), drill_monitor=drill_monitor, drill_status=drill_status, return_state=True
        )
    )
    run_id = str(state.state_details.flow_run_id)
    return state, OUTCOMES.pop(run_id, None)
