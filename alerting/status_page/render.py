"""The page as files: ``index.html`` (Jinja2, autoescaped: a public name is text, never markup) and
``status.json``. Pure: a ``Page`` in, strings out."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from functools import lru_cache

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from alerting.status_page.data import Monitor, Page

TEMPLATES = __file__.rsplit("/", 1)[0] + "/templates"
CLASS = {"up": "u", "minor": "n", "major": "x", "maintenance": "m", "none": "e"}


def iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds").replace("+00:00", "Z")


def when(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M UTC")


def pct(value: float | None) -> str:
    if value is None:
        return "no data"
    if value >= 100.0:
        return "100%"
    return f"{min(value, 99.99):.2f}%"  # never rounds a bad day up to 100


def span(d: timedelta) -> str:
    minutes = int(d.total_seconds() // 60)
    if minutes < 1:
        return "under a minute"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days {hours % 24} h"


def day_tokens(m: Monitor) -> str:
    """One token per day for the tooltips: ``100``, ``97.2~1`` (1 incident), ``m100`` (maintenance), ``-``."""
    out = []
    for d in m.days:
        up = d.uptime
        token = "-" if up is None else ("100" if up >= 100.0 else f"{min(up, 99.99):.2f}".rstrip("0").rstrip("."))
        if d.incidents:
            token += f"~{d.incidents}"
        out.append(("m" if d.maintenance else "") + token)
    return " ".join(out)


def cells(m: Monitor) -> Markup:
    """The bar: a one-row table, one cell per day. The row's most common kind is the table's class and
    its cells are bare ``<td>``; the others carry their class (a 90-day bar is ~0.4-1 KB). Constant
    markup only: nothing from the config or the store."""
    kinds = [d.kind for d in m.days]
    common = max(CLASS, key=kinds.count)
    row = "".join(["<td>" if k == common else f"<td class={CLASS[k]}>" for k in kinds])
    return Markup(f"<table class={CLASS[common]}><tr>{row}")


def bar_label(m: Monitor) -> str:
    bad = sum(1 for d in m.days if d.kind in ("minor", "major"))
    maint = sum(1 for d in m.days if d.maintenance)
    text = f"{len(m.days)}-day uptime {pct(m.uptime)}; {bad} day{'s' if bad != 1 else ''} with downtime"
    return text + (f"; maintenance on {maint} day{'s' if maint != 1 else ''}" if maint else "")


def points(latency: list[float | None]) -> str:
    top = max((v for v in latency if v is not None), default=None)
    if not top:
        return ""
    return " ".join(f"{i * 10},{38 - 34 * v / top:.0f}" for i, v in enumerate(latency) if v is not None)


def latest_ms(latency: list[float | None]) -> str:
    value = next((v for v in reversed(latency) if v is not None), None)
    return "no data" if value is None else f"{value:.0f} ms"


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                      trim_blocks=False, lstrip_blocks=False)
    env.globals.update(cells=cells, iso=iso, when=when, pct=pct, span=span, day_tokens=day_tokens,
                       bar_label=bar_label, points=points, latest_ms=latest_ms)
    return env


def render_html(page: Page) -> str:
    return _environment().get_template("index.html.j2").render(page=page, days=len(page.monitors[0].days) if page.monitors else 90)


def render_json(page: Page) -> str:
    def t(value: datetime | None) -> str | None:
        return None if value is None else iso(value)

    doc = {
        "title": page.title,
        "generated_at": t(page.now),
        "last_check": t(page.last_check),
        "overall": {"status": page.overall, "text": page.overall_text},
        "monitors": [
            {
                "id": m.id,
                "name": m.name,
                "status": m.status,
                "status_text": m.status_text,
                "since": t(m.since),
                "last_check": t(m.last_check),
                "uptime_90d": None if m.uptime is None else round(m.uptime, 3),
                "badge": f"badges/{m.id}.svg",
                "days": {  # one entry per UTC day, oldest first
                    "from": m.days[0].day.isoformat() if m.days else None,
                    "status": [d.kind for d in m.days],
                    "uptime": [None if d.uptime is None else round(d.uptime, 3) for d in m.days],
                    "incidents": [d.incidents for d in m.days],
                    "maintenance": [d.maintenance for d in m.days],
                },
                "response_ms_hourly": [None if v is None else round(v, 1) for v in m.latency],
            }
            for m in page.monitors
        ],
        "incidents": [
            {"monitor": i.monitor_id, "name": i.name, "started": t(i.started), "ended": t(i.ended),
             "duration_s": int(i.duration(page.now).total_seconds()), "summary": i.summary,
             "maintenance": i.maintenance}
            for i in page.incidents
        ],
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
