"""``alerting worker --location NAME``: a Prefect task worker that checks for one location."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import typer

from alerting.cli.app import ConfigOption, app, command, err, fail, load, out, report_problems


@command(app, epilog="Prefect API: PREFECT_API_URL when set, else the local server `alerting serve` started "
         "(it must answer). Every worker reads the same config file as the scheduler (`alerting serve`).")
def worker(
    config: Path = ConfigOption,
    location: str = typer.Option(..., "--location", metavar="NAME",
                                 help="The location this machine checks from: one of the config's 'locations:'."),
    limit: int = typer.Option(16, "--limit", metavar="N", min=1, max=1000,
                              help="Batches checked at once (each batch runs its checks in the config's concurrency)."),
) -> None:
    """Check the monitors that the scheduler (`alerting serve` with `locations:` in the config) sends to
    this location: a Prefect task worker of the location's check-batch task. Run as many per location
    as you like; Prefect hands each batch to one of them, and a worker that stops loses only the
    batches it held (sent again next cycle). Ctrl-C stops it."""
    cfg = load(config)
    report_problems(cfg)
    if not cfg.locations:
        fail(f"{config}: field 'locations': not set: list the locations (such as [eu-west, us-east]) "
             "that workers check from")
    if location not in cfg.locations:
        fail(f"{config}: field 'locations': unknown location '{location}' (defined: {', '.join(cfg.locations)})")
    from alerting import prefect_api

    try:
        api = prefect_api.find()
    except prefect_api.NoPrefectAPI as exc:
        fail(str(exc))
    os.environ["PREFECT_API_URL"] = api.url
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def _terminate(signum, frame):  # SIGTERM stops it like Ctrl-C does
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    out.print(f"Worker for location '{location}': {len(cfg.monitors)} monitor(s) in {config}, Prefect API "
              f"{api.url}. Ctrl-C to stop.")
    from alerting.store import Store, StoreError
    from flows.location_tasks import serve_location

    try:  # batches and their results go through the state store: without it this worker can do nothing
        store = Store(cfg.resolved_state_url())
    except StoreError as exc:
        fail(f"{config}: field 'state_url': {exc} (workers read their batches from the state store)")
    with prefect_api.using(api.url):
        try:
            serve_location(config.resolve(), cfg, location, limit=limit, store=store)
        except KeyboardInterrupt:
            pass
    err.print("stopped")
