"""Outage alerting toolkit: the core (models, config, checks, rendering, delivery, CLI)."""

__version__ = "0.1.0"
