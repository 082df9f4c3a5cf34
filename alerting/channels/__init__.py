"""Channels: where alerts go. One ``Channel`` protocol, one implementation per kind of target:

    AppriseChannel   an Apprise URL: Slack, Discord, e-mail (mailto://, mailtos://), json://, ...
    BlockChannel     block:<type-slug>/<name>: a Prefect notification block (ours or Prefect's)

E-mail is not a kind of its own: YAML e-mail channels are Apprise ``mailto://`` URLs, and the SMTP
E-mail Channel block (blocks/channels.py) builds such a URL and is reached as a block.

``channel_for(spec)`` is the one place that decides the kind of a target; ``target_problem`` is the
config's check of a target, by the same rule.
"""

from __future__ import annotations

from alerting.channels.apprise import PACING_ENV, AppriseChannel
from alerting.channels.apprise import target_problem as apprise_target_problem
from alerting.channels.base import Channel, DeliveryResult, parse_retry_after, url_secrets
from alerting.channels.block import (
    BLOCK_PREFIX,
    BlockChannel,
    block_target,
    is_block_target,
    notify_block,
    parse_block_ref,
)
from alerting.channels.block import target_problem as block_target_problem
from alerting.models import ChannelSpec

__all__ = [
    "BLOCK_PREFIX", "PACING_ENV", "AppriseChannel", "BlockChannel", "Channel", "DeliveryResult", "block_target",
    "channel_for", "is_block_target", "notify_block", "parse_block_ref", "parse_retry_after",
    "target_problem", "url_secrets",
]


def channel_for(spec: ChannelSpec) -> Channel:
    """The channel a spec names: a Prefect block for ``block:...``, else an Apprise URL."""
    target = spec.target.get_secret_value()
    if is_block_target(target):
        return BlockChannel(spec.name, target)
    return AppriseChannel(spec.name, spec.target)


def target_problem(target: str) -> str | None:
    """Why a channel target from the config cannot be used (one line), or None."""
    if is_block_target(target):
        return block_target_problem(target)
    return apprise_target_problem(target)
