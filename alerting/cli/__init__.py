"""The ``alerting`` command (console script ``alerting = "alerting.cli:main"``).

One module per command group; each registers its commands on the app of ``alerting.cli.app``,
which imports none of them back:

    app.py            the typer app, consoles, fail(), config loading, block monitors, help tidying
    check.py          check URL, validate
    run.py            run, serve, drill, notify (they run the flow or send)
    monitor_state.py  status, history, silence, unsilence (a monitor's alert state)
    blocks.py         blocks register | list
    automations.py    automations apply | list | delete
    status_page.py    status-page build | serve
    worker.py         worker --location (a Prefect task worker of one location)

Which Prefect API each command talks to: alerting/prefect_api.py.
"""

from __future__ import annotations

import sys

# importing a command module registers its commands; this order is the order of `alerting --help`
from alerting.cli import automations, blocks, check, monitor_state, run, status_page, worker  # noqa: F401
from alerting.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    from alerting.redact import install_log_redaction

    install_log_redaction()  # no log line or traceback carries a known secret
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
