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
        rows.append(("Flow run", run_url))
    lead = f"{spec.name} is DOWN: {result.summary()}."
    if drill:
        lead = (
            f"FIRE DRILL: this failure was simulated for {spec.name}; the service itself was not checked. "
            + lead
        )
    markdown = f"**{lead}**\n\n" + "\n".join(f"- **{k}:** {v}" for k, v in rows)
    text = lead + "\n\n" + "\n".join(f"{k}: {v}" for k, v in rows)
    return AlertMessage("DOWN", spec.name, title, markdown, text, severity="failure")


def _expected(spec: MonitorSpec) -> str:
    parts = [spec.expectation()]
    if spec.contains is not None:
        parts.append(f"body contains {spec.contains!r}")
    if spec.not_contains is not None:
        parts.append(f"body without {spec.not_contains!r}")
    return ", ".join(parts)


def render_test(title: str, body: str) -> AlertMessage:
    return AlertMessage("TEST", None, title, body, body)


def cycle_message(results: list[CheckResult], invalid: list[str] | None = None, config_path: str = "") -> tuple[bool, str]:
    """The flow's final state message; ``(True, ...)`` when every service is up and the config is clean.

    ``2 of 5 services down: api (HTTP 503), db (timeout after 3 attempts)``
    """
    down = [r for r in results if not r.ok]
    total = len(results)
    if down:
        listed = ", ".join(f"{r.monitor} ({r.summary()})" for r in down)
        message = f"{len(down)} of {total} service{'s' if total != 1 else ''} down: {listed}"
    else:
        message = f"all {total} service{'s' if total != 1 else ''} up" if total else "no monitors to check"
    if invalid:
        where = f" in {config_path}" if config_path else ""
        message += f"; {len(invalid)} config problem{'s' if len(invalid) != 1 else ''}{where}: " + "; ".join(invalid)
    return (not down and not invalid), message
