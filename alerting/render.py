"""Alert texts: pure functions from check results to a title and a body per channel format."""

from __future__ import annotations

from dataclasses import dataclass

from alerting.models import CheckResult, MonitorSpec

DRILL_PREFIX = "[DRILL] "


@dataclass(frozen=True)
class AlertMessage:
    """One alert, rendered twice: Markdown for chat services and e-mail, plain text for the rest."""

    kind: str  # DOWN, RESOLVED, REMINDER, TEST ...
    monitor: str | None
    title: str
    markdown: str
    text: str
    severity: str = "info"  # Apprise notify type: info, success, warning, failure


def severity_of(kind: str) -> str:
    """Apprise notify type for an alert kind: DOWN and REMINDER are failures, RESOLVED a success."""
    return {
        "DOWN": "failure", "REMINDER": "failure", "DRILL": "failure", "RESOLVED": "success",
        "TEST": "info", "NOTICE": "warning", "RESTORED": "success",
    }.get(kind, "warning")


def with_alert_id(message: AlertMessage, short_id: str) -> AlertMessage:
    """The message with its ``Alert ID`` line: one id per alert, the same on every channel and retry,
    so a receiver or a person can tell a repeat from a new alert."""
    return AlertMessage(
        message.kind, message.monitor, message.title,
        f"{message.markdown}\n- **Alert ID:** {short_id}", f"{message.text}\nAlert ID: {short_id}",
        severity=message.severity,
    )


def render_notice(kind: str, title: str, lead: str, rows: list[tuple[str, str]]) -> AlertMessage:
    """A message about the monitoring itself (``NOTICE``: degraded, ``RESTORED``: back to normal)."""
    markdown, text = _doc(lead + ".", rows)
    prefix = "MONITORING DEGRADED" if kind == "NOTICE" else "MONITORING OK"
    return AlertMessage(kind, None, f"{prefix}: {title}", markdown, text, severity=severity_of(kind))


def _when(result: CheckResult) -> str:
    return result.checked_at.strftime("%Y-%m-%d %H:%M:%S UTC")


