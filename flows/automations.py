"""Prefect automations for the served monitor: server-side alerts, and a watcher for the watcher.

``apply`` makes the server hold exactly the automations the config asks for (by name, so a second
apply changes nothing), ``list_ours`` and ``delete_ours`` touch only automations this toolkit made
(tag ``outage-alerting`` and the name prefix ``alerting: ``). What each one does: docs/automations.md.

Facts of Prefect 3.9's self-hosted server that shaped this (read in its source, checked by the tests):
``actions_on_resolve`` never runs there (nothing produces a Resolved state for an event trigger), so
each "back to normal" message is its own reactive automation with ``after`` = the bad event; a
proactive trigger without ``for_each`` re-opens its window on its own and so would repeat its alert
every window, while one keyed ``for_each`` on the deployment and started by ``after`` fires once per
silence.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID

from alerting.automations_config import AutomationsSpec
from alerting.durations import format_duration

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
            "A run of the monitor ended Failed or Crashed (first failing run after a Completed one).",
            reactive(COMPLETED, FAILED),
            f"DOWN: {dep} run {{{{ flow_run.name }}}} Failed",
            "{{ event.payload.message }}\n\n"
            f"Deployment: {dep}\nRun: {{{{ flow_run.name }}}} ended Failed" + RUN_LINK
            + "\n\nSent by the Prefect server; a RESOLVED follows when a run completes again.",
        ))
        out.append(automation(
            "run completed again",
            "A run of the monitor Completed after a Failed or Crashed one.",
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


def announce_run(ok: bool, message: str) -> None:
    """In a run of a deployment: emit the event the automations listen to. Never raises."""
    import logging

    from prefect.events import emit_event
    from prefect.runtime import deployment, flow_run

    try:
        if not deployment.id:
            return  # ad hoc runs (alerting run, drills) are not watched
        name = f"{flow_run.flow_name}/{deployment.name}"
        emit_event(
            event=RUN_COMPLETED if ok else RUN_FAILED,
            resource={"prefect.resource.id": f"prefect.flow-run.{flow_run.id}", "prefect.resource.name": flow_run.name},
            related=[{"prefect.resource.id": f"prefect.deployment.{deployment.id}", "prefect.resource.role": "deployment",
                      "prefect.resource.name": deployment.name}],
            payload={"state": "Completed" if ok else "Failed", "message": message[:2000], "deployment": name},
        )
    except Exception as exc:  # noqa: BLE001 - an alerting side channel must never fail the run
        logging.getLogger(__name__).warning("Could not emit the run event for automations: %s", exc)


def announce_late(spec: AutomationsSpec | None) -> None:
    """At the start of a deployment run: emit RUN_LATE when it started more than ``late_after`` after its
    scheduled time (Prefect's own Late event is held like its other state events). Never raises."""
    import logging

    from prefect.events import emit_event
    from prefect.runtime import deployment, flow_run

    try:
        scheduled = flow_run.scheduled_start_time
        if spec is None or not deployment.id or scheduled is None:
            return
        from alerting.models import utcnow

        late = (utcnow() - scheduled).total_seconds()
        if late <= spec.late_after:
            return
        emit_event(
            event=RUN_LATE,
            resource={"prefect.resource.id": f"prefect.flow-run.{flow_run.id}", "prefect.resource.name": flow_run.name},
            related=[{"prefect.resource.id": f"prefect.deployment.{deployment.id}", "prefect.resource.role": "deployment",
                      "prefect.resource.name": deployment.name}],
            payload={"late": format_duration(late), "scheduled": scheduled.strftime("%Y-%m-%d %H:%M:%S UTC")},
        )
    except Exception as exc:  # noqa: BLE001
        logging.getLogger(__name__).warning("Could not emit the late-run event for automations: %s", exc)


# --- talking to the server ----------------------------------------------------------------------

def api_url() -> str:
    """The configured Prefect API, checked to answer; AutomationsError otherwise."""
    from prefect.settings import PREFECT_API_URL

    from flows.serve import api_healthy

    url = os.environ.get("PREFECT_API_URL") or PREFECT_API_URL.value()
    if not url:
        raise AutomationsError(
            "no Prefect API configured: set PREFECT_API_URL to the server that runs the monitor "
            "(automations live on a Prefect server, e.g. http://127.0.0.1:4200/api)"
        )
    if not api_healthy(url, timeout=3.0):
        raise AutomationsError(f"the Prefect API at {url} does not answer (PREFECT_API_URL); is the server running?")
    return url.rstrip("/")


def _client():
    from prefect.client.orchestration import get_client

    api_url()
    return get_client(sync_client=True)


def _call(what: str, fn, *args, **kwargs):
    """Run one client call; HTTP and connection errors become one clear AutomationsError."""
    import httpx
    from prefect.exceptions import PrefectHTTPStatusError

    try:
        return fn(*args, **kwargs)
    except PrefectHTTPStatusError as exc:
        detail = exc.response.text[:300]
        raise AutomationsError(f"{what}: the Prefect API answered HTTP {exc.response.status_code}: {detail}") from None
    except httpx.HTTPError as exc:
        raise AutomationsError(f"{what}: cannot reach the Prefect API ({type(exc).__name__})") from None


def find_target(client, spec: AutomationsSpec, fallback_interval: float, config_file: str) -> Target:
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_UI_URL

    try:
        deployment = _call("reading the deployment", client.read_deployment_by_name, spec.deployment)
    except ObjectNotFound:
        raise AutomationsError(
            f"{config_file}: field 'automations.deployment': no deployment {spec.deployment!r} on the Prefect "
            "server; start the monitor first (alerting serve [--name NAME] creates service-monitor/NAME)"
        ) from None
    slug, name = spec.block_ref
    try:
        block = _call("reading the notification block", client.read_block_document_by_name, name, slug,
                      include_secrets=False)
    except ObjectNotFound:
        raise AutomationsError(
            f"{config_file}: field 'automations.block': no block document {spec.block!r} on the Prefect server; "
            f"create a '{slug}' block named '{name}' (Prefect UI: Blocks) first"
        ) from None
    interval, source = None, "deployment schedule"
    for schedule in deployment.schedules or []:
        value = getattr(schedule.schedule, "interval", None)
        if value is not None and (interval is None or value.total_seconds() < interval):
            interval = value.total_seconds()
    if interval is None:
        interval, source = fallback_interval, "config defaults.interval (the deployment has no interval schedule)"
    api = api_url()
    ui = (PREFECT_UI_URL.value() or api.removesuffix("/api")).rstrip("/")
    return Target(spec.deployment, deployment.id, interval, source, block.id, ui)


def _canonical(automation) -> dict:
    """A comparable form: server defaults filled in, sets sorted."""
    from prefect.events.schemas.automations import AutomationCore

    data = AutomationCore.model_validate(automation.model_dump()).model_dump(
        mode="json", exclude={"owner_resource"}
    )
    trigger = data["trigger"]
    for key in ("after", "expect", "for_each"):
        trigger[key] = sorted(trigger.get(key) or [])
    data["tags"] = sorted(data["tags"])
    return data


def ours(client, deployment: str | None = None) -> list:
    """Automations this toolkit made (tag and name prefix), for one deployment or all."""
    prefix = automation_name(deployment, "") if deployment else PREFIX
    found = _call("listing automations", client.read_automations)
    return sorted((a for a in found if TAG in (a.tags or []) and a.name.startswith(prefix)), key=lambda a: a.name)


def _sync(client, wanted, existing: dict, report: Report) -> UUID:
    current = existing.pop(wanted.name, None)
    if current is None:
        new_id = _call(f"creating {wanted.name!r}", client.create_automation, wanted)
        report.changes.append((wanted.name, "created"))
        return new_id
    if _canonical(current) == _canonical(wanted):
        report.changes.append((wanted.name, "unchanged"))
    else:
        _call(f"updating {wanted.name!r}", client.update_automation, current.id, wanted)
        report.changes.append((wanted.name, "updated"))
    return current.id


def apply(spec: AutomationsSpec, fallback_interval: float, config_file: str) -> Report:
    """Create, update or delete our automations for ``spec.deployment`` so the server holds exactly
    what ``spec`` asks for. Idempotent: a second call reports every automation unchanged."""
    report = Report()
    with _client() as client:
        target = report.target = find_target(client, spec, fallback_interval, config_file)
        existing = {a.name: a for a in ours(client, spec.deployment)}
        for dupe in _duplicates(client, spec.deployment, existing):
            _call(f"deleting a duplicate of {dupe.name!r}", client.delete_automation, dupe.id)
            report.changes.append((dupe.name, "deleted (duplicate)"))
        watcher_id = None
        for wanted in build(spec, target):
            new_id = _sync(client, wanted, existing, report)
            if wanted.name == automation_name(spec.deployment, "monitor not running"):
                watcher_id = new_id
        for wanted in build(spec, target, watcher_id):
            if wanted.name == automation_name(spec.deployment, "monitor running again"):
                _sync(client, wanted, existing, report)
        for stale in existing.values():  # ours, no longer asked for (e.g. mode changed to hook)
            _call(f"deleting {stale.name!r}", client.delete_automation, stale.id)
            report.changes.append((stale.name, "deleted"))
    return report


def _duplicates(client, deployment: str, kept: dict) -> list:
    """Second copies with one name (a concurrent apply could make them): all but the one in ``kept``."""
    return [a for a in ours(client, deployment) if kept.get(a.name) is not None and kept[a.name].id != a.id]


def list_ours(deployment: str | None = None) -> list:
    with _client() as client:
        return ours(client, deployment)


def delete_ours(deployment: str | None = None) -> list[str]:
    """Delete our automations (for one deployment, or all); return their names."""
    with _client() as client:
        doomed = ours(client, deployment)
        for automation in doomed:
            _call(f"deleting {automation.name!r}", client.delete_automation, automation.id)
    return [a.name for a in doomed]


def describe(automation) -> str:
    """One line for ``alerting automations list``: the trigger, no ids, no secrets."""
    trigger = automation.trigger
    describe_for_cli = getattr(trigger, "describe_for_cli", None)
    text = describe_for_cli() if describe_for_cli else type(trigger).__name__
    return " ".join(text.split())
