"""Load and validate the YAML config: defaults, channels and monitors.

Structural problems (missing file, bad YAML, bad ``defaults``) are fatal and raise ``ConfigError``.
A bad monitor or channel is a ``ConfigProblem`` for that entry alone: the rest still load, so one
typo never stops the other monitors. Every problem names the file, the monitor (or channel) and the
field.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from alerting.durations import parse_duration
from alerting.models import MaintenanceWindow, MonitorSpec
from alerting.redact import register_secret

DEFAULT_CONFIG = "monitors.yaml"
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster on big files
BLOCK_PREFIX = "block:"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
BLOCK_REF = re.compile(r"^block:([a-z0-9][a-z0-9-]*)/([A-Za-z0-9_.-][A-Za-z0-9_. -]*)$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    message: str
    monitor: str | None = None
    channel: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = [self.file]
        if self.monitor is not None:
            where.append(f"monitor '{self.monitor}'")
        if self.channel is not None:
            where.append(f"channel '{self.channel}'")
        if self.field:
            where.append(f"field '{self.field}'")
        return ": ".join(where) + f": {self.message}"


class ConfigError(Exception):
    """The config cannot be used at all; ``problems`` lists every reason."""

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class ChannelSpec:
    """A named destination: an Apprise URL or a Prefect notification block (``block:slug/name``)."""

    name: str
    target: SecretStr

    @property
    def block_ref(self) -> tuple[str, str] | None:
        match = BLOCK_REF.match(self.target.get_secret_value())
        return (match.group(1), match.group(2)) if match else None

    @property
    def kind(self) -> str:
        return "block" if self.block_ref else "apprise"


@dataclass
class Config:
    path: str
    channels: dict[str, ChannelSpec] = field(default_factory=dict)
    monitors: list[MonitorSpec] = field(default_factory=list)
    problems: list[ConfigProblem] = field(default_factory=list)
    concurrency: int = 32
    per_host_concurrency: int = 8
    defaults: dict[str, Any] = field(default_factory=dict)
    # alert lifecycle (docs/lifecycle.md)
    state_url: str | None = None  # SQLAlchemy URL; default sqlite under <config dir>/.alerting/
    maintenance: list[MaintenanceWindow] = field(default_factory=list)  # global windows
    storm_threshold: int = 5  # this many DOWN in one run: one message per channel
    fallback_channel: str | None = None
    fallback_after: int = 3  # failed delivery attempts before the fallback channel gets a copy
    history_retention: float = 35 * 86400.0  # seconds of raw check history kept (hourly rollups: 400 d)
    automations: Any = None  # alerting.server_alerts.AutomationsSpec (docs/automations.md)

    def resolved_state_url(self) -> str:
        """The store URL: ``state_url`` as given, else ``sqlite:///<config dir>/.alerting/state.db``."""
        if self.state_url:
            return self.state_url
        base = Path(self.path).resolve().parent / ".alerting" / "state.db"
        return f"sqlite:///{base}"

    def monitor(self, name: str) -> MonitorSpec:
        for spec in self.monitors:
            if spec.name == name:
                return spec
        known = ", ".join(m.name for m in self.monitors) or "none"
        raise KeyError(f"{self.path}: no monitor named '{name}' (known: {known})")


class _FileShape(BaseModel):
    model_config = ConfigDict(extra="forbid")

    defaults: dict[str, Any] = Field(default_factory=dict)
    channels: dict[str, Any] = Field(default_factory=dict)
    monitors: list[Any] = Field(default_factory=list)
    concurrency: int = Field(default=32, ge=1, le=1000)
    per_host_concurrency: int = Field(default=8, ge=1, le=1000, description="checks at once against one host")
    state_url: str | None = Field(default=None, min_length=1)
    maintenance: list[MaintenanceWindow] = Field(default_factory=list)
    storm_threshold: int = Field(default=5, ge=0, le=100000, description="0 turns grouping off")
    fallback_channel: str | None = None
    fallback_after: int = Field(default=3, ge=1, le=1000)
    history_retention: Any = Field(default=35 * 86400.0, validate_default=True)
    automations: dict[str, Any] | None = None  # validated by _parse_automations

    @field_validator("history_retention")
    @classmethod
    def _retention(cls, value: Any) -> float:
        seconds = parse_duration(value)
        if seconds < 86400:
            raise ValueError("keep at least 1d of history (uptime needs it)")
        return seconds


