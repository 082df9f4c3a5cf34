"""Prefect automations for the served monitor: server-side alerts, and a watcher for the watcher.

``build`` says what the automations are (flows/automations_api.py puts them on the server);
``announce_run`` / ``announce_late`` emit the events they listen to from inside a run. What each one
does for a person: docs/automations.md.

Facts of Prefect 3.9's self-hosted server that shaped this (read in its source, checked by the tests):
``actions_on_resolve`` never runs there (nothing produces a Resolved state for an event trigger), so
each "back to normal" message is its own reactive automation with ``after`` = the bad event; a
proactive trigger without ``for_each`` re-opens its window on its own and so would repeat its alert
every window, while one keyed ``for_each`` on the deployment and started by ``after`` fires once per
silence.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID

from alerting.durations import format_duration
from alerting.server_alerts import AutomationsSpec

log = logging.getLogger(__name__)
TAG = "outage-alerting"
PREFIX = "alerting: "
RUN = "prefect.flow-run."
# Our own events, emitted by every run of a deployment (announce_run). Prefect's own state events of
# scheduler-created runs are held up to 15 min by the server's triggers service (their first event
# follows a Scheduled event the scheduler never emits), so the automations listen to these instead.
RUN_COMPLETED = "alerting.monitor.run.completed"
RUN_FAILED = "alerting.monitor.run.failed"
RUN_LATE = "alerting.monitor.run.late"  # a run started more than automations.late_after after its schedule
FAILED = {RUN_FAILED}
COMPLETED = {RUN_COMPLETED}
FINISHED = {RUN_COMPLETED, RUN_FAILED}
PER_DEPLOYMENT = {"related:deployment:prefect.resource.id"}
EPISODE = timedelta(days=30)  # how long an "after" event waits for its "expect" (e.g. an outage's end)
RUN_LINK = "{% set link = flow_run|ui_url %}{% if link %}\nFlow run: {{ link }}{% endif %}"


class AutomationsError(Exception):
    """Bad input or an unusable Prefect API: one clear line, no secrets (exit status 2)."""


@dataclass(frozen=True)
class Target:
    """What the automations point at, as found on the server."""

    deployment: str  # <flow>/<deployment>
    deployment_id: UUID
    interval: float  # seconds between runs
    interval_source: str
    block_id: UUID
    ui_url: str

    @property
    def deployment_url(self) -> str:
        return f"{self.ui_url}/deployments/deployment/{self.deployment_id}"


@dataclass
class Report:
    target: Target | None = None
    changes: list[tuple[str, str]] = field(default_factory=list)  # (automation name, created/updated/...)


def automation_name(deployment: str, key: str) -> str:
    return f"{PREFIX}{deployment}: {key}"


def build(spec: AutomationsSpec, target: Target, watcher_id: UUID | None = None) -> list:
    """The automations ``spec`` asks for, as ``AutomationCore`` values (``running-again`` only when
    the watcher's id is known, since it starts after the watcher's own ``triggered`` event)."""
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    dep = target.deployment
    deployment_runs = {"prefect.resource.role": "deployment", "prefect.resource.id": f"prefect.deployment.{target.deployment_id}"}
    window = spec.stale_seconds(target.interval)

    def automation(key: str, description: str, trigger, subject: str, body: str):
        action = SendNotification(block_document_id=target.block_id, subject=subject, body=body)
        return AutomationCore(
            name=automation_name(dep, key), description=description, enabled=True, tags=[TAG],
            trigger=trigger, actions=[action], actions_on_trigger=[], actions_on_resolve=[],
        )

    def reactive(after: set[str], expect: set[str]):
        return EventTrigger(
            match={"prefect.resource.id": RUN + "*"}, match_related=deployment_runs, after=after, expect=expect,
            for_each=PER_DEPLOYMENT, posture=Posture.Reactive, threshold=1, within=EPISODE,
        )

    out = []
    if spec.server_alerts_runs:
        out.append(automation(
            "run failed",
            "A run of the monitor ended Failed (the first failing run after a Completed one).",
            reactive(COMPLETED, FAILED),
            f"DOWN: {dep} run {{{{ flow_run.name }}}} Failed",
            "{{ event.payload.message }}\n\n"
            f"Deployment: {dep}\nRun: {{{{ flow_run.name }}}} ended Failed" + RUN_LINK
            + "\n\nSent by the Prefect server; a RESOLVED follows when a run completes again.",
        ))
        out.append(automation(
            "run completed again",
            "A run of the monitor Completed after a Failed one.",
            reactive(FAILED, COMPLETED),
            f"RESOLVED: {dep} runs complete again",
            "{{ event.payload.message }}\n\n"
            f"Deployment: {dep}\nRun: {{{{ flow_run.name }}}} Completed" + RUN_LINK,
        ))
    out.append(automation(
        "monitor not running",
        f"No run of the monitor finished (Completed or Failed) within {format_duration(window)}.",
        EventTrigger(
            match={"prefect.resource.id": RUN + "*"}, match_related=deployment_runs, after=FINISHED, expect=FINISHED,
            for_each=PER_DEPLOYMENT, posture=Posture.Proactive, threshold=1, within=timedelta(seconds=window),
        ),
        f"DOWN: monitor is not running ({dep})",
        f"No run of {dep} has finished for {format_duration(window)}; it should run every "
        f"{format_duration(target.interval)}. The monitor process may be dead, hung, or unable to reach "
        "the Prefect server, so nobody is alerted about your services until it runs again.\n\n"
        "Last finished run: {{ flow_run.name }} ({{ event.payload.state }}, {{ event.occurred }})\n"
        f"Deployment: {target.deployment_url}",
    ))
    if watcher_id is not None:
        out.append(automation(
            "monitor running again",
            "A run of the monitor finished after the 'monitor not running' alert.",
            EventTrigger(
                match={"prefect.resource.id": [f"prefect.automation.{watcher_id}", RUN + "*"]},
                match_related={"prefect.resource.id": [f"prefect.deployment.{target.deployment_id}", "prefect.event.*"]},
                after={"prefect.automation.triggered"}, expect=FINISHED,
                posture=Posture.Reactive, threshold=1, within=EPISODE,
            ),
            f"RESOLVED: monitor is running again ({dep})",
            f"{dep} is running again: run {{{{ flow_run.name }}}} ended {{{{ event.payload.state }}}}.\n\n"
            "{{ event.payload.message }}" + RUN_LINK,
        ))
    out.append(automation(
        "run late",
        f"A run of the monitor started more than {format_duration(spec.late_after)} after its scheduled time "
        "(at most one alert per that long).",
        EventTrigger(
            match={"prefect.resource.id": RUN + "*"}, match_related=deployment_runs, expect={RUN_LATE},
            for_each=PER_DEPLOYMENT, posture=Posture.Reactive, threshold=1, within=timedelta(seconds=spec.late_after),
        ),
        f"LATE: {dep} run started {{{{ event.payload.late }}}} late",
        f"Run {{{{ flow_run.name }}}} of {dep} was scheduled for {{{{ event.payload.scheduled }}}} and started "
        f"{{{{ event.payload.late }}}} late (the bound is {format_duration(spec.late_after)}). The monitor is running "
        "behind: too many monitors per run, a slow Prefect server, or the process was stopped for a while."
        + RUN_LINK,
    ))
    return out


def _emit(event: str, payload: dict) -> bool:
    """Emit ``event`` for the current run of a deployment (resource: the run; related: the deployment).
    False for ad hoc runs (alerting run, drills): the automations do not watch them."""
    from prefect.events import emit_event
    from prefect.runtime import deployment, flow_run

    if not deployment.id:
        return False
    emit_event(
        event=event,
        resource={"prefect.resource.id": f"prefect.flow-run.{flow_run.id}", "prefect.resource.name": flow_run.name},
        related=[{"prefect.resource.id": f"prefect.deployment.{deployment.id}", "prefect.resource.role": "deployment",
                  "prefect.resource.name": deployment.name}],
        payload=payload,
    )
    return True


def announce_run(ok: bool, message: str) -> None:
    """As a deployment run ends: emit the event the automations listen to. Never raises."""
    try:
        _emit(RUN_COMPLETED if ok else RUN_FAILED, {"state": "Completed" if ok else "Failed", "message": message[:2000]})
    except Exception as exc:  # noqa: BLE001 - an alerting side channel must never fail the run
        log.warning("Could not emit the run event for automations: %s", exc)


def announce_late(spec: AutomationsSpec | None) -> None:
    """As a deployment run starts: emit RUN_LATE when it started more than ``late_after`` after its
    scheduled time (Prefect's own Late event is held like its other state events). Never raises."""
    from prefect.runtime import flow_run

    from alerting.models import utcnow

    try:
        scheduled = flow_run.scheduled_start_time
        if spec is None or scheduled is None:
            return
        late = (utcnow() - scheduled).total_seconds()
        if late > spec.late_after:
            _emit(RUN_LATE, {"late": format_duration(late), "scheduled": scheduled.strftime("%Y-%m-%d %H:%M:%S UTC")})
    except Exception as exc:  # noqa: BLE001
        log.warning("Could not emit the late-run event for automations: %s", exc)


def describe(automation) -> str:
    """One line for ``alerting automations list``: the trigger, no ids, no secrets."""
    trigger = automation.trigger
    describe_for_cli = getattr(trigger, "describe_for_cli", None)
    text = describe_for_cli() if describe_for_cli else type(trigger).__name__
    return " ".join(text.split())
