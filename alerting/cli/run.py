"""``alerting run | serve | drill | notify``: the commands that run the monitor flow or send alerts.

Which Prefect API they use: alerting/prefect_api.py (one rule for every command).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from alerting import prefect_api
from alerting.cli.app import (
    ConfigOption,
    app,
    command,
    err,
    fail,
    load,
    out,
    refuse_bad_or_empty,
    report_problems,
    summarise,
    with_block_monitors,
)
from alerting.config import Config


def _check_store(cfg: Config, config: Path) -> None:
    """A bad ``state_url`` is bad input: exit 2 before any check runs."""
    from alerting.cycle import open_store
    from alerting.store import StoreError

    try:
        open_store(cfg).close()
    except StoreError as exc:
        fail(f"{config}: field 'state_url': {exc}")


def _check_shard(shard: str | None) -> None:
    if shard is not None:
        from alerting.schedule import parse_shard

        try:
            parse_shard(shard)
        except ValueError as exc:
            fail(f"--shard: {exc}")


def _quiet_prefect_for_json() -> None:
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def _results_table(run) -> Table:
    table = Table(title=escape(run.message), title_justify="left")
    for col in ("service", "status", "HTTP", "latency", "attempts", "detail"):
        table.add_column(col)
    for r in run.cycle.results:
        status = "[green]UP[/]" if r.ok else (
            "[yellow]CHECK ERROR[/]" if r.error is not None and r.error.value == "check_error" else "[bold red]DOWN[/]")
        table.add_row(
            escape(r.monitor), status, str(r.status_code or ""),
            f"{r.latency_ms:.0f} ms" if r.latency_ms is not None else "",
            str(r.attempts), "" if r.ok else escape(r.message),
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


@command(app, epilog=prefect_api.RULE_RUN)
def run(
    config: Path = ConfigOption,
    as_json: bool = typer.Option(False, "--json", help="Print results and alerts as one JSON object."),
    shard: str | None = typer.Option(
        None, "--shard", metavar="I/N", help="Check only shard I of N (e.g. 1/2) of the monitors."),
) -> None:
    """Run the monitor flow once (a real Prefect flow run). Exit 0 all up, 1 any down, 2 bad config.

    When the Prefect API cannot be reached, the checks, state and alerts run without it and stderr
    says the run is not recorded in Prefect."""
    _check_shard(shard)
    cfg = load(config)
    refuse_bad_or_empty(cfg, config, problems_too=True)  # before any Prefect server starts
    _check_store(cfg, config)
    if as_json:
        _quiet_prefect_for_json()
    from flows.one_run import run_one

    api_url = prefect_api.for_run()
    with prefect_api.using(api_url):
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
        report_problems(cfg)
        raise typer.Exit(2)
    raise typer.Exit(0 if result.ok else 1)


@command(app, epilog=prefect_api.RULE_RUN)
def drill(
    monitor: str = typer.Argument(..., metavar="MONITOR", help="Name of the monitor whose outage is simulated."),
    config: Path = ConfigOption,
    status: int = typer.Option(
        503, "--status", metavar="CODE", min=100, max=599, help="HTTP status the simulated target answers."),
) -> None:
    """Fire drill: MONITOR's check runs against a simulated STATUS answer, and a [DRILL] DOWN goes
    through the outbox to its channels like a real alert (the monitor's state is not touched).

    Exit 0 when every channel of the monitor got the alert, 1 when any did not, 2 bad input.
    """
    cfg = load(config)
    if monitor not in {m.name for m in cfg.monitors}:
        cfg = with_block_monitors(cfg)  # a monitor made in the Prefect UI
    try:
        spec = cfg.monitor(monitor)
    except KeyError as exc:
        fail(str(exc.args[0]))
    if not spec.channels:
        fail(f"{config}: monitor '{monitor}': field 'channels': no channels, so a drill would alert nobody")
    from alerting.standalone import run_drill

    with prefect_api.using(prefect_api.for_run()):  # block channels need the API
        result, deliveries = run_drill(cfg, spec, status)
    simulated = f"simulated HTTP {status}" if spec.type == "http" else f"simulated; {spec.type} target not contacted"
    out.print(f"drill: {spec.name} answered {result.summary()} ({simulated})")
    _print_deliveries(deliveries)
    delivered = bool(deliveries) and all(d.ok for d in deliveries)
    raise typer.Exit(0 if delivered else 1)


def _block_api(channel: str, slug: str, name: str) -> str:
    """The Prefect API that holds block ``slug/name`` (by the rule); exit 2 when there is none or
    the block does not exist there."""
    try:
        api = prefect_api.find()
    except prefect_api.NoPrefectAPI as exc:
        fail(f"channel '{channel}' is the Prefect block {slug}/{name}: {exc}")
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    try:
        with prefect_api.using(api.url), get_client(sync_client=True) as client:
            client.read_block_document_by_name(name, slug, include_secrets=False)
    except ObjectNotFound:
        fail(f"channel '{channel}': no block named '{name}' of type '{slug}' on the Prefect server at "
             f"{api.ui_url}; see alerting blocks list")
    except Exception as exc:  # noqa: BLE001
        fail(f"channel '{channel}': cannot read the block {slug}/{name} at {api.ui_url}: {summarise(exc)}")
    return api.url


@command(app, epilog=f"A block: channel needs a Prefect API. {prefect_api.RULE}")
def notify(
    channel: str = typer.Argument(..., metavar="CHANNEL", help="Channel name from the config."),
    config: Path = ConfigOption,
    title: str = typer.Option("Test alert from outage-alerting", "--title", metavar="TEXT",
                              help="Title of the test message."),
    body: str | None = typer.Option(None, "--body", metavar="TEXT",
                                       help="Body of the test message (default: a line naming the channel)."),
) -> None:
    """Send a test message to one channel. Exit 0 delivered, 1 not delivered, 2 bad input (an unknown
    channel, or a block that does not exist)."""
    from alerting.channels import BlockChannel, channel_for
    from alerting.render import render_test

    cfg = load(config)
    spec = cfg.channels.get(channel)
    if spec is None:
        bad = [p for p in cfg.problems if p.channel == channel]
        if bad:
            fail(str(bad[0]))
        fail(f"{config}: no channel named '{channel}' (defined: {', '.join(cfg.channels) or 'none'})")
    destination = channel_for(spec)
    block_ref = destination.block_ref if isinstance(destination, BlockChannel) else None
    api_url = _block_api(channel, *block_ref) if block_ref else None
    text = body or f"If you can read this, the channel '{channel}' works."
    with prefect_api.using(api_url):
        result = destination.send(render_test(title, text))
    if result.ok:
        out.print(f"[green]delivered[/] to {channel} ({result.target})", markup=True)
        raise typer.Exit(0)
    err.print(f"[bold red]not delivered[/] to {channel} ({result.target}): {result.error}", markup=True)
    raise typer.Exit(1)


@command(app, epilog="Prefect API: PREFECT_API_URL when set (it must answer), else the server at "
         "--host/--port, started here when nothing answers there; other commands find it (see README).")
def serve(
    config: Path = ConfigOption,
    interval: str | None = typer.Option(
        None, "--interval", metavar="DURATION", help="Run the flow every: 30s, 5m (default: the smallest "
        "monitor interval). Each run checks only the monitors whose own interval is due."),
    name: str = typer.Option("service-monitor", "--name", metavar="NAME", help="Deployment name."),
    host: str = typer.Option(
        "127.0.0.1", "--host", metavar="HOST", help="Host of the local Prefect server started when none is configured."),
    port: int = typer.Option(4200, "--port", metavar="PORT", help="Port of that local Prefect server (UI and API)."),
    shard: str | None = typer.Option(
        None, "--shard", metavar="I/N",
        help="Serve only shard I of N (e.g. 1/2) of the monitors; run one serve per shard."),
    runner: str = typer.Option(
        "continuous", "--runner", metavar="MODE",
        help="continuous (default): this process checks each monitor on its own interval and alerts at "
        "once; each flow run reports on those checks and ends Failed while a service is down. prefect: "
        "Prefect's runner starts a new process per flow run, which checks the monitors that are due "
        "(process isolation, ~2-3 s more CPU per cycle, checks only as precise as the schedule)."),
    in_process: bool = typer.Option(False, "--in-process", hidden=True, help="Accepted for old scripts: the default now."),
    status_page: str | None = typer.Option(
        None, "--status-page", metavar="HOST:PORT", help="Also serve the status page (status_page: in the "
        "config; rebuilt after each flow run) read-only at HOST:PORT, e.g. 127.0.0.1:8080."),
) -> None:
    """Serve the monitor flow on a schedule (Prefect deployment). Starts a local Prefect server with
    its UI when none is configured; Ctrl-C stops both."""
    from alerting.durations import parse_duration
    from alerting.schedule import smallest_interval

    _check_shard(shard)
    if runner not in ("continuous", "prefect"):
        fail(f"--runner: '{runner}' is not a mode: use continuous (the default) or prefect")
    if shard and name == "service-monitor":
        name = f"service-monitor-shard-{shard.replace('/', '-of-')}"
    cfg = load(config)
    report_problems(cfg)  # bad monitors are reported; the others are served
    refuse_bad_or_empty(cfg, config, problems_too=False)  # but not nothing at all
    if cfg.locations and (runner != "continuous" or shard):
        fail(f"{config}: field 'locations': checks from locations need the default runner and no --shard "
             "(the workers do the checking: see docs/scaling.md)")
    try:
        seconds = parse_duration(interval) if interval is not None else smallest_interval(cfg.monitors)
    except ValueError as exc:
        fail(f"--interval: {exc}")
    if seconds < 1:
        fail("--interval: must be at least 1s")
    page_server = _status_page_server(cfg, config, status_page) if status_page else None
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

    from flows.serving import AlreadyServed, LeaseUnavailable

    refused = None
    try:
        serve_monitor(config, seconds, name, server, shard, runner)
    except (KeyboardInterrupt, TerminationSignal):
        pass
    except (AlreadyServed, LeaseUnavailable) as exc:
        refused = str(exc)
    finally:
        _flush_prefect_logs()
        server.stop()
        if page_server is not None:
            page_server.shutdown()
        if refused is None:
            out.print("stopped")
    if refused is not None:
        fail(refused)
    if runner == "continuous":
        # Prefect's background workers of in-process runs are not daemon threads and can hold the
        # interpreter open after Ctrl-C; everything is flushed and stopped by now.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _status_page_server(cfg, config: Path, listen: str):
    """The read-only server of the config's status page, started in a thread; exit 2 on bad input."""
    import threading

    from alerting.status_page.build import site_dir
    from alerting.status_page.serve import make_server, parse_listen

    if cfg.status_page is None or not cfg.status_page.build_every_cycle:
        fail(f"{config}: field 'status_page': --status-page serves the page the served monitor builds; "
             "add a status_page: section (out: site) with build_every_cycle left on")
    try:
        host, port = parse_listen(listen)
        page_server = make_server(site_dir(cfg), host, port)  # type: ignore[arg-type]  # status_page is set
    except ValueError as exc:
        fail(f"--status-page: {exc}")
    except OSError as exc:
        fail(f"--status-page {listen}: {exc.strerror or exc}")
    threading.Thread(target=page_server.serve_forever, name="status-page", daemon=True).start()
    out.print(f"Status page: http://{host}:{page_server.server_address[1]}/ (read-only, rebuilt after each cycle "
              f"into {site_dir(cfg)})")
    return page_server


def _flush_prefect_logs() -> None:
    try:
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)
    except Exception:  # noqa: BLE001 - best effort on the way out
        pass
