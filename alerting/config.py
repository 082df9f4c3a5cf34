"""Load and validate the YAML config: defaults, channels and monitors.

Structural problems (missing file, bad YAML, bad ``defaults``) are fatal and raise ``ConfigError``.
A bad monitor or channel is a ``ConfigProblem`` for that entry alone: the rest still load, so one
typo never stops the other monitors. Every problem names the file, the monitor (or channel) and the
field.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator

from alerting.channels import target_problem
from alerting.checks import spec_problems
from alerting.durations import bounded_duration
from alerting.models import ChannelSpec, MaintenanceWindow, MonitorSpec
from alerting.redact import register_secret

DEFAULT_CONFIG = "monitors.yaml"
MAX_CONFIG_BYTES = 1024 * 1024  # a config is text people write; 1 MB holds ~10,000 monitors
MAX_NESTING = 32  # levels of mappings and lists; a real config needs about 5
_BASE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster on big files
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_LOCATION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")


def _make_loader(base: type) -> type:
    """``base`` (PyYAML's C or pure-Python safe loader) with the rules of ``_StrictLoader``."""

    class Strict(_StrictRules, base):
        pass

    Strict.add_constructor("tag:yaml.org,2002:map", Strict.construct_strict_map)
    return Strict


class _StrictRules:
    """Rules mixed into PyYAML's safe loader, where a small edit could otherwise hang a process or
    silently change the config:

    - aliases (``*name``) and merge keys (``<<``) are refused: an alias bomb of a few hundred bytes
      expands to billions of values, and a served process reloads the config every run;
    - nesting deeper than ``MAX_NESTING`` is refused;
    - a duplicate key is recorded (``duplicates``) instead of silently keeping the last value;
    - a scalar PyYAML cannot convert (``2026-13-45``, a 5,000-digit number) is a YAML error with
      its line, not a ValueError.
    """

    def __init__(self, stream: str):
        super().__init__(stream)  # type: ignore[call-arg]  # PyYAML's loader, mixed in
        # (the mapping, the key, line of the repeat, line of the first) for each duplicate key
        self.duplicates: list[tuple[dict, Any, int, int]] = []

    def construct_document(self, node: yaml.Node) -> Any:
        _check_tree(node)
        return super().construct_document(node)  # type: ignore[misc]

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)  # type: ignore[misc]
        except (ValueError, OverflowError) as exc:
            shown = str(node.value) if isinstance(node, yaml.ScalarNode) else node.tag
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            reason = "a number with too many digits" if "digits" in str(exc) else str(exc)[:120]
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read the value {shown!r}: {reason}", node.start_mark
            ) from None

    def construct_strict_map(self, node: yaml.MappingNode):
        data: dict[Any, Any] = {}
        yield data
        first_line: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a plain value, not a list or mapping", key_node.start_mark
                ) from None
            line = key_node.start_mark.line + 1
            if key in first_line:
                self.duplicates.append((data, key, line, first_line[key]))
                continue
            first_line[key] = line
            data[key] = self.construct_object(value_node)


_StrictLoader = _make_loader(_BASE_LOADER)


def _check_tree(root: yaml.Node) -> None:
    """Refuse aliases, merge keys and deep nesting before anything is built (iterative: no recursion)."""
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if id(node) in seen:
            raise yaml.constructor.ConstructorError(
                None, None,
                f"the value at line {node.start_mark.line + 1} is reused through an alias (*name); "
                "YAML anchors and aliases are not supported: write the value out where it is used "
                "(settings shared by every monitor go in defaults:)",
                None,
            )
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            continue
        if depth > MAX_NESTING:
            raise yaml.constructor.ConstructorError(
                None, None, f"nested more than {MAX_NESTING} levels deep", node.start_mark
            )
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise yaml.constructor.ConstructorError(
                        None, None, "merge keys (<<) are not supported: write the keys out "
                        "(settings shared by every monitor go in defaults:)", key_node.start_mark,
                    )
                stack.append((key_node, depth + 1))
                stack.append((value_node, depth + 1))
        else:
            stack.extend((child, depth + 1) for child in node.value)


