"""The ``service-monitor`` flow: one cycle (alerting/cycle.py), its alerts delivered, Failed when any service is down.

How an alert travels: the checks run in one ``check-services`` task run (it returns
``Failed(message=...)`` naming the services down, like the tutorial's task); the policy's decisions
are committed with the check history and the alert rows (the outbox) in one transaction; then the
flow itself delivers the outbox (alerting/outbox.py) before it ends. The ``on_failure`` and
``on_completion`` hooks only say "deliver what is pending" again, from the config path in the run's
parameters: nothing is shared in memory between the flow and its hooks, and everything after the
checks also runs without the Prefect API (flows/serving.py's degraded mode calls the same code).

Blocking work (config loading, checks, the store, delivery) runs in threads, so the event loop and
Prefect's heartbeat keep going during a slow cycle.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.logging.loggers import flow_run_logger
from prefect.states import Completed, Failed
from prefect.utilities.annotations import quote

from alerting.check_pool import OnResult, check_all
from alerting.config import Config, ConfigError, load_config
from alerting.continuous import ContinuousMonitor, running_for
from alerting.cycle import CycleReport, open_store, run_cycle
from alerting.deliverer import Deliverer, log_deliveries
from alerting.delivery import DeliveryResult
from alerting.models import CheckResult, MonitorSpec
from alerting.outbox import deliver_pending
from alerting.redact import install_log_redaction
from alerting.status_page.build import build_after_cycle
from blocks.loader import with_block_monitors
from flows import run_reports
from flows.automations import announce_late, announce_run
from flows.quiet_logs import quiet_prefect_tracebacks
from flows.status_artifact import publish_status_table, status_table

FLOW_NAME = "service-monitor"
log = logging.getLogger(__name__)


@dataclass
class RunReport:
    """What one flow run did, for the process that called it (``alerting run``); never read by hooks."""

    cycle: CycleReport = field(default_factory=CycleReport)
    deliveries: list[DeliveryResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    message: str = ""


class BatchResults(list):
    """A batch's check results; a short repr keeps Prefect's state logs readable at any size."""

    def __repr__(self) -> str:
        down = sum(1 for r in self if not r.ok)
        return f"<{len(self)} check results, {down} down>"


@task(name="check-services", cache_policy=NO_CACHE, log_prints=False)
def check_services(specs: list[MonitorSpec], concurrency: int = 32, per_host: int = 8,
                   on_result: OnResult | None = None, slots: dict[str, float] | None = None):
    """Check monitors concurrently (at most ``per_host`` attempts at once per host; none before its
    slot), handing each result to ``on_result`` the moment it is known; ``Failed(message=...)``
    naming the services down, with every result as its data."""
    results = BatchResults(check_all(specs, concurrency, per_host, on_result=on_result, slots=slots))
    down = [r for r in results if not r.ok]
    if down:
        listed = ", ".join(f"{r.monitor} ({r.summary()})" for r in down)
        return Failed(message=f"{len(down)} of {len(results)} down: {listed}", data=results)
    return results


def _task_checker(config: Config):
    """Run the checks as the ``check-services`` task run (called from a worker thread)."""

    def checker(specs: list[MonitorSpec], on_result: OnResult, slots: dict[str, float]) -> list[CheckResult]:
        if not specs:
            return []
        # quote(): Prefect would otherwise walk every field of every spec looking for futures
        state = check_services(quote(specs), config.concurrency, config.per_host_concurrency,
                               quote(on_result), quote(slots), return_state=True)
        data = state.result(raise_on_failure=False, _sync=True)  # type: ignore[call-overload]  # sync: a worker thread
        if not isinstance(data, list):
            raise RuntimeError(f"check task ended {state.type.value}")
        return data

    return checker


def _location_checker(config: Config, default_interval: float):
    """A config with ``locations:`` is checked by the task workers of its locations, as in the served
    monitor (flows/dispatch.py), with the same quorum; what no location answers for (no live worker)
    is checked here, as run_cycle does with any monitor a checker leaves out, and the log says so."""

    def checker(specs: list[MonitorSpec], on_result: OnResult, slots: dict[str, float]) -> list[CheckResult]:
        from flows.dispatch import LocationPool

        pool = LocationPool(lambda: config, on_lost=lambda name: None, default_interval=default_interval)
        try:
            lost = pool.check_once(specs, on_result)
        finally:
            pool.close()
        if lost:
            log.warning("No location answered for %d of %d monitor(s) (%s); checking them from this machine",
                        len(lost), len(specs), ", ".join(lost[:5]) + (", ..." if len(lost) > 5 else ""))
        return []  # every answer went to on_result

    return checker


def _scheduled_at(cycle_seconds: float | None) -> datetime | None:
    """When this run was scheduled, for a run made by the deployment's schedule (its checks are
    timed from it: alerting.schedule.slots_in_window); None for any other run (due monitors at once)."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    run = context.flow_run if context is not None else None
    if not cycle_seconds or run is None or not run.auto_scheduled or run.expected_start_time is None:
        return None
    return run.expected_start_time


