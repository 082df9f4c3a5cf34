"""The ``service-monitor`` flow: check every monitor, end Failed when any service is down.

Checks run in batched tasks (one task run per up to ``BATCH_SIZE`` monitors, checks concurrent
inside it, so a cycle is normally one task run), because each task run costs the Prefect server ~17 ms and ~20 KB. A batch task keeps the
tutorial's contract: it returns ``Failed(message=...)`` naming the services down. The flow is async,
so it does not wait ~1 s for the heartbeat thread at its end.

The alert lifecycle (alerting/lifecycle.py): after the checks, the policy runs over the stored state
and the new states, the check history and the alerts to send are committed in one transaction
(the outbox). The hooks then deliver the outbox: ``on_failure`` (the run is Failed while any check
fails: DOWN and REMINDER alerts, and any RESOLVED of another service) and ``on_completion`` (all
checks pass: RESOLVED alerts). Both also deliver whatever an earlier run left undelivered. A hook
error is logged; the outbox keeps the alert for the next run. A fire drill bypasses the lifecycle
and sends ``[DRILL] DOWN`` directly.
"""

from __future__ import annotations

import asyncio
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging.loggers import flow_run_logger
from prefect.states import Completed, Failed
from prefect.utilities.annotations import quote

from alerting.check import build_session, check
from alerting.config import Config, ConfigError, load_config
from alerting.delivery import DeliveryResult, deliver
from alerting.models import CheckResult, MonitorSpec, utcnow
from alerting.render import cycle_message, render_down
from alerting.schedule import due_monitors, host_of, in_shard, interleave_by_host, parse_shard
from flows.automations import announce_late, announce_run
# A module reference, not its dict: a served run cloudpickles this module's functions by value,
# which would give the flow and its hook two separate copies of a dict imported by name.
import flows.registry as registry
from blocks.loader import with_block_monitors

FLOW_NAME = "service-monitor"
BATCH_SIZE = 10_000  # monitors per check task run; one task keeps `concurrency` a global bound
ARTIFACT_ROWS = 100  # rows of the status table artifact (see artifact_rows)


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
    states: dict = field(default_factory=dict)  # monitor -> policy MonitorState after this run
    events: list = field(default_factory=list)  # policy AlertEvents decided in this run
    store_error: str | None = None  # the state store could not be used: alerts sent the spine's way




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
def check_services(specs: list[MonitorSpec], concurrency: int = 32, per_host: int = 8):
    """Check a batch of monitors concurrently, at most ``per_host`` at once against one host;
    ``Failed(message=...)`` when any is down."""
    workers = max(1, min(concurrency, len(specs)))
    session = build_session(min(workers, per_host))
    hosts = {spec.name: host_of(spec) for spec in specs}
    limits = {host: threading.BoundedSemaphore(per_host) for host in set(hosts.values())}

    def bounded(spec: MonitorSpec) -> CheckResult:
        with limits[hosts[spec.name]]:
            return check(spec, session)

    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="check") as pool:
            results = BatchResults(pool.map(bounded, interleave_by_host(specs, hosts)))
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


def _log_deliveries(logger, deliveries: list[DeliveryResult]) -> None:
    for d in deliveries:
        if d.ok:
            logger.info("Sent %r to channel %s (%s)", d.title, d.channel, d.target)
        else:
            logger.error("Could not send %r to channel %s (%s): %s; it stays in the outbox",
                         d.title, d.channel, d.target, d.error)


def _deliver_outbox(flow, flow_run, final_state: str) -> None:
    """Deliver the outbox for this run (and anything earlier runs left). Never raises."""
    logger = flow_run_logger(flow_run, flow)
    outcome = registry.OUTCOMES.get(str(flow_run.id))
    if outcome is None:
        logger.error("No check results in this process for flow run %s; the outbox is delivered next run", flow_run.id)
        return
    deliver_outcome(outcome, final_state, logger)


def deliver_outcome(outcome: CycleOutcome, final_state: str, logger) -> None:
    """The hooks' work, given the run's outcome and a logger. Never raises."""
    if outcome.config is None:
        return
    if outcome.drill or outcome.store_error:
        if final_state == "failed":  # the spine's path: one DOWN per failing check, no state
            silent = [r.monitor for r in outcome.results if not r.ok and not outcome.specs[r.monitor].channels]
            for name in silent:
                logger.warning("%s is down but has no channels configured: nobody is alerted", name)
            outcome.deliveries = deliver(plan_down_alerts(outcome))
            _log_deliveries(logger, outcome.deliveries)
        return
    from alerting.lifecycle import deliver_pending, open_store

    for ev in outcome.events:
        if not outcome.specs[ev.monitor].channels:
            logger.warning("%s: %s but no channels are configured: nobody is alerted", ev.monitor, ev.kind.value)
    store = None
    try:
        store = open_store(outcome.config)
        outcome.deliveries = deliver_pending(store, outcome.config, utcnow())
    except Exception as exc:  # noqa: BLE001 - the outbox keeps every undelivered alert
        logger.error("Alert delivery failed (%s: %s); undelivered alerts stay in the outbox for the next run",
                     type(exc).__name__, exc)
    finally:
        if store is not None:
            store.close()
    _log_deliveries(logger, outcome.deliveries)


