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
    err.print(f"[bold red]error:[/] {message}", markup=True)
    raise typer.Exit(code)


def _load(path: Path) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(f"[bold red]error:[/] {problem}", markup=True)
        raise typer.Exit(2) from None


def _check_store(cfg: Config, config: Path) -> None:
    """A bad ``state_url`` is bad input: exit 2 before any check runs."""
    from alerting.cycle import open_store
    from alerting.store import StoreError

    try:
        open_store(cfg).close()
    except StoreError as exc:
        fail(f"{config}: field 'state_url': {exc}")


def _report_problems(config: Config) -> None:
    for problem in config.problems:
        err.print(f"[bold red]error:[/] {problem}", markup=True)


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
            name = {"retry_backoff": "backoff", "url": "URL"}.get(str(e["loc"][0]), str(e["loc"][0]))
            err.print(f"[bold red]error:[/] {name.replace('_', '-')}: {e['msg'].removeprefix('Value error, ')}", markup=True)
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


def _results_table(run) -> Table:
    table = Table(title=run.message, title_justify="left")
    for col in ("service", "status", "HTTP", "latency", "attempts", "detail"):
        table.add_column(col)
    for r in run.cycle.results:
        status = "[green]UP[/]" if r.ok else (
            "[yellow]CHECK ERROR[/]" if r.error is not None and r.error.value == "check_error" else "[bold red]DOWN[/]")
        table.add_row(
            r.monitor, status, str(r.status_code or ""),
            f"{r.latency_ms:.0f} ms" if r.latency_ms is not None else "",
            str(r.attempts), "" if r.ok else r.message,
        )
    return table


def _print_deliveries(deliveries) -> None:
    for d in deliveries:
        if d.ok:
            out.print(f"[green]sent[/] {d.title!r} to {d.channel} ({d.target})", markup=True)
        else:
            out.print(f"[bold red]not sent[/] {d.title!r} to {d.channel} ({d.target}): {d.error}", markup=True)


def _run_json(run) -> str:
    cycle = run.cycle
    return json.dumps(
        {
            "ok": run.ok,
            "state": run.state or ("Completed" if run.ok else "Failed"),
            "message": run.message,
            "flow_run_id": run.flow_run_id,
            "recorded_in_prefect": run.not_recorded is None,
            "not_recorded_reason": run.not_recorded,
            "results": [json.loads(r.model_dump_json()) for r in cycle.results],
            "alerts": [d.__dict__ for d in run.deliveries],
            "lifecycle": [{"monitor": m, "status": st.status.value, "notified_down": st.notified_down}
                          for m, st in cycle.states.items()],
            "events": [{"kind": e.kind.value, "monitor": e.monitor} for e in cycle.events],
            "problems": run.problems,
        }
    )


@app.command()
def run(
    config: Path = ConfigOption,
    as_json: bool = typer.Option(False, "--json", help="Print results and alerts as one JSON object."),
    shard: Optional[str] = typer.Option(None, "--shard", help="Check only shard I of N (e.g. 1/2) of the monitors."),
) -> None:
    """Run the monitor flow once (a real Prefect flow run). Exit 0 all up, 1 any down, 2 bad config.

    When the Prefect API cannot be reached, the checks, state and alerts run without it and stderr
    says the run is not recorded in Prefect."""
    _check_shard(shard)
    cfg = _load(config)
    _check_store(cfg, config)
    if as_json:
        _quiet_prefect_for_json()
    from flows.one_run import run_one

    result = run_one(config, shard=shard)
    if result.not_recorded:
        err.print(f"[yellow]warning:[/] {result.not_recorded}: this run is not recorded in Prefect; "
                  "checks and alerts ran without it", markup=True)
    if as_json:
        print(_run_json(result))
    else:
        out.print(_results_table(result))
        _print_deliveries(result.deliveries)
    if cfg.problems or result.problems:
        _report_problems(cfg)
        raise typer.Exit(2)
    raise typer.Exit(0 if result.ok else 1)


@app.command()
def drill(
    monitor: str = typer.Argument(..., help="Name of the monitor whose outage is simulated."),
    config: Path = ConfigOption,
    status: int = typer.Option(503, "--status", min=100, max=599, help="HTTP status the simulated target answers."),
) -> None:
    """Fire drill: MONITOR's check runs against a simulated STATUS answer, and a [DRILL] DOWN goes
    through the outbox to its channels like a real alert (the monitor's state is not touched).

    Exit 0 when every channel of the monitor got the alert, 1 when any did not, 2 bad input.
    """
    cfg = _load(config)
    try:
        spec = cfg.monitor(monitor)
    except KeyError as exc:
        fail(str(exc.args[0]))
    if not spec.channels:
        fail(f"{config}: monitor '{monitor}': field 'channels': no channels, so a drill would alert nobody")
    from alerting.standalone import run_drill

    result, deliveries = run_drill(cfg, spec, status)
    out.print(f"drill: {spec.name} answered {result.summary()} (simulated HTTP {status})")
    _print_deliveries(deliveries)
    delivered = bool(deliveries) and all(d.ok for d in deliveries)
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
    out.print(
        f"{config}: OK, {len(cfg.monitors)} monitor{'s' if len(cfg.monitors) != 1 else ''}, "
        f"{len(cfg.channels)} channel{'s' if len(cfg.channels) != 1 else ''}"
    )
    for spec in cfg.monitors:
        channels = ", ".join(spec.channels) or "no channels"
        headers = f" (+{len(spec.headers)} header{'s' if len(spec.headers) != 1 else ''})" if spec.headers else ""
        out.print(f"  {spec.name}: {spec.method} {redact_target_url(spec.url)}{headers} "
                  f"every {spec.interval:g}s, {spec.attempts} attempts, timeout {spec.timeout:g}s -> {channels}")
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

    from flows.serving import AlreadyServed

    refused = None
    try:
        serve_monitor(config, seconds, name, server, shard, in_process)
    except (KeyboardInterrupt, TerminationSignal):
        pass
    except AlreadyServed as exc:
        refused = str(exc)
    finally:
        _flush_prefect_logs()
        server.stop()
        if refused is None:
            out.print("stopped")
    if refused is not None:
        fail(refused)
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