def _run_url(flow_run_id) -> str | None:
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL
    from prefect.utilities.urls import url_for

    if not PREFECT_API_URL.value():
        return None  # an ephemeral server: its UI is gone when the run ends
    try:
        return url_for("flow-run", obj_id=flow_run_id, default_base_url=PREFECT_UI_URL.value())
    except Exception:  # noqa: BLE001
        return None


def _cycle(config: Config, monitors: list[MonitorSpec], shard: str | None, cycle_seconds: float | None,
           scheduled_at: datetime | None, run_url: str | None, logger,
           ) -> tuple[CycleReport, list[DeliveryResult], list[dict]]:
    """Everything blocking of one run, in a worker thread, with one store."""
    try:
        store = open_store(config)
    except Exception as exc:  # noqa: BLE001 - checks still run; the final state names the store error
        logger.error("State store unusable: %s", exc)
        store = None
    deliverer = Deliverer(store, lambda: config) if store is not None else None
    default_interval = cycle_seconds or MonitorSpec.model_fields["interval"].default
    checker = _location_checker(config, default_interval) if config.locations else _task_checker(config)
    try:
        try:
            report = run_cycle(config, store, monitors=monitors, shard=shard, cycle_seconds=cycle_seconds,
                               scheduled_at=scheduled_at, run_url=run_url, checker=checker,
                               on_queued=deliverer.wake if deliverer is not None else None)
        finally:  # alerts went out while the cycle ran; a last pass for what the end of it queued
            deliveries = deliverer.close() if deliverer is not None else []
        table: list[dict] = []
        if store is not None and report.store_error is None:
            build_after_cycle(config, store, logger)  # the status_page: section's site; logs, never raises
            try:
                table = status_table(config, report, store)
            except Exception as exc:  # noqa: BLE001
                logger.warning("Could not build the status table: %s", exc)
        return report, deliveries, table
    finally:
        if store is not None:
            store.close()


def _continuous_window(live: ContinuousMonitor, config: Config, cycle_seconds: float | None,
                       logger) -> tuple[CycleReport, list[DeliveryResult], list[dict]]:
    """The continuous monitor's checks since the previous run (the first run waits for one round)."""
    if not live.wait_first_round(timeout=min(max(cycle_seconds or 30.0, 10.0), 120.0)):
        logger.warning("Not every monitor has been checked yet since the start; reporting on those that were")
    window = live.take_report()
    table: list[dict] = []
    if live.store is not None and window.report.store_error is None:
        build_after_cycle(config, live.store, logger)  # the status_page: section's site; logs, never raises
        try:
            table = status_table(config, window.report, live.store)
        except Exception as exc:  # noqa: BLE001
            logger.warning("Could not build the status table: %s", exc)
    return window.report, window.deliveries, table


async def deliver_pending_alerts(flow, flow_run, state) -> None:
    """``on_failure`` / ``on_completion`` hook: deliver whatever the outbox still holds (an earlier
    run's leftovers, or rows this run could not send). Reads only the run's parameters; never raises."""
    logger = flow_run_logger(flow_run, flow)
    config_path = (flow_run.parameters or {}).get("config_path")
    if not config_path:
        return
    if running_for(config_path) is not None:
        return  # `alerting serve`: this process's deliverer drains the outbox the moment rows are queued
    try:
        config = await asyncio.to_thread(load_config, config_path)
        if not await asyncio.to_thread(_anything_pending, config):
            return  # the usual case: the run delivered its own alerts; no block lookup, no second pass
        params = flow_run.parameters or {}
        config = await with_block_monitors(config, params.get("use_monitor_blocks", True),
                                           params.get("monitor_block_tag"))
        deliveries = await asyncio.to_thread(_deliver_with_store, config)
    except Exception as exc:  # noqa: BLE001 - the outbox keeps every undelivered alert
        logger.error("Alert delivery failed (%s); undelivered alerts stay in the outbox for the next run",
                     type(exc).__name__)
        return
    log_deliveries(logger, deliveries)


def _anything_pending(config: Config) -> bool:
    with open_store(config) as store:
        return bool(store.live_outbox())


def _deliver_with_store(config: Config) -> list[DeliveryResult]:
    with open_store(config) as store:
        return deliver_pending(store, config)


