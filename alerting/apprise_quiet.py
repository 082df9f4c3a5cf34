"""Apprise URL parsing that never logs the URL: Apprise logs an unparseable URL as given, secrets
and all ("Unparseable URL ..."), and Prefect's logging setup would print that line."""

from __future__ import annotations

import logging
import threading

_LOCK = threading.Lock()


def instantiate_quietly(url: str):
    """The Apprise plugin for ``url``, or None when Apprise cannot use it; Apprise's log is muted."""
    import apprise

    log = logging.getLogger("apprise")
    with _LOCK:
        was_disabled, log.disabled = log.disabled, True
        try:
            return apprise.Apprise.instantiate(url, suppress_exceptions=True)
        finally:
            log.disabled = was_disabled


def apprise_accepts(url: str) -> bool:
    return instantiate_quietly(url) is not None