def _load_yaml(text: str) -> tuple[Any, list[tuple[dict, Any, int, int]]]:
    loader = _StrictLoader(text)
    try:
        return loader.get_single_data(), loader.duplicates
    finally:
        loader.dispose()


def _paths(raw: Any) -> dict[int, tuple[Any, ...]]:
    """``id(mapping) -> its path`` (``("monitors", 3, "headers")``) for every mapping in the file."""
    found: dict[int, tuple[Any, ...]] = {}
    stack: list[tuple[Any, tuple[Any, ...]]] = [(raw, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            found[id(value)] = path
            stack.extend((v, (*path, k)) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, (*path, i)) for i, v in enumerate(value))
    return found


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
        return _CONTROL.sub(" ", ": ".join(where) + f": {self.message}")  # always one line


class ConfigError(Exception):
    """The config cannot be used at all; ``problems`` lists every reason."""

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


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
    storm_threshold: int = 5  # this many DOWN in one group (results within 0.2 s): one message per channel
    fallback_channel: str | None = None
    fallback_after: int = 3  # failed delivery attempts before the fallback channel gets a copy
    history_retention: float = 35 * 86400.0  # seconds of raw check history kept (hourly rollups: 400 d)
    automations: Any = None  # alerting.server_alerts.AutomationsSpec (docs/automations.md)
    status_page: Any = None  # alerting.status_page.spec.StatusPageSpec (README: status page)
    # where checks are made from (docs/scaling.md): empty = here, in the serving process
    locations: list[str] = field(default_factory=list)
    # the file says ``monitors: []`` in so many words: its monitors are Service Monitor blocks (UI)
    block_monitors_only: bool = False

    def nothing_to_check(self) -> ConfigProblem | None:
        """Why ``run`` and ``serve`` would have nothing to check, or None.

        No YAML monitor is fine when the file says ``monitors: []`` (the monitors are Service Monitor
        blocks made in the Prefect UI, possibly later); an empty file, ``monitors:`` with every entry
        commented out, or only broken monitors is a mistake."""
        if self.monitors or self.block_monitors_only:
            return None
        if any(p.monitor is not None for p in self.problems):
            return ConfigProblem(self.path, "no valid monitor: nothing to check (fix the problems above)",
                                 field="monitors")
        return ConfigProblem(
            self.path,
            "no monitors: nothing to check (add entries under 'monitors:', or write 'monitors: []' to "
            "check only Service Monitor blocks made in the Prefect UI)",
            field="monitors",
        )

    def empty_warning(self) -> str | None:
        """What ``validate`` says about a file without monitors, or None."""
        if self.monitors:
            return None
        if self.block_monitors_only:
            return (f"{self.path}: warning: 'monitors: []': only Service Monitor blocks made in the "
                    "Prefect UI will be checked")
        return (f"{self.path}: warning: no monitors defined: 'run' and 'serve' would have nothing to "
                "check (add entries under 'monitors:')")

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
    state_url: str | None = Field(default=None, min_length=1, max_length=4096)
    maintenance: list[MaintenanceWindow] = Field(default_factory=list)
    storm_threshold: int = Field(default=5, ge=0, le=100000, description="0 turns grouping off")
    fallback_channel: str | None = None
    fallback_after: int = Field(default=3, ge=1, le=1000)
    history_retention: Any = Field(default=35 * 86400.0, validate_default=True)
    automations: dict[str, Any] | None = None  # validated by _parse_automations
    status_page: dict[str, Any] | None = None  # validated by _parse_status_page
    locations: list[str] = Field(default_factory=list, max_length=100,
                                 description="locations that 'alerting worker --location' processes check from")

    @field_validator("locations")
    @classmethod
    def _location_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _LOCATION.match(name):
                raise ValueError(f"location {name!r}: use 1-40 letters, digits, '-' or '_' (such as eu-west)")
        if len(set(value)) != len(value):
            raise ValueError("a location is listed twice")
        return value

    @field_validator("defaults", "channels", "monitors", mode="before")
    @classmethod
    def _blank_is_empty(cls, value: Any, info: ValidationInfo) -> Any:
        # "monitors:" with every entry commented out is no monitors (validate warns), not a type error
        if value is None:
            return [] if info.field_name == "monitors" else {}
        return value

    @field_validator("history_retention")
    @classmethod
    def _retention(cls, value: Any) -> float:
        # at least 1d: uptime figures need it; at most 10 years
        return bounded_duration(value, 86400.0, 3650 * 86400.0)


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


def _state_url_problem(url: str) -> str | None:
    """Why SQLAlchemy could not use ``url``, found without connecting; None when it could."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    example = "such as sqlite:///path/state.db or postgresql+psycopg://user@host/db"
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return f"not a database URL ({example})"
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        return f"unknown database type {parsed.drivername!r} (use a URL {example})"
    except (ArgumentError, ValueError, ImportError) as exc:
        return f"unusable database URL ({exc.__class__.__name__}; use a URL {example})"
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        return f"the database driver for {parsed.drivername!r} is not installed ({exc.name or exc})"
    return None


def _duplicate_keys(
    raw: Any, duplicates: list[tuple[dict, Any, int, int]], file: str
) -> dict[int, list[tuple[str, str]]]:
    """Duplicate keys inside a monitor entry: ``{monitor index: [(field, message)]}``, so only that
    monitor is dropped. A duplicate anywhere else (a second ``monitors:``, a channel twice) changes
    what every monitor does: ConfigError."""
    if not duplicates:
        return {}
    paths = _paths(raw)
    per_monitor: dict[int, list[tuple[str, str]]] = {}
    fatal = []
    for mapping, key, line, first in sorted(duplicates, key=lambda d: d[2]):
        path = paths.get(id(mapping), ())
        message = f"duplicate key {str(key)!r} at line {line} (first at line {first}); write each key once"
        if len(path) >= 2 and path[0] == "monitors" and isinstance(path[1], int):
            per_monitor.setdefault(path[1], []).append((_loc((*path[2:], str(key))), message))
        else:
            fatal.append(ConfigProblem(file, message, field=_loc((*path, str(key)))))
    if fatal:
        raise ConfigError(fatal)
    return per_monitor


def parse_config(text: str, file: str, environ: dict[str, str] | None = None) -> Config:
    environ = dict(os.environ) if environ is None else environ
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError([ConfigProblem(file, _too_big(len(text)))])
    try:
        raw, duplicates = _load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([ConfigProblem(file, f"invalid YAML{where}: {reason}")]) from None
    except RecursionError:  # pure-Python PyYAML only; libyaml stops at 1,000 levels itself
        raise ConfigError([ConfigProblem(file, f"invalid YAML: nested more than {MAX_NESTING} levels deep")]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([ConfigProblem(file, "expected a mapping with defaults, channels, monitors")])
    monitor_duplicates = _duplicate_keys(raw, duplicates, file)
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
        block_monitors_only=raw.get("monitors") == [],
        concurrency=shape.concurrency,
        per_host_concurrency=shape.per_host_concurrency,
        state_url=state_url,
        maintenance=list(shape.maintenance),
        storm_threshold=shape.storm_threshold,
        fallback_after=shape.fallback_after,
        history_retention=shape.history_retention,
        locations=list(shape.locations),
    )
    if state_url and (reason := _state_url_problem(state_url)):
        # a problem, not fatal: like a bad monitor, it stops run/validate (exit 2) but not serve's reload
        config.problems.append(ConfigProblem(file, reason, field="state_url"))

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
        if reason := target_problem(value):  # the channel kind's own check (alerting/channels/)
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
    config.status_page = _parse_status_page(shape.status_page, file, config.problems)

    # monitors: each validated alone
    seen: set[str] = set()
    for index, entry in enumerate(shape.monitors):
        label = entry.get("name") if isinstance(entry, dict) else None
        label = str(label) if label not in (None, "") else f"#{index + 1}"
        if not isinstance(entry, dict):
            config.problems.append(ConfigProblem(file, "expected a mapping with name and url", monitor=label))
            continue
        if index in monitor_duplicates:
            config.problems.extend(
                ConfigProblem(file, message, monitor=label, field=where)
                for where, message in monitor_duplicates[index]
            )
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
        if type_problems := spec_problems(spec, entry):  # the type's own fields (alerting/checks/)
            config.problems.extend(ConfigProblem(file, message, monitor=label, field=where)
                                   for where, message in type_problems)
            continue
        if spec.name in seen:
            config.problems.append(
                ConfigProblem(file, "duplicate monitor name (names must be unique)", monitor=label, field="name")
            )
            continue
        seen.add(spec.name)
        if where_problems := location_problems(spec, config.locations):
            config.problems.extend(ConfigProblem(file, message, monitor=label, field=where)
                                   for where, message in where_problems)
            continue
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


def location_problems(spec: MonitorSpec, known: list[str]) -> list[tuple[str, str]]:
    """(field, message) for a monitor's ``locations`` and ``quorum`` against the file's ``locations:``."""
    if spec.locations is None and spec.quorum is None:
        return []
    if not known:
        which = "locations" if spec.locations is not None else "quorum"
        return [(which, "needs the top-level 'locations:' list (the places 'alerting worker --location' runs)")]
    unknown = [name for name in spec.locations or [] if name not in known]
    if unknown:
        return [("locations", f"unknown location {', '.join(repr(n) for n in unknown)} (defined: {', '.join(known)})")]
    count = len(spec.locations or known)
    if spec.quorum is not None and spec.quorum > count:
        return [("quorum", f"quorum {spec.quorum} is more than its {count} location(s)")]
    return []


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


def _parse_status_page(raw: dict[str, Any] | None, file: str, problems: list):
    """The ``status_page:`` section, or None. A bad one is a problem, not fatal: monitors keep running."""
    from alerting.status_page.spec import StatusPageSpec

    if raw is None:
        return None
    try:
        return StatusPageSpec.model_validate(raw)
    except ValidationError as exc:
        problems.extend(
            ConfigProblem(p.file, p.message, field="status_page" + (f".{p.field}" if p.field else ""))
            for p in pydantic_problems(exc, file)
        )
    return None


def _too_big(size: int) -> str:
    return f"the file is {size / 1024:,.0f} KB; a config may be at most {MAX_CONFIG_BYTES / 1024:,.0f} KB (1 MB)"


def load_config(path: str | os.PathLike[str] | None = None, environ: dict[str, str] | None = None) -> Config:
    file = str(path or DEFAULT_CONFIG)
    p = Path(file)
    if not p.exists():
        raise ConfigError([ConfigProblem(file, "config file not found (use -c/--config PATH)")])
    if not p.is_file():
        raise ConfigError([ConfigProblem(file, "not a file")])
    try:
        with p.open("rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)  # never more: a config that grows without end
            if len(data) > MAX_CONFIG_BYTES:
                raise ConfigError([ConfigProblem(file, _too_big(max(len(data), p.stat().st_size)))])
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError([ConfigProblem(file, f"cannot read: not UTF-8 text (line {line}, byte {exc.start})")]) from None
    except OSError as exc:
        raise ConfigError([ConfigProblem(file, f"cannot read: {exc.strerror or exc}")]) from None
    env = os.environ if environ is None else environ
    key = (file, str(p.resolve()), hashlib.sha256(data).digest(),
           hashlib.sha256(repr(sorted(env.items())).encode()).digest())
    with _PARSED_LOCK:
        parsed = _PARSED.get(key)
    if parsed is None:
        parsed = parse_config(text, file, environ)
        with _PARSED_LOCK:
            _PARSED[key] = parsed
            while len(_PARSED) > PARSED_KEPT:
                _PARSED.pop(next(iter(_PARSED)))
    return _own_copy(parsed)


# Parsed configs by (path, content, environment): a served monitor loads its file for every flow run
# and every hook (0.3-0.5 s of CPU for 5,000 monitors), nearly always unchanged. Any change to the
# bytes or to the environment (``${VAR}``) parses again.
_PARSED: dict[tuple, Config] = {}
_PARSED_LOCK = threading.Lock()
PARSED_KEPT = 8


def _own_copy(config: Config) -> Config:
    """A Config whose containers the caller may change; the specs inside are immutable (frozen)."""
    return replace(config, channels=dict(config.channels), monitors=list(config.monitors),
                   problems=list(config.problems), defaults=dict(config.defaults),
                   maintenance=list(config.maintenance))
