"""The module boundaries, computed from the code with ``ast``: the import graph of alerting/, flows/
and blocks/ (every import, including those inside functions) has no cycles, no module imports another
module's private names, and the core of alerting/ imports neither flows nor blocks (only the CLI may).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("alerting", "flows", "blocks")


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    imports: dict[str, int] = field(default_factory=dict)  # imported internal module -> first line
    private: list[str] = field(default_factory=list)  # "line: name from module"


def _modules() -> dict[str, Module]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            found[".".join(parts)] = Module(".".join(parts), path, is_package)
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))  # dunders are public


def _resolve_relative(module: Module, level: int, target: str | None) -> str:
    base = module.name.split(".")
    if not module.is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join(base + ([target] if target else []))


def _graph() -> dict[str, Module]:
    modules = _modules()

    def internal(name: str) -> str | None:
        """The internal module ``name`` refers to (itself or its closest known parent)."""
        while name:
            if name in modules:
                return name
            name = name.rpartition(".")[0]
        return None

    for module in modules.values():
        tree = ast.parse(module.path.read_text(), str(module.path))
        aliases: dict[str, str] = {}  # local name -> internal module, for `alias._private` accesses

        def edge(target: str | None, line: int, module: Module = module) -> None:
            if target is not None and target != module.name:
                module.imports.setdefault(target, line)

        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = internal(alias.name)
                    edge(target, node.lineno)
                    if target is not None and alias.asname:
                        aliases[alias.asname] = target
            elif isinstance(node, ast.ImportFrom):
                source = _resolve_relative(module, node.level, node.module) if node.level else (node.module or "")
                source_module = internal(source)
                if source_module is None:
                    continue
                for alias in node.names:
                    submodule = f"{source}.{alias.name}"
                    if submodule in modules:  # `from package import submodule`
                        edge(submodule, node.lineno)
                        aliases[alias.asname or alias.name] = submodule
                        continue
                    edge(source_module, node.lineno)
                    if _private(alias.name) and source_module != module.name:
                        module.private.append(f"{module.name}:{node.lineno} imports {alias.name} from {source_module}")
            elif (isinstance(node, ast.Attribute) and _private(node.attr)
                  and isinstance(node.value, ast.Name) and node.value.id in aliases):
                module.private.append(f"{module.name}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}")
    return modules


def _cycles(modules: dict[str, Module]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan); for each, the shortest
    cycle through each of its modules (so every import that closes a cycle is named)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        on_stack.add(name)
        for target in modules[name].imports:
            if target not in index:
                visit(target)
                low[name] = min(low[name], low[target])
            elif target in on_stack:
                low[name] = min(low[name], index[target])
        if low[name] == index[name]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == name:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for name in sorted(modules):
        if name not in index:
            visit(name)
    cycles: list[list[str]] = []
    for component in components:
        seen: set[frozenset[str]] = set()
        for start in component:
            cycle = _one_cycle(modules, component, start)
            key = frozenset(step.split(" ")[0] for step in cycle)
            if key not in seen:
                seen.add(key)
                cycles.append(cycle)
    return cycles


def _one_cycle(modules: dict[str, Module], component: list[str], start: str) -> list[str]:
    """A shortest path from ``start`` back to itself inside the component, with the import lines."""
    members = set(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        name = queue.pop(0)
        for target, line in modules[name].imports.items():
            step = f"{target} (line {line} of {name})"
            if target == start:
                return paths[name] + [step]
            if target in members and target not in paths:
                paths[target] = paths[name] + [step]
                queue.append(target)
    return component


def _is_cli(name: str) -> bool:
    """The CLI entry point: the only part of alerting/ that may reach into flows/ and blocks/."""
    return name in ("alerting.__main__", "alerting.cli") or name.startswith(("alerting.cli_", "alerting.cli."))


GRAPH = _graph()
CYCLES = _cycles(GRAPH)
PRIVATE = [entry for m in GRAPH.values() for entry in m.private]
CORE_REACHING_OUT = [
    f"{m.name} imports {target} (line {line})"
    for m in GRAPH.values() if m.name.startswith("alerting") and not _is_cli(m.name)
    for target, line in m.imports.items() if target.split(".")[0] in ("flows", "blocks")
]


def test_the_graph_is_computed_from_every_module():
    assert {"alerting.cli", "alerting.config", "flows.service_monitor", "blocks"} <= set(GRAPH)
    assert "alerting.config" in GRAPH["alerting.cli.app"].imports  # a plain edge is seen


def test_no_import_cycles():
    assert CYCLES == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in CYCLES)


def test_no_module_imports_another_modules_private_names():
    assert PRIVATE == [], "\n".join(PRIVATE)


def test_the_core_of_alerting_imports_neither_flows_nor_blocks():
    assert CORE_REACHING_OUT == [], "\n".join(CORE_REACHING_OUT)


if __name__ == "__main__":  # print the findings: python tests/test_architecture.py
    for title, lines in (("cycles", [" -> ".join(c) for c in CYCLES]), ("private imports", PRIVATE),
                         ("core reaching into flows/blocks", CORE_REACHING_OUT)):
        print(f"{title}: {len(lines)}")
        for line in lines:
            print(f"  {line}")
