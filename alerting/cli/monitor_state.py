"""``alerting status | history | silence | unsilence``: each monitor's alert state, seen and changed
from the shell. Monitors come from the YAML file and, when a Prefect API answers (the rule in
alerting/prefect_api.py), from Service Monitor blocks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from alerting import prefect_api
from alerting.cli.app import ConfigOption, app, command, err, fail, load, out, report_problems, with_block_monitors
from alerting.config import Config
from alerting.models import utcnow

if TYPE_CHECKING:
    from alerting.store import Store


@contextmanager
def _store(cfg: Config, config: Path) -> Iterator[Store]:
    """The state store, or exit 2 naming the file and ``state_url``; closed afterwards."""
    from alerting.cycle import open_store
    from alerting.store import StoreError

    try:
        store = open_store(cfg)
    except StoreError as exc:
        fail(f"{config}: field 'state_url': {exc}")
    try:
        yield store
    finally:
        store.close()


def _monitor(cfg: Config, config: Path, name: str) -> tuple[Config, str]:
    """(the config, the monitor's name), or exit 2 with its config problem (or the names that exist).
    A name that is not in the YAML file is looked up among the Service Monitor blocks too."""
    if name not in {m.name for m in cfg.monitors}:
        cfg = with_block_monitors(cfg)
    bad = next((p for p in cfg.problems if p.monitor == name), None)
    if bad is not None:
        fail(str(bad))
    try:
        return cfg, cfg.monitor(name).name
    except KeyError as exc:
        fail(str(exc.args[0]))


def _pct(value) -> str:
    return "" if value is None else f"{value:.2f}%"


def _ms(value) -> str:
    return "" if value is None else f"{value:.0f} ms"


def _note(r: dict) -> str:
    note = []
    if r["silenced_until"]:
        until = r["silenced_until"][:16].replace("T", " ")
        note.append(f"silenced until {until} UTC" + (f" ({r['silence_reason']})" if r["silence_reason"] else ""))
    if r["maintenance"]:
        note.append(f"maintenance: {r['maintenance']}")
    if r["flapping"]:
        note.append("flapping")
    return "; ".join(note)


def _status_table(rows: list[dict], config: Path, wide: bool) -> Table:
    """Fits the terminal (80 columns when output is not a terminal): the essential columns, long
    names and errors wrapped. ``wide``: every column, nothing wrapped."""
    colour = {"UP": "green", "DOWN": "bold red", "UNKNOWN": "yellow", "DEGRADED": "yellow", "PARTIAL": "yellow"}
    table = Table(title=f"{len(rows)} monitor(s) in {config}; uptime and latency from the state store; "
                  "times UTC", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    if wide:
        for col in ("monitor", "status", "since", "24h", "7d", "30d", "p50", "p95", "last error", "note"):
            table.add_column(col, no_wrap=True)
    else:
        table.add_column("monitor", overflow="fold", min_width=8, ratio=2)
        for col in ("status", "since", "24h", "30d", "p95"):
            table.add_column(col, no_wrap=True)
        table.add_column("last error / note", overflow="fold", min_width=12, ratio=3)
    for r in rows:
        since = (r["since"] or "")[:16].replace("T", " ")
        state = f"[{colour[r['status']]}]{r['status']}[/]"
        if wide:
            table.add_row(r["monitor"], state, since, _pct(r["uptime_24h"]), _pct(r["uptime_7d"]),
                          _pct(r["uptime_30d"]), _ms(r["p50_ms"]), _ms(r["p95_ms"]), r["last_error"] or "", _note(r))
        else:
            detail = "; ".join(x for x in (r["last_error"], _note(r)) if x)
            table.add_row(r["monitor"], state, since[5:], _pct(r["uptime_24h"]), _pct(r["uptime_30d"]),
                          _ms(r["p95_ms"]), detail)
    return table


@command(app, epilog=f"Monitors made in the Prefect UI count too. {prefect_api.RULE}")
def status(
    config: Path = ConfigOption,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    wide: bool = typer.Option(False, "--wide", help="Every column at full width (7d, p50, and no wrapping), "
                              "however long the lines get."),
) -> None:
    """Per monitor: status, since, uptime 24h/7d/30d, p50/p95 latency (24h), last error, silence or
    maintenance. Reads the state store; runs no checks. Exit 0; 2 on bad input (a bad monitor in
    the config is reported after the table of the good ones)."""
    from alerting.status_view import status_rows

    cfg = with_block_monitors(load(config))
    with _store(cfg, config) as store:
        rows = status_rows(store, cfg, utcnow())
        lost = [{"alert_id": r.short_id, "title": r.title, "channel": r.channel, "attempts": r.attempts,
                 "created_at": r.created_at.isoformat(timespec="seconds"), "last_error": r.last_error}
                for r in store.undeliverable()]
    if as_json:
        print(json.dumps({"monitors": rows, "undeliverable": lost, "problems": [str(p) for p in cfg.problems]}))
        report_problems(cfg)
        raise typer.Exit(2 if cfg.problems else 0)
    table = _status_table(rows, config, wide)
    if wide:  # as wide as the table needs, whatever the terminal
        measure = Console(width=100_000)
        width = Measurement.get(measure, measure.options, table).maximum
        Console(highlight=False, width=width).print(table)
    else:
        out.print(table, soft_wrap=False)  # the title wraps too
    if lost:
        err.print(f"[bold red]{len(lost)} undeliverable alert(s)[/] (every attempt failed; see the channel):",
                  markup=True)
        for a in lost[-20:]:
            err.print(f"  {a['created_at']} {a['title']} -> {a['channel']} (Alert ID {a['alert_id']}, "
                      f"{a['attempts']} attempts): {a['last_error']}", markup=False)
    report_problems(cfg)
    raise typer.Exit(2 if cfg.problems else 0)


@command(app, epilog=f"Monitors made in the Prefect UI count too. {prefect_api.RULE}")
def history(
    monitor: str = typer.Argument(..., metavar="MONITOR", help="Monitor name (from the YAML file or a Service Monitor block)."),
    config: Path = ConfigOption,
    limit: int = typer.Option(20, "--limit", metavar="N", min=1, max=100000, help="Most recent checks to show."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """The most recent checks of one monitor, newest first. Exit 0, or 2 on bad input."""
    cfg, name = _monitor(load(config), config, monitor)
    with _store(cfg, config) as store:
        rows = store.history(name, limit)
    if as_json:
        print(json.dumps({"monitor": name, "checks": [{**r, "checked_at": r["checked_at"].isoformat()} for r in rows]}))
        raise typer.Exit(0)
    table = Table(title=f"{name}: last {len(rows)} check(s)", title_justify="left")
    for col in ("checked at (UTC)", "result", "HTTP", "latency", "error"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["checked_at"].strftime("%Y-%m-%d %H:%M:%S"), "[green]ok[/]" if r["ok"] else "[bold red]FAIL[/]",
            str(r["status_code"] or ""), _ms(r["latency_ms"]), r["error"] or "",
        )
    out.print(table)
    raise typer.Exit(0)


@command(app, epilog=f"Monitors made in the Prefect UI count too. {prefect_api.RULE}")
def silence(
    monitor: str = typer.Argument(..., metavar="MONITOR", help="Monitor name (from the YAML file or a Service Monitor block)."),
    config: Path = ConfigOption,
    duration: str = typer.Option(..., "--for", metavar="DURATION", help="How long: 30m, 2h, 1d."),
    reason: str | None = typer.Option(None, "--reason", metavar="TEXT", help="Why (shown by alerting status)."),
) -> None:
    """Hold every alert of MONITOR for a while (checks and history go on). Exit 0, or 2 on bad input."""
    from alerting.durations import format_duration, parse_duration

    cfg, name = _monitor(load(config), config, monitor)
    try:
        seconds = parse_duration(duration)
    except ValueError as exc:
        fail(f"--for: {exc}")
    if seconds <= 0:
        fail("--for: must be longer than 0s")
    now = utcnow()
    with _store(cfg, config) as store:
        state = store.silence(name, now + timedelta(seconds=seconds), reason, now)
    out.print(f"{name} silenced for {format_duration(seconds)}, until "
              f"{state.silenced_until:%Y-%m-%d %H:%M:%S} UTC" + (f" ({reason})" if reason else ""))
    raise typer.Exit(0)


@command(app, epilog=f"Monitors made in the Prefect UI count too. {prefect_api.RULE}")
def unsilence(
    monitor: str = typer.Argument(..., metavar="MONITOR", help="Monitor name (from the YAML file or a Service Monitor block)."),
    config: Path = ConfigOption,
) -> None:
    """End a silence now; a DOWN still going on is sent at the next run. Exit 0, or 2 on bad input."""
    cfg, name = _monitor(load(config), config, monitor)
    with _store(cfg, config) as store:
        store.silence(name, None, None, utcnow())
    out.print(f"{name} is no longer silenced")
    raise typer.Exit(0)