class _Unset(Exception):
    def __init__(self, path: str, var: str):
        self.path, self.var = path, var


def _expand(value: Any, path: str, environ: dict[str, str]) -> Any:
    """Expand ``${VAR}`` and ``${VAR:-default}`` in every string; an unset VAR is an error."""
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            var, default = match.group(1), match.group(2)
            if var in environ:
                register_secret(environ[var])  # a ${VAR} value is a secret wherever it is shown
                return environ[var]
            if default is not None:
                return default
            raise _Unset(path, var)

        return _ENV_REF.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand(v, f"{path}.{k}" if path else str(k), environ) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{path}[{i}]", environ) for i, v in enumerate(value)]
    return value


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def pydantic_problems(exc: ValidationError, file: str, **where: Any) -> list[ConfigProblem]:
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field (check the spelling)"
        elif err["type"] == "missing":
            message = "required field is missing"
        problems.append(ConfigProblem(file, message, field=_loc(err["loc"]) or None, **where))
    return problems


def _check_apprise_url(url: str) -> str | None:
    """Return a reason when Apprise cannot use this URL, else None."""
    from alerting.apprise_quiet import apprise_accepts

    if not apprise_accepts(url):
        return "not a valid Apprise URL (see https://github.com/caronc/apprise/wiki)"
    return None


