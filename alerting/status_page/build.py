"""Config + store -> the site on disk: ``build_site`` (``alerting status-page build``) and
``build_after_cycle`` (the served flow, after each recorded cycle: never raises, only logs)."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from alerting.config import Config
from alerting.models import utcnow
from alerting.status_page.badges import badge
from alerting.status_page.data import Page, build_page
from alerting.status_page.render import render_html, render_json
from alerting.status_page.spec import StatusPageSpec
from alerting.status_page.write import publish
from alerting.store import Store

log = logging.getLogger(__name__)


def site_dir(config: Config, out: str | Path | None = None) -> Path | None:
    """Where the site goes: ``out`` if given, else ``status_page.out`` relative to the config file."""
    if out is not None:
        return Path(out)
    if config.status_page is None:
        return None
    path = Path(config.status_page.out)
    return path if path.is_absolute() else Path(config.path).resolve().parent / path


def build_site(config: Config, store: Store, out: Path, now: datetime | None = None) -> Page:
    """Build the page from the store and write the whole site to ``out`` atomically."""
    spec = config.status_page or StatusPageSpec(out=str(out))
    page = build_page(store, config, spec, now or utcnow())
    files = {"index.html": render_html(page), "status.json": render_json(page)}
    files.update({f"badges/{m.id}.svg": badge(m) for m in page.monitors})
    publish(out, files)
    return page


def build_after_cycle(config: Config, store: Store, logger: logging.Logger | logging.LoggerAdapter = log) -> None:
    """The served flow's one call after a recorded cycle: rebuild the site when ``status_page:`` asks
    for it. A failure is logged (a warning): it never fails the run or stops an alert."""
    spec = config.status_page
    if spec is None or not spec.build_every_cycle:
        return
    out = site_dir(config)
    try:
        page = build_site(config, store, out)  # type: ignore[arg-type]  # set when status_page is
    except Exception as exc:  # noqa: BLE001 - the page is a view; the cycle's work is already committed
        logger.warning("Could not build the status page in %s: %s: %s", out, type(exc).__name__, exc)
        return
    for index, name in page.unknown:
        logger.warning("%s: field 'status_page.monitors[%d]': no monitor named %r (left off the status page)",
                       config.path, index, name)
