"""``alerting blocks``: register our Prefect block types, list the configured channel and monitor blocks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    name="blocks",
    help="Prefect blocks: channels and monitors configured in the Prefect UI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", markup=True)
    raise typer.Exit(code)


def _api_url() -> str:
    """The configured Prefect API, which must answer; else exit 2 with the reason."""
    from prefect.settings import PREFECT_API_URL

    from flows.serve import api_healthy

    url = PREFECT_API_URL.value()
    if not url:
        _fail("no Prefect API configured: set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api) "
              "or `prefect config set PREFECT_API_URL=...`")
    if not api_healthy(url):
        _fail(f"the Prefect API at {url} does not answer (is the server running?)")
    return url


@app.command()
def register() -> None:
    """Register the block types (Apprise Channel, SMTP E-mail Channel, Service Monitor) with the
    configured Prefect API, so they appear in the UI's Blocks catalogue. Exit 2 if it is unreachable."""
    from blocks import BLOCK_TYPES

    url = _api_url()
    for block_type in BLOCK_TYPES:
        try:
            block_type.register_type_and_schema()
        except Exception as exc:  # noqa: BLE001
            _fail(f"could not register {block_type.get_block_type_name()} at {url}: {type(exc).__name__}: {exc}")
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


@app.command("list")
def list_blocks(
    config: Optional[Path] = typer.Option(None, "-c", "--config", help="YAML config, to show how monitor blocks resolve."),
    tag: Optional[str] = typer.Option(None, "--monitor-tag", help="Only monitor blocks with this tag."),
) -> None:
    """List the channel blocks (any notification block) and Service Monitor blocks; secrets masked."""
    _api_url()
    channels, monitors = asyncio.run(_documents())
    table = Table(title="Channel blocks (name them in channels: as the block name or block:<type>/<name>)", title_justify="left")
    for col in ("name", "type", "reference", "settings"):
        table.add_column(col)
    for d in sorted(channels, key=lambda d: (d.name, d.block_type.slug)):
        table.add_row(d.name, d.block_type.name, f"block:{d.block_type.slug}/{d.name}", _settings(d.data))
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
        _show_resolution(config, tag)


def _settings(data: dict) -> str:
    shown = {k: v for k, v in (data or {}).items() if v not in (None, "", [], {})}
    return _masked(shown)


def _safe_url(url) -> str:
    from alerting.redact import redact_target_url

    return redact_target_url(url) if isinstance(url, str) else ""


def _show_resolution(config: Path, tag: Optional[str]) -> None:
    from alerting.config import ConfigError, load_config
    from blocks.loader import load_block_config

    try:
        cfg = load_config(config)
    except ConfigError as exc:
        _fail(str(exc.problems[0]))
    extra = asyncio.run(load_block_config(cfg, tag))
    for spec in extra.monitors:
        out.print(f"  {spec.name}: {spec.method} {_safe_url(spec.url)} -> {', '.join(spec.channels) or 'no channels'}")
    for problem in extra.problems:
        err.print(f"[bold red]error:[/] {problem}", markup=True)
    if extra.problems:
        raise typer.Exit(2)
