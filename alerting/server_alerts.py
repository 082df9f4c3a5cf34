"""Server-side alerts: the ``automations:`` section of the config (``AutomationsSpec``), and which
channels the flow's hooks leave to the Prefect server's automations (``hook_specs``).

Pure values, no Prefect: what to create (flows/automations.py builds and applies it) and which
channels the flow's own hooks leave to the server (``hook_specs``), so that with ``mode: both`` a
person never gets the same DOWN twice on one channel. See docs/automations.md.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from alerting.channels import BlockChannel, channel_for, parse_block_ref
from alerting.durations import parse_duration
from alerting.models import Duration, MonitorSpec

DEFAULT_DEPLOYMENT = "service-monitor/service-monitor"
MIN_WINDOW = 10.0  # Prefect's minimum for a proactive trigger's window, seconds
_INTERVALS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(x|intervals?)\s*$", re.IGNORECASE)
Mode = Literal["hook", "automation", "both"]


class AutomationsSpec(BaseModel):
    """``automations:`` in the YAML file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    block: str = Field(description="notification block the server sends through: block:<type-slug>/<name>")
    mode: Mode = Field(
        default="both",
        description="who alerts a failing run: hook (the flow's hooks only), automation (the server only), "
        "both (hooks, except on the automation's own channel)",
    )
    deployment: str = Field(default=DEFAULT_DEPLOYMENT, description="<flow>/<deployment> of the served monitor")
    stale_after: str | float = Field(
        default="3x",
        description="no finished run for this long means the monitor is not running: Kx (K intervals) or a duration",
    )
    late_after: Duration = Field(default=300.0, description="a run still Late this long after Prefect marked it Late")

    @field_validator("block")
    @classmethod
    def _block_ref(cls, value: str) -> str:
        if not parse_block_ref(value.strip()):
            raise ValueError(f"expected block:<block-type-slug>/<document-name>, got {value!r}")
        return value.strip()

    @field_validator("deployment")
    @classmethod
    def _deployment(cls, value: str) -> str:
        flow, sep, name = value.strip().partition("/")
        if not sep or not flow or not name or "/" in name:
            raise ValueError(f"expected <flow>/<deployment>, e.g. {DEFAULT_DEPLOYMENT}, got {value!r}")
        return value.strip()

    @field_validator("stale_after", mode="before")
    @classmethod
    def _stale(cls, value: object) -> object:
        if isinstance(value, str) and (match := _INTERVALS.match(value)):
            if float(match.group(1)) < 1:
                raise ValueError("use at least 1x the interval (2x or 3x is sensible)")
            return f"{float(match.group(1)):g}x"
        seconds = parse_duration(value)  # raises with a readable reason
        if seconds < MIN_WINDOW:
            raise ValueError(f"at least {MIN_WINDOW:g}s (Prefect's minimum for a proactive trigger)")
        return seconds

    @field_validator("late_after")
    @classmethod
    def _late_bound(cls, value: float) -> float:
        if value < MIN_WINDOW:
            raise ValueError(f"at least {MIN_WINDOW:g}s (Prefect's minimum for a proactive trigger)")
        return value

    @property
    def block_ref(self) -> tuple[str, str]:
        ref = parse_block_ref(self.block)
        assert ref
        return ref

    def stale_seconds(self, interval: float) -> float:
        """The watcher's window for a deployment that runs every ``interval`` seconds."""
        if isinstance(self.stale_after, str):
            seconds = float(self.stale_after.removesuffix("x")) * interval
        else:
            seconds = float(self.stale_after)
        return max(MIN_WINDOW, seconds)

    @property
    def server_alerts_runs(self) -> bool:
        """Does the server alert failed runs (and their recovery)?"""
        return self.mode in ("automation", "both")


def skipped_channels(config, deployment: str | None) -> set[str]:
    """Channels the flow's hooks leave to the server for a run of ``deployment`` (``<flow>/<name>``).

    Only runs of the watched deployment are affected: the server's automations see no other run.
    ``both``: the channel(s) whose target is the automation's block; ``automation``: every channel.
    """
    spec: AutomationsSpec | None = getattr(config, "automations", None)
    if spec is None or not spec.server_alerts_runs or deployment != spec.deployment:
        return set()
    if spec.mode == "automation":
        return set(config.channels)
    return {name for name, channel in config.channels.items()
            if isinstance(ch := channel_for(channel), BlockChannel) and ch.block_ref == spec.block_ref}


def hook_specs(config, specs: list[MonitorSpec], deployment: str | None) -> list[MonitorSpec]:
    """``specs`` with the channels the server alerts taken out (see ``skipped_channels``)."""
    skip = skipped_channels(config, deployment)
    if not skip:
        return specs
    return [s.model_copy(update={"channels": [c for c in s.channels if c not in skip]}) for s in specs]
