"""Apply, list and delete our automations on the Prefect server (what they are: flows/automations.py).

``apply`` makes the server hold exactly what the config asks for, by name, so a second apply changes
nothing; ``list_ours`` and ``delete_ours`` see only automations with our tag and name prefix.
Every failure becomes one ``AutomationsError`` line without secrets (block documents hold those).
"""

from __future__ import annotations

from contextlib import contextmanager
from uuid import UUID

from alerting.server_alerts import AutomationsSpec
from flows.automations import PREFIX, TAG, AutomationsError, Report, Target, automation_name, build


def api_url() -> str:
    """The Prefect API by the one rule of every command (alerting/prefect_api.py), checked to
    answer; AutomationsError otherwise."""
    from alerting import prefect_api

    try:
        return prefect_api.find().url
    except prefect_api.NoPrefectAPI as exc:
        raise AutomationsError(f"{exc} (automations live on the Prefect server that runs the monitor)") from None


@contextmanager
def _client():
    """A sync Prefect client for the checked API."""
    from prefect.client.orchestration import get_client

    from alerting import prefect_api

    with prefect_api.using(api_url()), get_client(sync_client=True) as client:
        yield client


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
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

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
    api = (PREFECT_API_URL.value() or "").rstrip("/")
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
    """Delete our automations (for one deployment, or all); return their names. A deployment that
    neither exists nor has automations of ours is an AutomationsError (a typo, not "0 deleted")."""
    from prefect.exceptions import ObjectNotFound

    with _client() as client:
        doomed = ours(client, deployment)
        if deployment is not None and not doomed:
            try:
                _call("reading the deployment", client.read_deployment_by_name, deployment)
            except ObjectNotFound:
                raise AutomationsError(
                    f"--deployment: no deployment {deployment!r} on the Prefect server, and no automations of "
                    "ours for it (see alerting automations list)"
                ) from None
        for automation in doomed:
            _call(f"deleting {automation.name!r}", client.delete_automation, automation.id)
    return [a.name for a in doomed]


def covers_runs(deployment: str) -> bool:
    """Is our enabled ``run failed`` automation for ``deployment`` on the server? Asked by each run
    before its hooks leave a channel to the server (mode both/automation): an unapplied config, or
    an unreachable server, never silences a channel. Never raises."""
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            found = client.read_automations_by_name(automation_name(deployment, "run failed"))
        return any(a.enabled and TAG in (a.tags or []) for a in found)
    except Exception:  # noqa: BLE001 - in doubt, the hooks alert every channel
        return False

