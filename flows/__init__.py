"""Prefect orchestration: the service-monitor flow, its hooks, and serving it."""
