"""The typer app and what every command group shares: consoles, ``fail``, config loading, help text.

This module imports none of the command modules; they import it and register their commands on
``app``, and ``alerting.cli`` (the package) imports them all.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from alerting.config import DEFAULT_CONFIG, Config, ConfigError, load_config

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            out.print(f"alerting {version('outage-alerting')}")
        except PackageNotFoundError:
            out.print("alerting (not installed)")
        raise typer.Exit(0)


app = typer.Typer(
    name="alerting",
    help="Watch services, alert through Apprise when one goes down. Runs on Prefect.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Watch services, alert through Apprise when one goes down. Runs on Prefect."""


def sub_app(name: str, help: str) -> typer.Typer:
    """A command group (``alerting blocks ...``) with the same settings as the main app."""
    return typer.Typer(name=name, help=help, no_args_is_help=True, add_completion=False,
                       pretty_exceptions_enable=False)


def reflow(text: str | None) -> str | None:
    """Docstring -> help: lines of one paragraph joined, so the terminal wraps whole sentences."""
    if not text:
        return text
    paragraphs = re.split(r"\n\s*\n", inspect.cleandoc(text))
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


def command(target: typer.Typer, name: str | None = None, **kwargs: Any) -> Callable:
    """``@target.command()`` with the docstring reflowed into the help text."""
    def register(fn: Callable) -> Callable:
        return target.command(name, help=reflow(fn.__doc__), **kwargs)(fn)

    return register


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr, then exit (2: bad input, unless told otherwise)."""
    err.print(f"[bold red]error:[/] {escape(message)}", markup=True)  # plain text: a name may hold "[/x]"
    raise typer.Exit(code)


def note(message: str) -> None:
    err.print(f"[yellow]note:[/] {message}", markup=True)


def config_option() -> Any:
    return typer.Option(DEFAULT_CONFIG, "-c", "--config", metavar="FILE", help="YAML config file.",
                        show_default=True)


ConfigOption = config_option()


def load(path: Path) -> Config:
    """The config, or exit 2 listing every problem that stops it loading."""
    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(f"[bold red]error:[/] {escape(str(problem))}", markup=True)
        raise typer.Exit(2) from None


def report_problems(config: Config) -> None:
    for problem in config.problems:
        err.print(f"[bold red]error:[/] {escape(str(problem))}", markup=True)


def refuse_bad_or_empty(cfg: Config, config: Path, problems_too: bool) -> None:
    """Exit 2 before any Prefect server starts: on any config problem (``problems_too``), or when
    there is nothing to check (see ``Config.nothing_to_check``)."""
    if problems_too and cfg.problems:
        report_problems(cfg)
        fail(f"{len(cfg.problems)} problem{'s' if len(cfg.problems) != 1 else ''} in {config} "
             "(nothing was checked)")
    if (empty := cfg.nothing_to_check()) is not None:
        fail(str(empty))


def with_block_monitors(config: Config) -> Config:
    """The config with the Service Monitor blocks merged in (blocks/loader.py) when a Prefect API
    answers by the rule in alerting/prefect_api.py; else one note and the YAML monitors alone."""
    import asyncio

    from alerting import prefect_api

    try:
        api = prefect_api.find()
    except prefect_api.NoPrefectAPI as exc:
        note(f"Service Monitor blocks not included: {exc}")
        return config
    if not prefect_api.may_hold_blocks(api.url, prefect_api.MONITOR_BLOCK_SLUG):
        return config  # no monitor block there: nothing to merge, and no Prefect import
    from blocks.loader import with_block_monitors as merge_blocks

    with prefect_api.using(api.url):
        return asyncio.run(merge_blocks(config))


def _tidy_help() -> None:
    """Typer 0.2x help: ``URL`` rather than ``{url}`` in the usage line, and no ``<bool>``/``<str>``
    tag on every option (an option shows its metavar, a flag nothing). Guarded: another typer
    version that lacks these hooks keeps its own rendering."""
    try:
        from typer.core import TyperArgument, TyperOption
    except ImportError:  # pragma: no cover
        return

    def usage_name(self: Any) -> str:
        name = self.metavar or self.name.upper()
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    def argument_type(self: Any, ctx: Any) -> None:
        return None

    def option_type(self: Any, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        return self.metavar or self.name.upper()

    if hasattr(TyperArgument, "_usage_display_name"):
        TyperArgument._usage_display_name = usage_name  # type: ignore[method-assign]
    if hasattr(TyperArgument, "display_type_rich"):
        TyperArgument.display_type_rich = argument_type  # type: ignore[method-assign]
    if hasattr(TyperOption, "display_type_rich"):
        TyperOption.display_type_rich = option_type  # type: ignore[method-assign]


_tidy_help()


def summarise(exc: BaseException) -> str:
    """One line for an unexpected error from Prefect or the network: type, first line, URLs masked."""
    from alerting.redact import redact_channel_url

    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    def mask(match: re.Match) -> str:
        try:
            return redact_channel_url(match.group(0))
        except Exception:  # noqa: BLE001 - never let masking hide the message
            return "<url>"

    text = re.sub(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+", mask, text)
    return text[:300]
