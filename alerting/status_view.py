"""Status views for ``alerting status`` and the flow's table artifact: one row per monitor."""

from __future__ import annotations

from datetime import datetime, timedelta

from alerting.config import Config
from alerting.models import ErrorKind, MonitorState
from alerting.policy import active_window
from alerting.store import Store

UPTIME_WINDOWS = {"24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}


def status_rows(store: Store, config: Config, now: datetime, names: list[str] | None = None) -> list[dict]:
    """One row per configured monitor (or only those in ``names``): status, since, uptime, latency,
    last error, hold."""
    states = store.states()
    uptime = store.uptime(now, UPTIME_WINDOWS, names)
    latencies = store.latency_percentiles(now, UPTIME_WINDOWS["24h"], names=names)
    rows = []
    wanted = None if names is None else set(names)
    for spec in config.monitors:
        if wanted is not None and spec.name not in wanted:
            continue
        state = states.get(spec.name) or MonitorState(spec.name)
        window = active_window(list(spec.maintenance) + list(config.maintenance), now)
        p50, p95 = latencies.get(spec.name, [None, None])
        up = uptime.get(spec.name, {})
        rows.append({
            "monitor": spec.name,
            "status": shown_status(state),
            "since": state.since.isoformat(timespec="seconds") if state.since else None,
            "uptime_24h": _round(up.get("24h")),
            "uptime_7d": _round(up.get("7d")),
            "uptime_30d": _round(up.get("30d")),
            "p50_ms": _round(p50, 0),
            "p95_ms": _round(p95, 0),
            "last_error": state.last_error,
            "silenced_until": state.silenced_until.isoformat(timespec="seconds") if state.silenced_until and state.silenced(now) else None,
            "silence_reason": state.silence_reason if state.silenced(now) else None,
            "maintenance": window.label() if window else None,
            "flapping": state.flapping,
            "warning": state.warning_text if state.degraded else None,
        })
    return rows


def shown_status(state: MonitorState) -> str:
    """UP, DOWN, UNKNOWN, or on the warning level beside UP: PARTIAL (failing from fewer locations than
    the quorum) or DEGRADED (slow, certificate expiring)."""
    if state.degraded and state.status.value == "UP":
        return "PARTIAL" if state.warning_kind == ErrorKind.PARTIAL.value else "DEGRADED"
    return state.status.value


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)
