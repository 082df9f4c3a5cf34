"""``alerting check`` (one URL now) and ``alerting validate`` (the config file): no Prefect needed."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from alerting.cli.app import ConfigOption, app, command, err, load, out, report_problems


@command(app)
def check(
    url: str = typer.Argument(
        ..., metavar="URL",
        help="What to check: an http(s) URL, tcp://host:port, dns://name?type=MX&resolver=IP&expect=VALUE, "
        "tls://host[:port], prefect-deployment://FLOW/DEPLOYMENT?max_age=26h.",
    ),
    expect_status: str | None = typer.Option(
        None, "--expect-status", metavar="CODES", help="Accepted codes, e.g. 200,204 (default: any 2xx)."),
    contains: str | None = typer.Option(None, "--contains", metavar="TEXT", help="Text the body must contain."),
    json_condition: list[str] = typer.Option(
        [], "--json-condition", metavar="CONDITION",
        help="A condition on the JSON body, e.g. '$.status == UP' (repeat for several; all must hold)."),
    send: str | None = typer.Option(None, "--send", metavar="TEXT", help="tcp: text to send after connecting."),
    expect: str | None = typer.Option(None, "--expect", metavar="TEXT", help="tcp: text the reply must contain."),
    degraded_after: str | None = typer.Option(
        None, "--degraded-after", metavar="DURATION", help="Slower than this is DEGRADED (still exit 0), e.g. 800ms."),
    timeout: str = typer.Option("10s", "--timeout", metavar="DURATION", help="Per-attempt timeout: 10, 10s, 1m."),
    attempts: int = typer.Option(3, "--attempts", metavar="N", min=1, max=20, help="Attempts before calling it down."),
    backoff: str = typer.Option(
        "1s", "--backoff", metavar="DURATION", help="First wait between attempts (doubles, with jitter)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
) -> None:
    """Check one URL now, no Prefect needed. Exit 0 up (also when degraded), 1 down, 2 bad input."""
    from pydantic import ValidationError

    from alerting.check import check as run_check
    from alerting.checks import spec_problems
    from alerting.durations import parse_duration
    from alerting.models import MonitorSpec

    fields: dict = {"name": "check", "timeout": timeout, "attempts": attempts, "retry_backoff": backoff}
    options = {"expect_status": expect_status, "contains": contains, "send": send, "expect": expect,
               "degraded_after": degraded_after, "conditions": json_condition or None}
    fields.update({k: v for k, v in options.items() if v is not None})
    try:
        fields.update(url_fields(url))
    except ValueError as exc:
        _bad("url", str(exc))
        raise typer.Exit(2) from None
    try:
        fields["retry_backoff_max"] = max(30.0, parse_duration(backoff))
        spec = MonitorSpec.model_validate(fields)
    except (ValidationError, ValueError) as exc:
        errors = exc.errors(include_url=False) if isinstance(exc, ValidationError) else [{"loc": ("backoff",), "msg": str(exc)}]
        for e in errors:
            _bad(str(e["loc"][0]) if e["loc"] else "", str(e["msg"]))
        raise typer.Exit(2) from None
    if problems := spec_problems(spec, [k for k, v in options.items() if v is not None] + list(url_fields(url))):
        for field, message in problems:
            _bad(field, message)
        raise typer.Exit(2)
    result = run_check(spec)
    if as_json:
        print(result.model_dump_json())
    else:
        mark = "[green]UP[/]" if result.ok else "[bold red]DOWN[/]"
        if result.ok and result.warning is not None:
            mark = f"[bold yellow]DEGRADED[/] ({result.warning.value})"
        latency = f"{result.latency_ms:.0f} ms" if result.latency_ms is not None else "n/a"
        where = f" -> {result.final_url}" if result.final_url else ""
        said = result.message + (f"; {result.warning_message}" if result.warning_message else "")
        out.print(
            f"{mark} {escape(result.url + where)}: {escape(said)} ({latency}, {result.attempts} attempt"
            f"{'s' if result.attempts != 1 else ''})",
            markup=True,
        )
    raise typer.Exit(0 if result.ok else 1)


QUERY_FIELDS = {  # URL query parameters that stand for monitor fields, per scheme
    "dns": {"type": "record_type", "resolver": "resolver", "expect": "expect_values"},
    "prefect-deployment": {"max_age": "max_age", "fail_on_failed_run": "fail_on_failed_run"},
}


def url_fields(url: str) -> dict:
    """``url`` and what the query of a dns:// or prefect-deployment:// URL says, as monitor fields
    (``dns://example.com?type=MX&resolver=1.1.1.1&expect=mail.example.com``,
    ``prefect-deployment://etl/nightly?max_age=26h``)."""
    from urllib.parse import parse_qsl, urlsplit

    scheme = url.strip().partition("://")[0].lower()
    names = QUERY_FIELDS.get(scheme)
    if names is None:
        return {"url": url}
    parts = urlsplit(url.strip())
    fields: dict = {"url": parts._replace(query="").geturl()}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in names:
            raise ValueError(f"unknown query parameter {key!r} in a {scheme}:// URL (use {', '.join(names)})")
        if names[key] == "expect_values":
            fields.setdefault("expect_values", []).append(value)
        else:
            fields[names[key]] = value
    return fields


def _bad(field: str, message: str) -> None:
    names = {"url": "URL", "retry_backoff": "--backoff", "": "--backoff", "conditions": "--json-condition",
             "record_type": "URL ?type=", "resolver": "URL ?resolver=", "expect_values": "URL ?expect=",
             "max_age": "URL ?max_age=", "fail_on_failed_run": "URL ?fail_on_failed_run="}
    base = field.split("[", 1)[0]
    name = names.get(base, f"--{base.replace('_', '-')}")
    err.print(f"[bold red]error:[/] {name}: {escape(message.removeprefix('Value error, '))}", markup=True)


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
        what = spec.method if spec.type == "http" else spec.type
        out.print(f"  {spec.name}: {what} {redact_target_url(spec.url)}{headers} "
                  f"every {spec.interval:g}s, {spec.attempts} attempts, timeout {spec.timeout:g}s -> {channels}",
                  markup=False)  # names are plain text
    if cfg.automations is not None:
        a = cfg.automations
        out.print(f"  automations: mode {a.mode}, {a.deployment} through {a.block} (alerting automations apply)")
    raise typer.Exit(0)