def send_down_alerts(flow, flow_run, state) -> None:
    """Flow-level on_failure hook: deliver DOWN and REMINDER alerts (and any other pending ones)."""
    _deliver_outbox(flow, flow_run, "failed")


def send_resolved_alerts(flow, flow_run, state) -> None:
    """Flow-level on_completion hook: every check passed; deliver RESOLVED (and any pending) alerts."""
    _deliver_outbox(flow, flow_run, "completed")


@flow(
    name=FLOW_NAME,
    on_failure=[send_down_alerts],
    on_completion=[send_resolved_alerts],
    log_prints=False,
    validate_parameters=True,
)
async def service_monitor(
    config_path: str = "monitors.yaml",
    drill_monitor: str | None = None,
    drill_status: int = 503,
    cycle_seconds: float | None = None,
    shard: str | None = None,
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
    registry.remember(run_id, outcome)
    outcome.run_url = _run_url(flow_run.id)
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        for problem in exc.problems:
            logger.error("%s", problem)
        outcome.message = f"config unusable: {exc.problems[0]}" + (
            f" (+{len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
        )
        announce_run(False, outcome.message)
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
    else:  # the server's automations alert some channels for this deployment's runs: docs/automations.md
        specs = await asyncio.to_thread(_hook_specs, config, specs)
        announce_late(config.automations)
    if shard and drill_monitor is None:
        part = parse_shard(shard)
        specs = [s for s in specs if in_shard(s, part)]
        logger.info("Shard %s: %d of %d monitors", shard, len(specs), len(config.monitors))
    not_due, still_down = 0, []
    if cycle_seconds and drill_monitor is None:
        due, still_down = await asyncio.to_thread(_due_this_cycle, config, specs, cycle_seconds, logger)
        not_due, specs = len(specs) - len(due), due
    outcome.specs = {s.name: s for s in specs}
    batches = [specs[i : i + BATCH_SIZE] for i in range(0, len(specs), BATCH_SIZE)]
    with guard:
        # quote(): Prefect would otherwise walk every field of every spec looking for futures
        futures = [
            check_services.submit(quote(batch), config.concurrency, config.per_host_concurrency)
            for batch in batches
        ]
        batch_data = await asyncio.to_thread(lambda: [f.result(raise_on_failure=False) for f in futures])
    for data in batch_data:
        if isinstance(data, list):
            outcome.results.extend(data)
        else:
            logger.error("A check batch crashed: %s", data)
    for r in outcome.results:
        if not r.ok:
            logger.error("DOWN %s: %s (%s attempts)", r.monitor, r.message, r.attempts)
    if drill_monitor is None:
        await asyncio.to_thread(_record, outcome, logger)
    all_good, outcome.message = cycle_message(
        outcome.results, [p.split(": ", 1)[1] for p in outcome.problems], config_path,
        notes=_confirmation_notes(outcome), not_due=not_due, still_down=still_down,
    )
    await _publish_table(outcome)
    if drill_monitor is not None:
        outcome.message = f"[DRILL] {outcome.message}"
    ok = all_good and len(outcome.results) == len(specs)
    if drill_monitor is None:
        announce_run(ok, outcome.message)  # the server's automations listen (docs/automations.md)
    return Completed(message=outcome.message) if ok else Failed(message=outcome.message)


def _hook_specs(config: Config, specs: list[MonitorSpec]) -> list[MonitorSpec]:
    """``specs`` without the channels that automations (``automations.mode``) alert for this run."""
    from prefect.runtime import deployment

    from alerting.automations_config import hook_specs

    watched = f"{FLOW_NAME}/{deployment.name}" if deployment.name else None
    if watched is None or config.automations is None or not config.automations.server_alerts_runs:
        return specs
    from flows.automations_api import covers_runs

    return hook_specs(config, specs, watched if covers_runs(watched) else None)  # not applied: hooks alert all


def _due_this_cycle(config: Config, specs: list[MonitorSpec], cycle_seconds: float, logger):
    """(monitors due now, names of monitors not due whose stored status is DOWN)."""
    from alerting.lifecycle import open_store

    try:
        store = open_store(config)
    except Exception as exc:  # noqa: BLE001 - without the store, check everything
        logger.warning("State store unusable (%s); checking every monitor this cycle", exc)
        return specs, []
    try:
        last, stored = store.last_checked(), store.states()
    finally:
        store.close()
    due = due_monitors(specs, last, utcnow(), cycle_seconds)
    due_names = {s.name for s in due}
    still_down = [
        s.name for s in specs
        if s.name not in due_names and s.name in stored and stored[s.name].status.value == "DOWN"
    ]
    return due, still_down


def _record(outcome: CycleOutcome, logger) -> None:
    """Policy + store: states, history and outbox rows in one transaction (see alerting/lifecycle.py)."""
    from alerting.lifecycle import open_store, record_cycle

    store = None
    try:
        store = open_store(outcome.config)
        record = record_cycle(store, outcome.config, outcome.specs, outcome.results, utcnow(), outcome.run_url)
        outcome.states, outcome.events = record.states, record.events
        for ev in record.events:
            logger.warning("%s alert for %s queued", ev.kind.value, ev.monitor)
    except Exception as exc:  # noqa: BLE001 - alert the spine's way rather than not at all
        outcome.store_error = f"{type(exc).__name__}: {exc}"
        logger.error("State store unusable (%s); alerting on every failing check without state", outcome.store_error)
    finally:
        if store is not None:
            store.close()


def _confirmation_notes(outcome: CycleOutcome) -> dict[str, str]:
    """For each failing check: whether it is a confirmed DOWN or still being confirmed."""
    notes = {}
    for r in outcome.results:
        state = outcome.states.get(r.monitor)
        if r.ok or state is None:
            continue
        spec = outcome.specs[r.monitor]
        if state.status.value == "DOWN":
            since = state.since.strftime("%H:%M:%S UTC") if state.since else "?"
            notes[r.monitor] = f"DOWN since {since}"
        else:
            notes[r.monitor] = f"unconfirmed, {state.consecutive_failures} of {spec.failure_threshold} failing runs"
    return notes


def _status_table(outcome: CycleOutcome) -> list[dict]:
    """The status table (alerting status) when the store is usable, else this run's results."""
    if outcome.config is not None and outcome.states and not outcome.drill:
        from alerting.lifecycle import open_store, status_rows

        names = None
        if len(outcome.config.monitors) > ARTIFACT_ROWS:  # uptime and latency only for what is shown
            failing = {r.monitor for r in outcome.results if not r.ok}
            names = [
                name for name, st in outcome.states.items()
                if name in failing or st.status.value != "UP" or st.flapping or st.silenced_until is not None
            ][:ARTIFACT_ROWS]
        store = open_store(outcome.config)
        try:
            rows = status_rows(store, outcome.config, utcnow(), names)
        finally:
            store.close()
        checked = {r.monitor: r for r in outcome.results}
        for row in rows:
            r = checked.get(row["monitor"])
            row["this_run"] = "" if r is None else ("ok" if r.ok else f"FAIL: {r.summary()}")
            row.update({k: ("" if v is None else v) for k, v in row.items()})
        return rows
    return [
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


def artifact_rows(rows: list[dict], limit: int = ARTIFACT_ROWS, total: int | None = None) -> tuple[list[dict], str]:
    """At most ``limit`` rows: every monitor when they fit, else the ones that are not plainly UP.

    A keyed artifact is stored twice per run (the artifact and its collection-updated event): a
    full table of 1,000 monitors costs ~660 KB a run, most of the Prefect database's growth.
    """
    total = max(total or 0, len(rows))
    if total <= limit:
        return rows, ""
    notable = [
        r for r in rows
        if r.get("status") != "UP" or str(r.get("this_run", "")).startswith("FAIL")
        or r.get("silenced_until") or r.get("maintenance") or r.get("flapping")
    ]
    shown = notable[:limit]
    note = (f"\n\nShowing {len(shown)} of {total} monitors (those not plainly UP); "
            "`alerting status` lists them all.")
    return shown, note


async def _publish_table(outcome: CycleOutcome) -> None:
    try:
        rows = await asyncio.to_thread(_status_table, outcome)
    except Exception as exc:  # noqa: BLE001
        get_run_logger().warning("Could not build the status table: %s", exc)
        return
    total = len(outcome.config.monitors) if outcome.config is not None else len(rows)
    rows, note = artifact_rows(rows, total=total)
    try:
        await acreate_table_artifact(
            table=rows, key="service-status", description=f"**{outcome.message}**{note}"
        )
    except Exception as exc:  # noqa: BLE001 - the UI table is a nicety, never a reason to fail
        get_run_logger().warning("Could not publish the status table: %s", exc)


def run_once(
    config_path: str | Path, drill_monitor: str | None = None, drill_status: int = 503, shard: str | None = None
):
    """Run the flow in this process; return (final state, outcome)."""
    state = asyncio.run(
        service_monitor(
            config_path=str(config_path), drill_monitor=drill_monitor, drill_status=drill_status, shard=shard,
            return_state=True,
        )
    )
    run_id = str(state.state_details.flow_run_id)
    return state, registry.OUTCOMES.pop(run_id, None)
