"""One line, not a traceback, for Prefect's own errors in what a person reads (serve output, flow logs)."""

from __future__ import annotations

import logging
import os
from pathlib import Path


class OneLineErrors(logging.Filter):
    """Prefect's own warnings about a lost connection carry a traceback; a person reading the serve
    output needs one line (the exception type), not Prefect's internals."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is None:  # logged with exc_info but no exception:
            record.exc_info = None  # Prefect's formatter would print "NoneType: None"
        if record.exc_info and record.exc_info[1] is not None and not record.name.startswith("alerting"):
            exc = record.exc_info[1]
            while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
                exc = exc.exceptions[0]
            record.msg = f"{record.getMessage()} ({type(exc).__name__}: {str(exc)[:200]})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_prefect_tracebacks() -> None:
    """Put the filter on every handler of the root and the ``prefect.*`` loggers (idempotent)."""
    names = [""] + [n for n in list(logging.root.manager.loggerDict) if n == "prefect" or n.startswith("prefect.")]
    for name in names:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, OneLineErrors) for f in handler.filters):
                handler.addFilter(OneLineErrors())


LOGGING_CONFIG = Path(__file__).with_name("logging.yml")


def quiet_child_processes() -> None:
    """Flow-run processes that Prefect's runner starts read this config (unless the user set one)."""
    os.environ.setdefault("PREFECT_LOGGING_SETTINGS_PATH", str(LOGGING_CONFIG))


def _service_loop_printer(*args: object, **_: object) -> None:
    text = " ".join(str(a) for a in args).strip()
    if not text:
        return
    if "Traceback (most recent call last)" in text:
        text = text.splitlines()[-1]  # the exception itself
    logging.getLogger("prefect.runner").warning("%s", text)


def quiet_prefect_service_loops() -> None:
    """Prefect's runner polls the API in ``critical_service_loop``, which *prints* whole tracebacks
    (not logs them) when the API is away. Its ``printer`` default becomes one log line per error."""
    from prefect.utilities import services

    loop = services.critical_service_loop
    defaults = loop.__defaults__ or ()
    if print in defaults:
        loop.__defaults__ = tuple(_service_loop_printer if d is print else d for d in defaults)
