"""The ``service-status`` table artifact each run publishes in the Prefect UI (capped in size)."""

from __future__ import annotations

from alerting.config import Config
from alerting.cycle import CycleReport
from alerting.models import Status, utcnow
from alerting.status_view import status_rows
from alerting.store import Store

ARTIFACT_ROWS = 100  # rows of the status table artifact (see artifact_rows)


def status_table(config: Config, report: CycleReport, store: Store | None) -> list[dict]:
    """The status table (as ``alerting status``) when the store is usable, else this run's results."""
    if store is not None and report.store_error is None:
        names = None
        if len(config.monitors) > ARTIFACT_ROWS:  # uptime and latency only for what is shown
            failing = {r.monitor for r in report.results if not r.ok}
            names = [
                name for name, st in report.states.items()
                if name in failing or st.status is not Status.UP or st.degraded or st.flapping or st.silenced_until is not None
            ][:ARTIFACT_ROWS]
        rows = status_rows(store, config, utcnow(), names)
        checked = {r.monitor: r for r in report.results}
        for row in rows:
            r = checked.get(row["monitor"])
            row["this_run"] = "" if r is None else ("ok" if r.ok else f"FAIL: {r.summary()}")
            row.update({k: ("" if v is None else v) for k, v in row.items()})
        return rows
    return [
        {
            "service": r.monitor,
            "status": "UP" if r.ok else "DOWN",
            "http": r.status_code if r.status_code is not None else "",
            "latency_ms": r.latency_ms if r.latency_ms is not None else "",
            "attempts": r.attempts,
            "error": r.message if not r.ok else "",
            "checked_at": r.checked_at.isoformat(timespec="seconds"),
        }
        for r in report.results
    ]


def artifact_rows(rows: list[dict], limit: int = ARTIFACT_ROWS, total: int | None = None) -> tuple[list[dict], str]:
    """At most ``limit`` rows: every monitor when they fit, else the ones that are not plainly UP.

    A keyed artifact is stored twice per run (the artifact and its collection-updated event): a
    full table of 1,000 monitors costs ~660 KB a run, most of the Prefect database's growth.
    """
    total = max(total or 0, len(rows))
    if total <= limit:
        return rows, ""
    notable = [
        r for r in rows
        if r.get("status") != "UP" or str(r.get("this_run", "")).startswith("FAIL")
        or r.get("silenced_until") or r.get("maintenance") or r.get("flapping")
    ]
    shown = notable[:limit]
    note = (f"\n\nShowing {len(shown)} of {total} monitors (those not plainly UP); "
            "`alerting status` lists them all.")
    return shown, note


async def publish_status_table(rows: list[dict], total: int, message: str, logger) -> None:
    """Never raises: the UI table is a nicety, never a reason to fail a run."""
    from prefect.artifacts import acreate_table_artifact

    shown, note = artifact_rows(rows, total=total)
    try:
        await acreate_table_artifact(table=shown, key="service-status", description=f"**{message}**{note}")
    except Exception as exc:  # noqa: BLE001
        logger.warning("Could not publish the status table: %s", exc)
