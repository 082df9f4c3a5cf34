"""``alerting blocks register | list``: our Prefect block types, and the channel and monitor blocks
on the server (the Prefect API of the rule in alerting/prefect_api.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.table import Table

from alerting import prefect_api
from alerting.channels import block_target
from alerting.cli.app import app, command, err, fail, out, sub_app, summarise

blocks_app = sub_app("blocks", "Prefect blocks: channels and monitors configured in the Prefect UI.")
app.add_typer(blocks_app)


def _api_url() -> str:
    """The Prefect API of the rule, which must answer; else exit 2 with the reason."""
    try:
        return prefect_api.find().url
    except prefect_api.NoPrefectAPI as exc:
        fail(str(exc))


@command(blocks_app, epilog=prefect_api.RULE)
def register() -> None:
    """Register the block types (Apprise Channel, SMTP E-mail Channel, Service Monitor) with the
    Prefect API, so they appear in the UI's Blocks catalogue. Exit 2 if it is unreachable."""
    from blocks import BLOCK_TYPES

    url = _api_url()
    for block_type in BLOCK_TYPES:
        try:
            with prefect_api.using(url):
                block_type.register_type_and_schema()
        except Exception as exc:  # noqa: BLE001
            fail(f"could not register {block_type.get_block_type_name()} at {url}: {summarise(exc)}")
        out.print(f"registered [bold]{block_type.get_block_type_name()}[/] ({block_type.get_block_type_slug()})", markup=True)
    out.print(f"Create blocks in the UI: {url.removesuffix('/api')}/blocks/catalog")


def _masked(value) -> str:
    if isinstance(value, list):
        return ", ".join(_masked(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_masked(v)}" for k, v in value.items())
    return str(value)


async def _documents():
    from prefect.client.orchestration import get_client

    from blocks.loader import MONITOR_SLUG, read_all

    async with get_client() as client:
        docs = await read_all(client.read_block_documents, include_secrets=False)
    channels = [
        d for d in docs
        if not d.is_anonymous and d.block_schema is not None and "notify" in (d.block_schema.capabilities or [])
    ]
    monitors = [d for d in docs if not d.is_anonymous and d.block_type.slug == MONITOR_SLUG]
    return channels, monitors


@command(blocks_app, "list", epilog=prefect_api.RULE)
def list_blocks(
    config: Path | None = typer.Option(None, "-c", "--config", metavar="FILE", help="YAML config, to show how monitor blocks resolve."),
    tag: str | None = typer.Option(None, "--monitor-tag", metavar="TAG", help="Only monitor blocks with this tag."),
) -> None:
    """List the channel blocks (any notification block) and Service Monitor blocks; secrets masked."""
    url = _api_url()
    try:
        with prefect_api.using(url):
            channels, monitors = asyncio.run(_documents())
    except Exception as exc:  # noqa: BLE001
        fail(f"cannot read the blocks at {url}: {summarise(exc)}")
    table = Table(title="Channel blocks (name them in channels: as the block name or block:<type>/<name>)", title_justify="left")
    for col in ("name", "type", "reference", "settings"):
        table.add_column(col)
    for d in sorted(channels, key=lambda d: (d.name, d.block_type.slug)):
        table.add_row(d.name, d.block_type.name, block_target(d.block_type.slug, d.name), _settings(d.data))
    out.print(table)
    table = Table(title="Service Monitor blocks", title_justify="left")
    for col in ("block", "service", "url", "channels", "tags", "enabled"):
        table.add_column(col)
    for d in sorted(monitors, key=lambda d: d.name):
        data = d.data or {}
        if tag is not None and tag not in (data.get("tags") or []):
            continue
        table.add_row(
            d.name, str(data.get("service_name") or d.name), _safe_url(data.get("url")),
            _masked(data.get("channels") or "(defaults)"), _masked(data.get("tags") or ""),
            "yes" if data.get("enabled", True) else "no",
        )
    out.print(table)
    if config is not None:
        with prefect_api.using(url):
            _show_resolution(config, tag)


def _settings(data: dict) -> str:
    shown = {k: v for k, v in (data or {}).items() if v not in (None, "", [], {})}
    return _masked(shown)


def _safe_url(url) -> str:
    from alerting.redact import redact_target_url

    return redact_target_url(url) if isinstance(url, str) else ""


def _show_resolution(config: Path, tag: str | None) -> None:
    from alerting.config import ConfigError, load_config
    from blocks.loader import load_block_config

    try:
        cfg = load_config(config)
    except ConfigError as exc:
        fail(str(exc.problems[0]))
    extra = asyncio.run(load_block_config(cfg, tag))
    for spec in extra.monitors:
        out.print(f"  {spec.name}: {spec.method} {_safe_url(spec.url)} -> {', '.join(spec.channels) or 'no channels'}")
    for problem in extra.problems:
        err.print(f"[bold red]error:[/] {problem}", markup=True)
    if extra.problems:
        raise typer.Exit(2)
