"""Old name of alerting/server_alerts.py, kept only for the modules that still import it
(alerting/config.py, flows/automations.py, flows/monitor.py); delete once they import the new name."""

from alerting.server_alerts import (  # noqa: F401
    DEFAULT_DEPLOYMENT,
    MIN_WINDOW,
    AutomationsSpec,
    Mode,
    hook_specs,
    skipped_channels,
)
