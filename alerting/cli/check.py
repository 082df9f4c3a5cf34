"""``alerting check`` (one URL now) and ``alerting validate`` (the config file): no Prefect needed."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from alerting.cli.app import ConfigOption, app, command, err, load, out, report_problems


@command(app)
def check(
    url: str = typer.Argument(..., metavar="URL", help="http(s) URL to check."),
    expect_status: str | None = typer.Option(
        None, "--expect-status", metavar="CODES", help="Accepted codes, e.g. 200,204 (default: any 2xx)."),
    contains: str | None = typer.Option(None, "--contains", metavar="TEXT", help="Text the body must contain."),
    timeout: str = typer.Option("10s", "--timeout", metavar="DURATION", help="Per-attempt timeout: 10, 10s, 1m."),
    attempts: int = typer.Option(3, "--attempts", metavar="N", min=1, max=20, help="Attempts before calling it down."),
    backoff: str = typer.Option(
        "1s", "--backoff", metavar="DURATION", help="First wait between attempts (doubles, with jitter)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
) -> None:
    """Check one URL now, no Prefect needed. Exit 0 up, 1 down, 2 bad input."""
    from pydantic import ValidationError

    from alerting.check import check as run_check
    from alerting.durations import parse_duration
    from alerting.models import MonitorSpec

    fields = {"name": "check", "url": url, "timeout": timeout, "attempts": attempts, "retry_backoff": backoff}
    if expect_status is not None:
        fields["expect_status"] = expect_status
    if contains is not None:
        fields["contains"] = contains
    try:
        fields["retry_backoff_max"] = max(30.0, parse_duration(backoff))
        spec = MonitorSpec.model_validate(fields)
    except (ValidationError, ValueError) as exc:
        errors = exc.errors(include_url=False) if isinstance(exc, ValidationError) else [{"loc": ("backoff",), "msg": str(exc)}]
        for e in errors:
            field = str(e["loc"][0]) if e["loc"] else ""
            name = {"url": "URL", "retry_backoff": "--backoff", "": "--backoff"}.get(field, f"--{field.replace('_', '-')}")
            err.print(f"[bold red]error:[/] {name}: {escape(str(e['msg']).removeprefix('Value error, '))}", markup=True)
        raise typer.Exit(2) from None
    result = run_check(spec)
    if as_json:
        print(result.model_dump_json())
    else:
        mark = "[green]UP[/]" if result.ok else "[bold red]DOWN[/]"
        latency = f"{result.latency_ms:.0f} ms" if result.latency_ms is not None else "n/a"
        where = f" -> {result.final_url}" if result.final_url else ""
        out.print(
            f"{mark} {escape(result.url + where)}: {escape(result.message)} ({latency}, {result.attempts} attempt"
            f"{'s' if result.attempts != 1 else ''})",
            markup=True,
        )
    raise typer.Exit(0 if result.ok else 1)


@command(app)
def validate(config: Path = ConfigOption) -> None:
    """Check the config. Exit 0 with a summary, or 2 listing every problem."""
    from alerting.redact import redact_target_url

    cfg = load(config)
    if cfg.problems:
        report_problems(cfg)
        err.print(f"{len(cfg.problems)} problem{'s' if len(cfg.problems) != 1 else ''} in {config}")
        raise typer.Exit(2)
    if (warning := cfg.empty_warning()) is not None:
        err.print(f"[bold yellow]{escape(warning)}[/]", markup=True)
    out.print(
        f"{config}: OK, {len(cfg.monitors)} monitor{'s' if len(cfg.monitors) != 1 else ''}, "
        f"{len(cfg.channels)} channel{'s' if len(cfg.channels) != 1 else ''}"
    )
    for spec in cfg.monitors:
        channels = ", ".join(spec.channels) or "no channels"
        headers = f" (+{len(spec.headers)} header{'s' if len(spec.headers) != 1 else ''})" if spec.headers else ""
        out.print(f"  {spec.name}: {spec.method} {redact_target_url(spec.url)}{headers} "
                  f"every {spec.interval:g}s, {spec.attempts} attempts, timeout {spec.timeout:g}s -> {channels}",
                  markup=False)  # names are plain text
    if cfg.automations is not None:
        a = cfg.automations
        out.print(f"  automations: mode {a.mode}, {a.deployment} through {a.block} (alerting automations apply)")
    raise typer.Exit(0)