def _ms(value: float | None) -> str:
    return "n/a" if value is None else (f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms")


def render_down(
    result: CheckResult,
    spec: MonitorSpec,
    *,
    run_url: str | None = None,
    drill: bool = False,
) -> AlertMessage:
    """The DOWN alert for one service: what failed, attempts, latency, when, where."""
    title = f"{DRILL_PREFIX if drill else ''}DOWN: {spec.name}"
    what = result.message or result.summary()
    rows = [
        ("What failed", what),
        ("Expected", _expected(spec)),
        ("Attempts", f"{result.attempts} (last took {_ms(result.latency_ms)}; {_ms(result.elapsed_ms)} in all)"),
        ("When", _when(result)),
        ("URL", result.url),
    ]
    if run_url:
        rows.append((_link_label(run_url), run_url))
    lead = f"{spec.name} is DOWN: {result.summary()}."
    if drill:
        lead = (
            f"FIRE DRILL: this failure was simulated for {spec.name}; the service itself was not checked. "
            + lead
        )
    markdown = f"**{lead}**\n\n" + "\n".join(f"- **{k}:** {v}" for k, v in rows)
    text = lead + "\n\n" + "\n".join(f"{k}: {v}" for k, v in rows)
    return AlertMessage("DRILL" if drill else "DOWN", spec.name, title, markdown, text, severity="failure")


def _expected(spec: MonitorSpec) -> str:
    from alerting.checks import expectation  # each type says what passing means

    return expectation(spec)


def render_test(title: str, body: str) -> AlertMessage:
    return AlertMessage("TEST", None, title, body, body)


def cycle_message(
    results: list[CheckResult],
    invalid: list[str] | None = None,
    config_path: str = "",
    notes: dict[str, str] | None = None,
    not_due: int = 0,
    still_down: list[str] | None = None,
) -> tuple[bool, str]:
    """The flow's final state message; ``(True, ...)`` when every service is up and the config is clean.

    ``2 of 5 services down: api (HTTP 503), db (timeout after 3 attempts)``; ``notes`` adds the
    lifecycle view per service: ``api (HTTP 503; DOWN since 10:02:00 UTC)``.
    """
    notes = notes or {}
    down = [r for r in results if not r.ok]
    total = len(results)
    if down:
        listed = ", ".join(
            f"{r.monitor} ({r.summary()}{'; ' + notes[r.monitor] if r.monitor in notes else ''})" for r in down
        )
        message = f"{len(down)} of {total} service{'s' if total != 1 else ''} down: {listed}"
    else:
        message = f"all {total} service{'s' if total != 1 else ''} up" if total else "no monitors to check"
    degraded = [r for r in results if r.ok and r.warning is not None]
    if degraded:  # the warning level: named, but never a failed run
        message += "; degraded: " + ", ".join(f"{r.monitor} ({r.warning.value})" for r in degraded if r.warning)
    if not_due:
        if not total:
            message = "no monitor due for a check"
        message += f" ({not_due} not due this cycle)"
    if still_down:
        message += f"; still DOWN, not due for a check: {', '.join(still_down)}"
    if invalid:
        where = f" in {config_path}" if config_path else ""
        message += f"; {len(invalid)} config problem{'s' if len(invalid) != 1 else ''}{where}: " + "; ".join(invalid)
    return (not down and not invalid and not still_down), message


# --- lifecycle alerts (policy events) -------------------------------------------------------------

def _utc(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment is not None else "n/a"


def _doc(lead: str, rows: list[tuple[str, str]]) -> tuple[str, str]:
    markdown = f"**{lead}**\n\n" + "\n".join(f"- **{k}:** {v}" for k, v in rows)
    text = lead + "\n\n" + "\n".join(f"{k}: {v}" for k, v in rows)
    return markdown, text


def _link_label(url: str) -> str:
    """The continuous monitor links its deployment (no run exists yet when a check decides)."""
    return "Deployment" if "/deployments/" in url else "Flow run"


def render_event(event, spec: MonitorSpec, *, run_url: str | None = None) -> AlertMessage:
    """One DOWN / REMINDER / RESOLVED / FLAPPING alert from a policy ``AlertEvent``.

    Every text carries the alert's original time, so a message delivered late (after a channel
    outage or a crash) still says when it happened.
    """
    from alerting.durations import format_duration

    kind = event.kind.value
    result = event.result
    downtime = event.downtime
    lasted = format_duration(downtime.total_seconds()) if downtime is not None else "n/a"
    rows: list[tuple[str, str]] = []
    if kind == "DOWN":
        reason = event.last_error or (result.summary() if result else "down")
        lead = f"{spec.name} is DOWN: {reason}"
        rows = [
            ("Down since", _utc(event.down_since)),
            ("First error", event.first_error or "n/a"),
            ("Expected", _expected(spec)),
        ]
        if result is not None:
            rows.append(
                ("Attempts", f"{result.attempts} (last took {_ms(result.latency_ms)}; {_ms(result.elapsed_ms)} in all)")
            )
            rows.append(("Checked", _when(result)))
    elif kind == "REMINDER":
        lead = f"{spec.name} is still DOWN after {lasted}: {event.last_error or 'down'}"
        rows = [("Down since", _utc(event.down_since)), ("First error", event.first_error or "n/a"),
                ("Last error", event.last_error or "n/a")]
    elif kind in ("SLOW", "CERT_EXPIRING", "PARTIAL"):
        what = {"SLOW": "SLOW", "PARTIAL": "failing from some locations (PARTIAL)"}.get(
            kind, "up, but its certificate expires soon")
        lead = f"{spec.name} is {what}: {event.last_error or kind.lower()}"
        rows = [("Degraded since", _utc(event.down_since)), ("Expected", _expected(spec))]
        if spec.degraded_after is not None and kind == "SLOW":
            rows.append(("Slow means", f"slower than {_ms(spec.degraded_after * 1000)}"))
        if result is not None:
            rows.append(("Latency", f"{_ms(result.latency_ms)} (last attempt)"))
            rows.append(("Checked", _when(result)))
        rows.append(("Level", "warning: the service answers; this is not a DOWN"))
    elif kind == "RESOLVED" and event.level == "warning":
        was = ("failing from some locations" if "locations" in (event.last_error or "")
               else "slow" if "certificate" not in (event.last_error or "") else "degraded (certificate expiring)")
        lead = f"{spec.name} is no longer {was} after {lasted}"
        rows = [("Degraded", f"{_utc(event.down_since)} to {_utc(event.up_since)} ({lasted})"),
                ("Last warning", event.last_error or "n/a")]
        if result is not None:
            rows.append(("Latency now", _ms(result.latency_ms)))
    elif kind == "RESOLVED":
        lead = f"{spec.name} is back UP after {lasted} down"
        rows = [("Down", f"{_utc(event.down_since)} to {_utc(event.up_since)} ({lasted})"),
                ("First error", event.first_error or "n/a"), ("Last error", event.last_error or "n/a")]
    else:  # FLAPPING
        lead = f"{spec.name} is FLAPPING: {event.detail}"
        rows = [("Last error", event.last_error or "n/a")]
    if event.detail and kind != "FLAPPING":
        rows.append(("Note", event.detail))
    from alerting.redact import redact_target_url

    rows += [("Alert time", _utc(event.at)), ("URL", result.url if result else redact_target_url(spec.url))]
    if run_url:
        rows.append((_link_label(run_url), run_url))
    markdown, text = _doc(lead + ".", rows)
    shown_kind = "CERT EXPIRING" if kind == "CERT_EXPIRING" else kind
    state = "degraded" if event.level == "warning" else "down"
    title = f"{shown_kind}: {spec.name}" + (f" ({state} {lasted})" if kind == "RESOLVED" else "")
    return AlertMessage(kind, spec.name, title, markdown, text, severity=severity_of(kind))


def render_storm(events: list, *, run_url: str | None = None) -> AlertMessage:
    """One message for many monitors of the same kind in one run (an alert storm)."""
    kind = events[0].kind.value
    names = [e.monitor for e in events]
    at = min(e.at for e in events)
    verb = "DOWN" if kind == "DOWN" else "back UP" if kind == "RESOLVED" else kind
    from alerting.durations import format_duration

    def line(e) -> str:
        if kind == "RESOLVED" and e.level == "warning":
            return f"{e.monitor}: no longer degraded ({e.last_error or 'warning'})"
        if kind == "RESOLVED" and e.downtime is not None:
            return f"{e.monitor}: was down {format_duration(e.downtime.total_seconds())} ({e.last_error or 'down'})"
        return f"{e.monitor}: {e.last_error or verb}"

    lines = [line(e) for e in events]
    lead = f"{len(events)} services {verb}"
    rows = [("Alert time", _utc(at))] + ([(_link_label(run_url), run_url)] if run_url else [])
    markdown = f"**{lead}:**\n\n" + "\n".join(f"- {line}" for line in lines) + "\n\n" + "\n".join(
        f"- **{k}:** {v}" for k, v in rows)
    text = f"{lead}:\n\n" + "\n".join(lines) + "\n\n" + "\n".join(f"{k}: {v}" for k, v in rows)
    shown = ", ".join(names[:5]) + (f" +{len(names) - 5} more" if len(names) > 5 else "")
    return AlertMessage(kind, None, f"{kind}: {len(events)} services ({shown})", markdown, text, severity=severity_of(kind))
