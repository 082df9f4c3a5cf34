"""``alerting status | history | silence | unsilence``: the alert lifecycle seen from the shell."""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from alerting.cli import ConfigOption, _load, _report_problems, app, fail, out
from alerting.config import Config
from alerting.models import utcnow


@contextmanager
def _store(cfg: Config, config: Path):
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


def _monitor(cfg: Config, config: Path, name: str) -> str:
    """The monitor's name, or exit 2 with its config problem (or the names that exist)."""
    bad = next((p for p in cfg.problems if p.monitor == name), None)
    if bad is not None:
        fail(str(bad))
    try:
        return cfg.monitor(name).name
    except KeyError as exc:
        fail(str(exc.args[0]))


def _pct(value) -> str:
    return "" if value is None else f"{value:.2f}%"


def _ms(value) -> str:
    return "" if value is None else f"{value:.0f} ms"


@app.command()
def status(
    config: Path = ConfigOption,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Per monitor: status, since, uptime 24h/7d/30d, p50/p95 latency (24h), last error, silence or
    maintenance. Reads the state store; runs no checks. Exit 0; 2 on bad input (a bad monitor in
    the config is reported after the table of the good ones)."""
    from alerting.status_view import status_rows

    cfg = _load(config)
    with _store(cfg, config) as store:
        rows = status_rows(store, cfg, utcnow())
    if as_json:
        print(json.dumps({"monitors": rows, "problems": [str(p) for p in cfg.problems]}))
        _report_problems(cfg)
        raise typer.Exit(2 if cfg.problems else 0)
    table = Table(title=f"{len(rows)} monitor(s) in {config}; uptime and latency from the state store",
                  title_justify="left")
    for col in ("monitor", "status", "since (UTC)", "24h", "7d", "30d", "p50", "p95"):
        table.add_column(col, no_wrap=True)
    table.add_column("last error", overflow="fold")
    table.add_column("note", overflow="fold")
    colour = {"UP": "green", "DOWN": "bold red", "UNKNOWN": "yellow"}
    for r in rows:
        note = []
        if r["silenced_until"]:
            until = r["silenced_until"][:16].replace("T", " ")
            note.append(f"silenced until {until} UTC" + (f" ({r['silence_reason']})" if r["silence_reason"] else ""))
        if r["maintenance"]:
            note.append(f"maintenance: {r['maintenance']}")
        if r["flapping"]:
            note.append("flapping")
        table.add_row(
            r["monitor"], f"[{colour[r['status']]}]{r['status']}[/]", (r["since"] or "")[:16].replace("T", " "),
            _pct(r["uptime_24h"]), _pct(r["uptime_7d"]), _pct(r["uptime_30d"]),
            _ms(r["p50_ms"]), _ms(r["p95_ms"]), r["last_error"] or "", "; ".join(note),
        )
    out.print(table)
    _report_problems(cfg)
    raise typer.Exit(2 if cfg.problems else 0)


@app.command()
def history(
    monitor: str = typer.Argument(..., help="Monitor name."),
    config: Path = ConfigOption,
    limit: int = typer.Option(20, "--limit", min=1, max=100000, help="Most recent checks to show."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """The most recent checks of one monitor, newest first. Exit 0, or 2 on bad input."""
    cfg = _load(config)
    name = _monitor(cfg, config, monitor)
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


@app.command()
def silence(
    monitor: str = typer.Argument(..., help="Monitor name."),
    config: Path = ConfigOption,
    duration: str = typer.Option(..., "--for", help="How long: 30m, 2h, 1d."),
    reason: Optional[str] = typer.Option(None, "--reason", help="Why (shown by alerting status)."),
) -> None:
    """Hold every alert of MONITOR for a while (checks and history go on). Exit 0, or 2 on bad input."""
    from alerting.durations import format_duration, parse_duration

    cfg = _load(config)
    name = _monitor(cfg, config, monitor)
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


@app.command()
def unsilence(
    monitor: str = typer.Argument(..., help="Monitor name."),
    config: Path = ConfigOption,
) -> None:
    """End a silence now; a DOWN still going on is sent at the next run. Exit 0, or 2 on bad input."""
    cfg = _load(config)
    name = _monitor(cfg, config, monitor)
    with _store(cfg, config) as store:
        store.silence(name, None, None, utcnow())
    out.print(f"{name} is no longer silenced")
    raise typer.Exit(0)