def parse_config(text: str, file: str, environ: dict[str, str] | None = None) -> Config:
    environ = dict(os.environ) if environ is None else environ
    try:
        raw = yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([ConfigProblem(file, f"invalid YAML{where}: {reason}")]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([ConfigProblem(file, "expected a mapping with defaults, channels, monitors")])
    try:
        shape = _FileShape.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(pydantic_problems(exc, file)) from None

    try:
        state_url = _expand(shape.state_url, "state_url", environ)  # ${DB_PASSWORD} stays out of the file
    except _Unset as unset:
        raise ConfigError(
            [ConfigProblem(file, f"environment variable {unset.var} is not set", field=unset.path)]
        ) from None
    config = Config(
        path=file,
        concurrency=shape.concurrency,
        per_host_concurrency=shape.per_host_concurrency,
        state_url=state_url,
        maintenance=list(shape.maintenance),
        storm_threshold=shape.storm_threshold,
        fallback_after=shape.fallback_after,
        history_retention=shape.history_retention,
    )

    # defaults: a problem here touches every monitor, so it is fatal
    try:
        defaults = _expand(shape.defaults, "defaults", environ)
    except _Unset as unset:
        raise ConfigError(
            [ConfigProblem(file, f"environment variable {unset.var} is not set", field=unset.path)]
        ) from None
    for key in ("name", "url"):
        if key in defaults:
            raise ConfigError([ConfigProblem(file, "cannot be a default", field=f"defaults.{key}")])
    try:
        MonitorSpec.model_validate({"name": "defaults", "url": "http://defaults.invalid", **defaults})
    except ValidationError as exc:
        problems = pydantic_problems(exc, file)
        raise ConfigError(
            [ConfigProblem(p.file, p.message, field=f"defaults.{p.field}") for p in problems]
        ) from None
    config.defaults = defaults

    # channels: a bad one is dropped with a problem; monitors keep their other channels
    for name, target in shape.channels.items():
        name = str(name)
        if not _NAME.match(name):
            config.problems.append(ConfigProblem(file, "use letters, digits, '-', '_' or '.'", channel=name))
            continue
        if not isinstance(target, str) or not target.strip():
            config.problems.append(
                ConfigProblem(file, "expected an Apprise URL or block:<type-slug>/<name>", channel=name)
            )
            continue
        try:
            value = _expand(target, f"channels.{name}", environ).strip()
        except _Unset as unset:
            config.problems.append(
                ConfigProblem(file, f"environment variable {unset.var} is not set", channel=name)
            )
            continue
        if value.startswith(BLOCK_PREFIX):
            if not BLOCK_REF.match(value):
                config.problems.append(
                    ConfigProblem(file, "expected block:<block-type-slug>/<document-name>", channel=name)
                )
                continue
        elif reason := _check_apprise_url(value):
            config.problems.append(ConfigProblem(file, reason, channel=name))
            continue
        config.channels[name] = ChannelSpec(name=name, target=SecretStr(value))
    declared_channels = {str(n) for n in shape.channels}
    if shape.fallback_channel is not None:
        if shape.fallback_channel not in declared_channels:
            known = ", ".join(sorted(declared_channels)) or "none defined"
            raise ConfigError(
                [ConfigProblem(file, f"undefined channel {shape.fallback_channel!r} (defined: {known})",
                               field="fallback_channel")]
            )
        config.fallback_channel = shape.fallback_channel
    config.automations = _parse_automations(shape.automations, file, environ, config.problems)

    # monitors: each validated alone
    seen: set[str] = set()
    for index, entry in enumerate(shape.monitors):
        label = entry.get("name") if isinstance(entry, dict) else None
        label = str(label) if label not in (None, "") else f"#{index + 1}"
        if not isinstance(entry, dict):
            config.problems.append(ConfigProblem(file, "expected a mapping with name and url", monitor=label))
            continue
        try:
            merged = {**defaults, **_expand(entry, "", environ)}
        except _Unset as unset:
            config.problems.append(
                ConfigProblem(file, f"environment variable {unset.var} is not set", monitor=label, field=unset.path)
            )
            continue
        try:
            spec = MonitorSpec.model_validate(merged)
        except ValidationError as exc:
            config.problems.extend(pydantic_problems(exc, file, monitor=label))
            continue
        if spec.name in seen:
            config.problems.append(
                ConfigProblem(file, "duplicate monitor name (names must be unique)", monitor=label, field="name")
            )
            continue
        seen.add(spec.name)
        unknown = [c for c in spec.channels if c not in declared_channels]
        if unknown:
            known = ", ".join(sorted(declared_channels)) or "none defined"
            config.problems.append(
                ConfigProblem(
                    file,
                    f"undefined channel {', '.join(repr(c) for c in unknown)} (defined: {known})",
                    monitor=spec.name,
                    field="channels",
                )
            )
            spec = spec.model_copy(update={"channels": [c for c in spec.channels if c not in unknown]})
        config.monitors.append(spec)
    return config


def _parse_automations(raw: dict[str, Any] | None, file: str, environ: dict[str, str], problems: list):
    """The ``automations:`` section, or None. A bad one is a problem, not fatal: monitors keep running
    and their hooks alert every channel (the safe side)."""
    from alerting.server_alerts import AutomationsSpec

    if raw is None:
        return None
    try:
        return AutomationsSpec.model_validate(_expand(raw, "automations", environ))
    except _Unset as unset:
        problems.append(ConfigProblem(file, f"environment variable {unset.var} is not set", field=unset.path))
    except ValidationError as exc:
        problems.extend(
            ConfigProblem(p.file, p.message, field="automations" + (f".{p.field}" if p.field else ""))
            for p in pydantic_problems(exc, file)
        )
    return None


def load_config(path: str | os.PathLike[str] | None = None, environ: dict[str, str] | None = None) -> Config:
    file = str(path or DEFAULT_CONFIG)
    p = Path(file)
    if not p.exists():
        raise ConfigError([ConfigProblem(file, "config file not found (use -c/--config PATH)")])
    if not p.is_file():
        raise ConfigError([ConfigProblem(file, "not a file")])
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem(file, f"cannot read: {exc}")]) from None
    return parse_config(text, file, environ)
