"""The CLI as people expect it: help text, --version, declared dependencies, and a CLI package
without import cycles. Fast: no Prefect server, no network."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from toolkit.forked_cli import ForkedCLI, main_env

ALERTING = str(Path(sys.executable).parent / "alerting")
ROOT = Path(__file__).resolve().parent.parent

COMMANDS = [
    ["check"], ["run"], ["drill"], ["validate"], ["notify"], ["serve"], ["status"], ["history"],
    ["silence"], ["unsilence"], ["blocks", "register"], ["blocks", "list"], ["automations", "apply"],
    ["automations", "list"], ["automations", "delete"],
]
# the commands that talk to a Prefect server state the lookup rule in their help
TALK_TO_PREFECT = {"run", "drill", "notify", "serve", "status", "history", "silence", "unsilence", "blocks",
                   "automations"}


@pytest.fixture(scope="module")
def cli() -> Iterator[ForkedCLI]:
    """``alerting`` processes forked from one that imported the CLI (toolkit/forked_cli.py)."""
    with ForkedCLI(main_env({"TERM": "dumb"})) as forked:
        yield forked


def help_of(cli: ForkedCLI, *args: str, columns: int = 80) -> str:
    proc = cli.run([*args, "--help"], ROOT, env={"COLUMNS": str(columns)})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_names_arguments_plainly_and_tags_no_types(cli, command):
    text = help_of(cli, *command)
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert "{" not in usage and "}" not in usage, usage
    for tag in ("<bool>", "<str>", "<path>", "<int", "<float>", "<text>"):
        assert tag not in text, f"{tag} in `alerting {' '.join(command)} --help`:\n{text}"
    if command[0] in TALK_TO_PREFECT:
        assert "PREFECT_API_URL" in text, f"the server-lookup rule is missing from {command}:\n{text}"


def test_usage_lines_show_metavars(cli):
    assert "alerting check [OPTIONS] URL" in help_of(cli, "check")
    for command in ("drill", "history", "silence", "unsilence"):
        assert f"alerting {command} [OPTIONS] MONITOR" in help_of(cli, command)
    assert "alerting notify [OPTIONS] CHANNEL" in help_of(cli, "notify")


def test_notify_options_have_help(cli):
    text = help_of(cli, "notify", columns=200)
    assert re.search(r"--title\s+TEXT\s+Title of the test message", text), text
    assert re.search(r"--body\s+TEXT\s+Body of the test message", text), text


def test_help_sentences_are_not_broken_mid_line(cli):
    """Docstrings are wrapped by the terminal, not at the source file's line breaks."""
    text = help_of(cli, "serve", columns=200)
    assert "Starts a local Prefect server with its UI when none is configured; Ctrl-C stops both." in text
    text = help_of(cli, "status", columns=200)
    assert "last error, silence or maintenance. Reads the state store" in text


def test_version():
    from importlib.metadata import version

    proc = subprocess.run([ALERTING, "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == f"alerting {version('outage-alerting')}"


def test_readme_lists_the_serve_modes_and_states_the_server_rule():
    readme = (ROOT / "README.md").read_text()
    table = [line for line in readme.splitlines() if line.startswith("| `alerting serve")]
    assert table and "--runner continuous" in table[0] and "--runner prefect" in table[0]
    assert "PREFECT_API_URL` when it is set" in readme
    assert "alerting-local-server" in readme


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _module_files() -> dict[str, Path]:
    files = {}
    for package in ("alerting", "flows", "blocks"):
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            files[".".join(parts)] = path
    return files


def test_every_direct_dependency_is_declared():
    """Each third-party package imported by alerting/, flows/ or blocks/ is in pyproject.toml."""
    from importlib.metadata import packages_distributions

    declared = set()
    for requirement in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        declared.add(re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-"))
    ours = {"alerting", "flows", "blocks"}
    distributions = packages_distributions()
    missing = {}
    for module, path in _module_files().items():
        for name in _imports(path):
            top = name.split(".")[0]
            if top in ours or top in sys.stdlib_module_names or top == "__future__":
                continue
            for dist in distributions.get(top, [top]):
                if dist.lower().replace("_", "-") not in declared:
                    missing.setdefault(dist, module)
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def _import_graph() -> dict[str, set[str]]:
    files = _module_files()
    graph = {}
    for module, path in files.items():
        targets = set()
        for name in _imports(path):
            while name and name not in files:  # `from a.b import c`: the module a.b (c is a name)
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def _cycles_through(prefix: str) -> list[list[str]]:
    """For each module starting with ``prefix`` that can import itself back: one such path."""
    graph = _import_graph()
    cycles = []
    for module in sorted(m for m in graph if m.startswith(prefix)):
        came_from = {nxt: module for nxt in graph[module]}
        queue = list(graph[module])
        while queue and module not in came_from:
            node = queue.pop(0)
            for nxt in graph.get(node, ()):
                if nxt not in came_from:
                    came_from[nxt] = node
                    queue.append(nxt)
        if module in came_from:
            path, node = [module], came_from[module]
            while node != module:
                path.append(node)
                node = came_from[node]
            cycles.append([module, *reversed(path[1:]), module])
    return cycles


def test_cli_package_has_no_import_cycles():
    assert (ROOT / "alerting" / "cli" / "__init__.py").exists()
    assert not (ROOT / "alerting" / "cli.py").exists()
    app_imports = _imports(ROOT / "alerting" / "cli" / "app.py")
    assert not [m for m in app_imports if m.startswith("alerting.cli")], app_imports
    assert _cycles_through("alerting.cli") == []


def test_automations_api_is_in_no_import_cycle():
    """flows/monitor -> flows/automations_api -> flows/serve -> flows/monitor is gone."""
    assert _cycles_through("flows.automations_api") == []
