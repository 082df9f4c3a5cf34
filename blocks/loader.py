"""Monitors and channels from Prefect blocks, merged with the YAML config for one flow run.

Lookup rule for a monitor block's ``channels`` (each name, in this order):

1. ``block:<type-slug>/<name>``: that notification block, any type (ours or Prefect's);
2. a channel defined in the YAML file (``channels:``) with that name;
3. a notification block whose block name is that name (Apprise Channel, SMTP E-mail Channel,
   Slack Webhook, ...). Two blocks of different types with that name is an ambiguity: use rule 1.

A name none of these find is a problem for that monitor alone (its other channels still alert).
A block monitor whose service name is also a YAML monitor's name is a problem naming both; the
YAML monitor runs, the block monitor does not (no silent override). A block that does not
validate is a problem for that block alone.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace

from pydantic import SecretStr, ValidationError

from alerting.channels import block_target, is_block_target, parse_block_ref
from alerting.config import ChannelSpec, Config, ConfigProblem, pydantic_problems
from blocks.monitor import ServiceMonitor

MONITOR_SLUG = ServiceMonitor.get_block_type_slug()
PAGE = 200  # Prefect's default API page size
log = logging.getLogger(__name__)
TAG_ENV = "ALERTING_MONITOR_TAG"  # only monitor blocks with this tag, when the flow parameter is unset


@dataclass
class BlockConfig:
    """What the Prefect blocks add to a config: monitors, the channels they resolved, problems."""

    monitors: list = field(default_factory=list)
    channels: dict[str, ChannelSpec] = field(default_factory=dict)
    problems: list[ConfigProblem] = field(default_factory=list)


def _where(document_name: str) -> str:
    return f"Prefect block {MONITOR_SLUG}/{document_name}"


async def read_all(read, *args, page: int = PAGE, **kwargs) -> list:
    """All results of a paged Prefect client read (the API returns at most one page per call)."""
    found: list = []
    while True:
        batch = await read(*args, offset=len(found), limit=page, **kwargs)
        found.extend(batch)
        if len(batch) < page:
            return found


async def _read_documents(client):
    """(monitor documents, {document name: [type slugs]} of notification blocks)."""
    from prefect.exceptions import ObjectNotFound

    try:
        monitors = await read_all(client.read_block_documents_by_type, MONITOR_SLUG, include_secrets=True)
    except ObjectNotFound:
        monitors = []  # the type is not registered on this server: no monitor blocks
    notifiers: dict[str, list[str]] = {}
    for doc in await read_all(client.read_block_documents, include_secrets=False):
        schema = getattr(doc, "block_schema", None)
        if doc.is_anonymous or schema is None or "notify" not in (schema.capabilities or []):
            continue
        notifiers.setdefault(doc.name, []).append(doc.block_type.slug)
    return monitors, notifiers


def _resolve_channels(spec, where: str, config: Config, notifiers: dict[str, list[str]], out: BlockConfig):
    kept = []
    for name in spec.channels:
        if is_block_target(name):
            ref = parse_block_ref(name)
            if ref and ref[1] in notifiers and ref[0] in notifiers[ref[1]]:
                out.channels[name] = ChannelSpec(name=name, target=SecretStr(name))
                kept.append(name)
            else:
                out.problems.append(
                    ConfigProblem(where, f"no notification block {name!r}", monitor=spec.name, field="channels")
                )
        elif name in config.channels:
            kept.append(name)
        elif len(notifiers.get(name, [])) == 1:
            target = block_target(notifiers[name][0], name)
            out.channels.setdefault(name, ChannelSpec(name=name, target=SecretStr(target)))
            kept.append(name)
        elif name in notifiers:
            refs = ", ".join(block_target(slug, name) for slug in sorted(notifiers[name]))
            out.problems.append(
                ConfigProblem(where, f"channel {name!r} is ambiguous: name one of {refs}", monitor=spec.name, field="channels")
            )
        else:
            out.problems.append(
                ConfigProblem(
                    where,
                    f"undefined channel {name!r}: no channel of that name in {config.path} and no notification block named so",
                    monitor=spec.name,
                    field="channels",
                )
            )
    return spec.model_copy(update={"channels": kept})


def _stored_url_in_clear(doc) -> bool:
    """True for a document saved by the old schema, whose ``url`` the API shows without secrets."""
    schema = getattr(doc, "block_schema", None)
    if schema is None or not isinstance(doc.data, dict) or "url" not in doc.data:
        return False
    return "url" not in ((schema.fields or {}).get("secret_fields") or [])


async def upgrade_old_documents(client, monitors) -> list[str]:
    """Re-save Service Monitor documents stored before ``url`` was a secret field, with today's schema,
    so the Prefect API (without secrets), the UI and later events mask their URL. The values are kept
    (an old numeric ``timeout`` becomes the same number of seconds). A document that does not
    validate is left as it is (it is reported as a problem anyway). Returns the upgraded names."""
    upgraded = []
    for doc in monitors:
        if not _stored_url_in_clear(doc):
            continue
        try:
            block = ServiceMonitor.model_validate(doc.data)
            await block.asave(doc.name, overwrite=True, client=client)
        except Exception as exc:  # noqa: BLE001 - the monitor still runs from the data just read
            log.warning("Could not re-save %s with a secret url field: %s", _where(doc.name), type(exc).__name__)
            continue
        log.info("%s was stored with its url in clear; re-saved with the url as a secret field", _where(doc.name))
        upgraded.append(doc.name)
    return upgraded


async def _read_and_upgrade(client):
    monitors, notifiers = await _read_documents(client)
    await upgrade_old_documents(client, monitors)
    return monitors, notifiers


async def load_block_config(config: Config, tag: str | None = None, client=None) -> BlockConfig:
    """Read the service monitor blocks (all, or those tagged ``tag``) and resolve their channels.

    A monitor document saved by the old schema (``url`` in clear) is re-saved with the secret schema
    on the way (``upgrade_old_documents``)."""
    from prefect.client.orchestration import get_client

    out = BlockConfig()
    try:
        if client is None:
            async with get_client() as own:
                monitors, notifiers = await _read_and_upgrade(own)
        else:
            monitors, notifiers = await _read_and_upgrade(client)
    except Exception as exc:  # noqa: BLE001 - the YAML monitors still run
        out.problems.append(ConfigProblem("Prefect blocks", f"cannot read monitor blocks: {type(exc).__name__}: {exc}"[:300]))
        return out
    yaml_names = {m.name for m in config.monitors}
    seen: dict[str, str] = {}
    for doc in sorted(monitors, key=lambda d: d.name):
        where = _where(doc.name)
        tags = doc.data.get("tags") if isinstance(doc.data, dict) else None
        if tag is not None and isinstance(tags, list) and tag not in tags:
            continue
        try:
            block = ServiceMonitor.model_validate(doc.data)
            if not block.enabled or (tag is not None and tag not in block.tags):
                continue
            spec = block.to_spec(doc.name, config.defaults)
        except ValidationError as exc:
            out.problems.extend(pydantic_problems(exc, where, monitor=doc.name))
            continue
        if spec.name in yaml_names:
            out.problems.append(
                ConfigProblem(
                    where,
                    f"block {MONITOR_SLUG}/{doc.name} and a monitor in {config.path} are both named "
                    f"{spec.name!r}; rename one (the YAML monitor runs, the block does not)",
                    monitor=spec.name,
                    field="service_name",
                )
            )
            continue
        if spec.name in seen:
            out.problems.append(
                ConfigProblem(
                    where, f"same service name as {_where(seen[spec.name])}; rename one", monitor=spec.name, field="service_name"
                )
            )
            continue
        seen[spec.name] = doc.name
        out.monitors.append(_resolve_channels(spec, where, config, notifiers, out))
    return out


def merge(config: Config, extra: BlockConfig) -> Config:
    """A new Config: the YAML file's monitors, channels and problems plus the blocks'."""
    return replace(
        config,
        monitors=[*config.monitors, *extra.monitors],
        channels={**extra.channels, **config.channels},
        problems=[*config.problems, *extra.problems],
    )


async def with_block_monitors(config: Config, enabled: bool = True, tag: str | None = None) -> Config:
    """The one call the monitor flow makes: the config with the monitor blocks merged in.

    ``tag`` None falls back to the ``ALERTING_MONITOR_TAG`` environment variable (empty: all)."""
    if not enabled:
        return config
    tag = tag if tag is not None else (os.environ.get(TAG_ENV) or None)
    return merge(config, await load_block_config(config, tag))

