"""The ``alerting`` command: check, run, serve, validate, notify, drill (+ status, history, silence,
unsilence from ``alerting.cli_state``)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from alerting.cli_blocks import app as blocks_app
from alerting.config import DEFAULT_CONFIG, Config, ConfigError, load_config

app = typer.Typer(
    name="alerting",
    help="Watch services, alert through Apprise when one goes down. Runs on Prefect.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(blocks_app, name="blocks")  # alerting blocks register | list
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

ConfigOption = typer.Option(DEFAULT_CONFIG, "-c", "--config", help="YAML config file.", show_default=True)


def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", markup=True)  # plain text: a name may hold "[/x]"
    raise typer.Exit(code)


def _load(path: Path) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(f"[bold red]error:[/] {escape(str(problem))}", markup=True)  # a name may hold "[/x]"
        raise typer.Exit(2) from None


def _check_store(cfg: Config, config: Path) -> None:
    """A bad ``state_url`` is bad input: exit 2 before any check runs."""
    from alerting.lifecycle import open_store
    from alerting.store import StoreError

    try:
        open_store(cfg).close()
    except StoreError as exc:
        fail(f"{config}: field 'state_url': {exc}")


def _report_problems(config: Config) -> None:
    for problem in config.problems:
        err.print(f"[bold red]error:[/] {escape(str(problem))}", markup=True)


def _refuse_bad_or_empty(cfg: Config, config: Path, problems_too: bool) -> None:
    """Exit 2 before any Prefect server starts: on any config problem (``problems_too``), or when
    there is nothing to check (see ``Config.nothing_to_check``)."""
    if problems_too and cfg.problems:
        _report_problems(cfg)
        fail(f"{len(cfg.problems)} problem{'s' if len(cfg.problems) != 1 else ''} in {config} "
             "(nothing was checked)")
    if (empty := cfg.nothing_to_check()) is not None:
        fail(str(empty))


def _check_shard(shard: Optional[str]) -> None:
    if shard is not None:
        from alerting.schedule import parse_shard

        try:
            parse_shard(shard)
        except ValueError as exc:
            fail(f"--shard: {exc}")


def _quiet_prefect_for_json() -> None:
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


@app.command()
def check(
    url: str = typer.Argument(..., help="http(s) URL to check."),
    expect_status: Optional[str] = typer.Option(None, "--expect-status", help="Accepted codes, e.g. 200,204 (default: any 2xx)."),
    contains: Optional[str] = typer.Option(None, "--contains", help="Text the body must contain."),
    timeout: str = typer.Option("10s", "--timeout", help="Per-attempt timeout: 10, 10s, 1m."),
    attempts: int = typer.Option(3, "--attempts", min=1, max=20, help="Attempts before calling it down."),
    backoff: str = typer.Option("1s", "--backoff", help="First wait between attempts (doubles, with jitter)."),
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
            err.print(f"[bold red]error:[/] {name}: {escape(e['msg'].removeprefix('Value error, '))}", markup=True)
        raise typer.Exit(2) from None
    result = run_check(spec)
    if as_json:
        print(result.model_dump_json())
    else:
        mark = "[green]UP[/]" if result.ok else "[bold red]DOWN[/]"
        latency = f"{result.latency_ms:.0f} ms" if result.latency_ms is not None else "n/a"
        out.print(
            f"{mark} {result.url}: {result.message} ({latency}, {result.attempts} attempt"
            f"{'s' if result.attempts != 1 else ''})",
            markup=True,
        )
    raise typer.Exit(0 if result.ok else 1)


def _results_table(outcome) -> Table:
    table = Table(title=outcome.message, title_justify="left")
    for col in ("service", "status", "HTTP", "latency", "attempts", "detail"):
        table.add_column(col)
    for r in outcome.results:
        table.add_row(
            r.monitor,
            "[green]UP[/]" if r.ok else "[bold red]DOWN[/]",
            str(r.status_code or ""),
            f"{r.latency_ms:.0f} ms" if r.latency_ms is not None else "",
            str(r.attempts),
            "" if r.ok else r.message,
        )
    return table


def _print_deliveries(outcome) -> None:
    for d in outcome.deliveries:
        if d.ok:
            out.print(f"[green]sent[/] {d.title!r} to {d.channel} ({d.target})", markup=True)
        else:
            out.print(f"[bold red]not sent[/] {d.title!r} to {d.channel} ({d.target}): {d.error}", markup=True)


def _outcome_json(state, outcome) -> str:
    return json.dumps(
        {
            "ok": state.is_completed(),
            "state": state.type.value,
            "message": state.message,
            "flow_run_id": str(state.state_details.flow_run_id),
            "results": [json.loads(r.model_dump_json()) for r in outcome.results] if outcome else [],
            "alerts": [d.__dict__ for d in outcome.deliveries] if outcome else [],
            "lifecycle": (
                [{"monitor": m, "status": st.status.value, "notified_down": st.notified_down}
                 for m, st in outcome.states.items()] if outcome else []
            ),
            "events": [{"kind": e.kind.value, "monitor": e.monitor} for e in outcome.events] if outcome else [],
            "problems": outcome.problems if outcome else [],
        }
    )


@app.command()
def run(
    config: Path = ConfigOption,
    as_json: bool = typer.Option(False, "--json", help="Print results and alerts as one JSON object."),
    shard: Optional[str] = typer.Option(None, "--shard", help="Check only shard I of N (e.g. 1/2) of the monitors."),
) -> None:
    """Run the monitor flow once (a real Prefect flow run). Exit 0 all up, 1 any down, 2 bad config."""
    _check_shard(shard)
    cfg = _load(config)
    _refuse_bad_or_empty(cfg, config, problems_too=True)  # before any Prefect server starts
    _check_store(cfg, config)
    if as_json:
        _quiet_prefect_for_json()
    from flows.monitor import run_once

    state, outcome = run_once(config, shard=shard)
    if as_json:
        print(_outcome_json(state, outcome))
    elif outcome is not None:
        out.print(_results_table(outcome))
        _print_deliveries(outcome)
    if cfg.problems or (outcome is not None and outcome.problems):
        _report_problems(cfg)
        raise typer.Exit(2)
    raise typer.Exit(0 if state.is_completed() else 1)


@app.command()
def drill(
    monitor: str = typer.Argument(..., help="Name of the monitor whose outage is simulated."),
    config: Path = ConfigOption,
    status: int = typer.Option(503, "--status", min=100, max=599, help="HTTP status the simulated target answers."),
) -> None:
    """Fire drill: run the flow with MONITOR's target answering STATUS, so real [DRILL] alerts go out.

    Exit 0 when every channel of the monitor got the alert, 1 when any did not, 2 bad input.
    """
    cfg = _load(config)
    try:
        spec = cfg.monitor(monitor)
    except KeyError as exc:
        fail(str(exc.args[0]))
    if not spec.channels:
        fail(f"{config}: monitor '{monitor}': field 'channels': no channels, so a drill would alert nobody")
    from flows.monitor import run_once

    state, outcome = run_once(config, drill_monitor=monitor, drill_status=status)
    if outcome is None:
        fail("the drill run produced no results", 1)
    out.print(f"drill: {state.message}")
    _print_deliveries(outcome)
    delivered = bool(outcome.deliveries) and all(d.ok for d in outcome.deliveries)
    raise typer.Exit(0 if delivered else 1)


@app.command()
def validate(config: Path = ConfigOption) -> None:
    """Check the config. Exit 0 with a summary, or 2 listing every problem."""
    from alerting.redact import redact_target_url

    cfg = _load(config)
    if cfg.problems:
        _report_problems(cfg)
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


@app.command()
def notify(
    channel: str = typer.Argument(..., help="Channel name from the config."),
    config: Path = ConfigOption,
    title: str = typer.Option("Test alert from outage-alerting", "--title"),
    body: Optional[str] = typer.Option(None, "--body"),
) -> None:
    """Send a test message to one channel. Exit 0 delivered, 1 not delivered, 2 bad input."""
    from alerting.delivery import send
    from alerting.render import render_test

    cfg = _load(config)
    spec = cfg.channels.get(channel)
    if spec is None:
        bad = [p for p in cfg.problems if p.channel == channel]
        if bad:
            fail(str(bad[0]))
        fail(f"{config}: no channel named '{channel}' (defined: {', '.join(cfg.channels) or 'none'})")
    text = body or f"If you can read this, the channel '{channel}' works."
    result = send(spec, [render_test(title, text)])[0]
    if result.ok:
        out.print(f"[green]delivered[/] to {channel} ({result.target})", markup=True)
        raise typer.Exit(0)
    err.print(f"[bold red]not delivered[/] to {channel} ({result.target}): {result.error}", markup=True)
    raise typer.Exit(1)


@app.command()
def serve(
    config: Path = ConfigOption,
    interval: Optional[str] = typer.Option(
        None, "--interval", help="Run the flow every: 30s, 5m (default: the smallest monitor interval). "
        "Each run checks only the monitors whose own interval is due."),
    name: str = typer.Option("service-monitor", "--name", help="Deployment name."),
    host: str = typer.Option("127.0.0.1", "--host", help="Host of the local Prefect server started when none is configured."),
    port: int = typer.Option(4200, "--port", help="Port of that local Prefect server (UI and API)."),
    shard: Optional[str] = typer.Option(
        None, "--shard", help="Serve only shard I of N (e.g. 1/2) of the monitors; run one serve per shard."),
    in_process: bool = typer.Option(
        False, "--in-process", help="Run each flow run inside this process instead of a new one per run "
        "(~2-3 s less CPU per cycle; no process isolation or remote cancellation)."),
) -> None:
    """Serve the monitor flow on a schedule (Prefect deployment). Starts a local Prefect server with
    its UI when none is configured; Ctrl-C stops both."""
    from alerting.durations import parse_duration
    from alerting.schedule import smallest_interval

    _check_shard(shard)
    if shard and name == "service-monitor":
        name = f"service-monitor-shard-{shard.replace('/', '-of-')}"
    cfg = _load(config)
    _report_problems(cfg)  # bad monitors are reported; the others are served
    _refuse_bad_or_empty(cfg, config, problems_too=False)  # but not nothing at all
    try:
        seconds = parse_duration(interval) if interval is not None else smallest_interval(cfg.monitors)
    except ValueError as exc:
        fail(f"--interval: {exc}")
    if seconds < 1:
        fail("--interval: must be at least 1s")
    import signal

    from flows.serve import ServerUnavailable, ensure_server, serve_monitor

    def _terminate(signum, frame):  # SIGTERM stops the local server like Ctrl-C does
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)

    try:
        server = ensure_server(host, port, Path(".alerting"))
    except ServerUnavailable as exc:
        fail(str(exc))
    started = " (started here; stops with Ctrl-C)" if server.process else ""
    out.print(f"Prefect server: {server.ui_url}{started}")
    out.print(f"Dashboard: {server.ui_url}/dashboard  ·  Runs: {server.ui_url}/runs")
    out.print(f"Serving {len(cfg.monitors)} monitor(s) from {config} every {seconds:g}s as deployment "
              f"'service-monitor/{name}'. Ctrl-C to stop.")
    from prefect.exceptions import TerminationSignal

    try:
        serve_monitor(config, seconds, name, server, shard, in_process)
    except (KeyboardInterrupt, TerminationSignal):
        pass
    finally:
        _flush_prefect_logs()
        server.stop()
        out.print("stopped")
    if in_process:
        # Prefect's background workers of in-process runs are not daemon threads and can hold the
        # interpreter open after Ctrl-C; everything is flushed and stopped by now.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _flush_prefect_logs() -> None:
    try:
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)
    except Exception:  # noqa: BLE001 - best effort on the way out
        pass


from alerting import cli_state  # noqa: E402,F401 - registers status, history, silence, unsilence
from alerting.cli_automations import automations_app  # noqa: E402

app.add_typer(automations_app)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
