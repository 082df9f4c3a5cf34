"""Sending rendered messages to one channel: a thin wrapper over ``alerting.channels``.

Each kind of channel (an Apprise URL, a Prefect notification block) is one implementation of the
``Channel`` protocol in alerting/channels/, made by ``channel_for``; results are read, never assumed,
and every reason is scrubbed of the channel's secrets. What to send, when and how often is
alerting/outbox.py's job.
"""

from __future__ import annotations

from alerting.channels import (
    PACING_ENV,
    Channel,
    DeliveryResult,
    channel_for,
    notify_block,
    parse_retry_after,
)
from alerting.models import ChannelSpec
from alerting.render import AlertMessage

__all__ = [
    "PACING_ENV", "Channel", "DeliveryResult", "channel_for", "notify_block", "parse_retry_after", "send",
    "with_prefect_settings",
]


def send(channel: ChannelSpec, messages: list[AlertMessage]) -> list[DeliveryResult]:
    """Send messages to the channel a spec names, in order; never raises. A caller that sends to
    the same channel again should keep ``channel_for(spec)`` and call its ``send`` (Apprise's pacing
    is per channel object)."""
    if not messages:
        return []
    target = channel_for(channel)
    return [target.send(message) for message in messages]


def with_prefect_settings(fn):
    """Worker threads do not inherit context variables, so they would miss Prefect settings set
    with ``temporary_settings`` (e.g. the API URL of the server ``alerting serve`` started) and
    load blocks from the wrong API. Carry the caller's settings into the thread."""
    try:
        from prefect.context import SettingsContext
    except ImportError:  # pragma: no cover
        return fn
    current = SettingsContext.get()
    if current is None:
        return fn

    def run(*args):
        with SettingsContext(profile=current.profile, settings=current.settings):
            return fn(*args)

    return run
