"""``alerting automations apply | list | delete``: server-side alerts on the Prefect server
(the logic is in flows/automations.py; docs/automations.md)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from alerting import prefect_api
from alerting.cli.app import ConfigOption, app, command, fail, load, out, sub_app

automations_app = sub_app(
    "automations",
    "Server-side alerts: Prefect automations for failed runs, a monitor that stopped running, late runs.",
)
app.add_typer(automations_app)


def _errors():
    from flows.automations import AutomationsError

    return AutomationsError


@command(automations_app, "apply", epilog=prefect_api.RULE)
def apply_cmd(config: Path = ConfigOption) -> None:
    """Create or update this config's automations on the Prefect server.
    Idempotent: a second apply changes nothing. Exit 0, or 2 on bad input or an unusable server."""
    from alerting.durations import format_duration, parse_duration
    from flows.automations_api import apply

    cfg = load(config)
    bad = [p for p in cfg.problems if (p.field or "").startswith("automations")]
    if bad:
        fail("\n".join(str(p) for p in bad))
    if cfg.automations is None:
        fail(f"{config}: no 'automations:' section (see docs/automations.md)")
    try:
        fallback = parse_duration(cfg.defaults.get("interval", "30s"))
    except ValueError:
        fallback = 30.0
    try:
        report = apply(cfg.automations, fallback, str(config))
    except _errors() as exc:
        fail(str(exc))
    target = report.target
    assert target is not None  # apply found the deployment, or raised
    spec = cfg.automations
    out.print(
        f"{spec.deployment}: runs every {format_duration(target.interval)} ({target.interval_source}); "
        f"'not running' after {format_duration(spec.stale_seconds(target.interval))}; notifications through "
        f"{spec.block}; mode {spec.mode}"
    )
    for name, status in report.changes:
        colour = {"created": "green", "updated": "yellow", "unchanged": "dim"}.get(status, "red")
        out.print(f"  [{colour}]{status}[/] {name}", markup=True)
    raise typer.Exit(0)


@command(automations_app, "list", epilog=prefect_api.RULE)
def list_cmd(
    deployment: str | None = typer.Option(None, "--deployment", metavar="FLOW/DEPLOYMENT", help="Only those for <flow>/<deployment>."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """The automations this toolkit made on the Prefect server (others are never shown or touched)."""
    from flows.automations import describe
    from flows.automations_api import list_ours

    try:
        found = list_ours(deployment)
    except _errors() as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps({"automations": [
            {"name": a.name, "enabled": a.enabled, "trigger": describe(a)} for a in found
        ]}))
        raise typer.Exit(0)
    table = Table(title=f"{len(found)} automation(s) made by alerting", title_justify="left")
    for col in ("name", "enabled", "trigger"):
        table.add_column(col, overflow="fold")
    for a in found:
        table.add_row(a.name, "yes" if a.enabled else "no", describe(a))
    out.print(table)
    raise typer.Exit(0)


@command(automations_app, "delete", epilog=prefect_api.RULE)
def delete_cmd(
    deployment: str | None = typer.Option(None, "--deployment", metavar="FLOW/DEPLOYMENT", help="Only those for <flow>/<deployment>."),
) -> None:
    """Delete the automations this toolkit made (all, or one deployment's); nothing else is touched."""
    from flows.automations_api import delete_ours

    try:
        names = delete_ours(deployment)
    except _errors() as exc:
        fail(str(exc))
    for name in names:
        out.print(f"  [red]deleted[/] {name}", markup=True)
    out.print(f"{len(names)} automation(s) deleted")
    raise typer.Exit(0)