@flow(
    name=FLOW_NAME,
    on_failure=[deliver_pending_alerts],
    on_completion=[deliver_pending_alerts],
    log_prints=False,
    validate_parameters=True,
)
async def service_monitor(
    config_path: str = "monitors.yaml",
    cycle_seconds: float | None = None,
    shard: str | None = None,
    use_monitor_blocks: bool = True,
    monitor_block_tag: str | None = None,
):
    """Check the monitors in the config that are due; Failed (naming the services down) or Completed.

    Service Monitor blocks (all, or only those tagged ``monitor_block_tag``) run with the YAML
    monitors unless ``use_monitor_blocks`` is false; see blocks/loader.py for the rules."""
    from prefect.runtime import deployment, flow_run

    install_log_redaction()  # a served run's own process too (Prefect's runner starts one per run)
    logger = get_run_logger()
    quiet_prefect_tracebacks()
    try:
        config = await asyncio.to_thread(load_config, config_path)
    except ConfigError as exc:
        for problem in exc.problems:
            logger.error("%s", problem)
        message = f"config unusable: {exc.problems[0]}" + (
            f" (+{len(exc.problems) - 1} more)" if len(exc.problems) > 1 else "")
        run_reports.report(RunReport(problems=[str(p) for p in exc.problems], message=message))
        announce_run(False, message)
        return Failed(message=message)
    config = await with_block_monitors(config, use_monitor_blocks, monitor_block_tag)  # blocks/loader.py
    for problem in config.problems:
        logger.error("%s", problem)
    # the server's automations alert some channels for this deployment's runs: docs/automations.md
    monitors = await asyncio.to_thread(_hook_specs, config, config.monitors)
    announce_late(config.automations)
    live = running_for(config_path)
    if live is not None:  # `alerting serve`: this process checks continuously; report on it
        live.use_config(config, skip_channels=await asyncio.to_thread(
            server_alerted_channels, config, f"{FLOW_NAME}/{deployment.name}" if deployment.name else None))
        report, deliveries, table = await asyncio.to_thread(_continuous_window, live, config, cycle_seconds, logger)
    else:
        report, deliveries, table = await asyncio.to_thread(
            _cycle, config, monitors, shard, cycle_seconds, _scheduled_at(cycle_seconds), _run_url(flow_run.id), logger)
    for r in report.results:
        if r.error is not None and r.error.value == "check_error":
            logger.error("CHECK ERROR %s: %s (the toolkit failed, not necessarily the service)", r.monitor, r.message)
        elif not r.ok:
            logger.error("DOWN %s: %s (%s attempts)", r.monitor, r.message, r.attempts)
    for ev in report.events:
        logger.info("%s alert for %s queued", ev.kind.value, ev.monitor)
        if not config.monitor(ev.monitor).channels:
            logger.warning("%s: %s but no channels are configured: nobody is alerted", ev.monitor, ev.kind.value)
    log_deliveries(logger, deliveries)
    run_reports.report(RunReport(report, deliveries, [str(p) for p in config.problems], report.message))
    await publish_status_table(table, len(config.monitors), report.message, logger)
    announce_run(report.ok, report.message)  # the server's automations listen (docs/automations.md)
    return Completed(message=report.message) if report.ok else Failed(message=report.message)


def _hook_specs(config: Config, specs: list[MonitorSpec]) -> list[MonitorSpec]:
    """``specs`` without the channels that automations (``automations.mode``) alert for this run."""
    from prefect.runtime import deployment

    skip = server_alerted_channels(config, f"{FLOW_NAME}/{deployment.name}" if deployment.name else None)
    if not skip:
        return specs
    return [s.model_copy(update={"channels": [c for c in s.channels if c not in skip]}) for s in specs]


def server_alerted_channels(config: Config, watched: str | None) -> set[str]:
    """The channels the server's automations alert for runs of ``watched`` (flow/deployment) once
    they are applied; the flow (and the continuous monitor) leaves them alone. Reads the API."""
    from alerting.server_alerts import skipped_channels

    if watched is None or config.automations is None or not config.automations.server_alerts_runs:
        return set()
    from flows.automations_api import covers_runs

    return skipped_channels(config, watched) if covers_runs(watched) else set()  # not applied: hooks alert all


def run_once(config_path: str | Path, shard: str | None = None):
    """Run the flow in this process; return (final state, RunReport or None)."""
    with run_reports.collecting() as reports:
        state: Any = asyncio.run(service_monitor(config_path=str(config_path), shard=shard, return_state=True))  # type: ignore[arg-type]
    return state, (reports[0] if reports else None)
