"""The layering the README promises, read from the source: who may import whom, and no import cycles.

Every module of the `presence_sync` namespace is parsed (not imported), so a rule holds for code paths
no test runs. Imports inside functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "presence_sync"
PARTS = ("cli", "connectors", "deployments", "emulators", "engine", "flows", "models", "tasks")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([NAMESPACE, *parts])


def _modules() -> dict[str, Path]:
    found = {}
    for part in PARTS:
        for path in sorted((ROOT / part).rglob("*.py")):
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import in the file; `from pkg import submodule` names the submodule."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                candidate = f"{module}.{alias.name}"
                yield (candidate if candidate in MODULES else module), node.lineno


IMPORTS = {name: list(_imports(name, path)) for name, path in MODULES.items()}


def _product(module: str) -> bool:
    return module == NAMESPACE or module.startswith(NAMESPACE + ".")


def _part(module: str) -> str:
    return module.split(".")[1] if _product(module) and module.count(".") >= 1 else ""


def _violations(part: str, allowed) -> list[str]:
    return [
        f"{MODULES[name].relative_to(ROOT)}:{line} imports {imported}"
        for name, imports in IMPORTS.items()
        if _part(name) == part
        for imported, line in imports
        if not allowed(imported)
    ]


def test_every_product_part_is_found() -> None:
    assert {_part(name) for name in MODULES} == set(PARTS)


def test_nothing_imports_the_parts_by_their_bare_top_level_names() -> None:
    # Installed, only `presence_sync.<part>` exists: a bare `import engine` works from a checkout only.
    bare = [
        f"{MODULES[name].relative_to(ROOT)}:{line} imports {imported}"
        for name, imports in IMPORTS.items()
        for imported, line in imports
        if imported.split(".")[0] in PARTS
    ]
    assert bare == []


def test_the_engine_imports_only_the_standard_library_and_itself() -> None:
    def allowed(module: str) -> bool:
        top = module.split(".")[0]
        return _part(module) == "engine" or (top in sys.stdlib_module_names and top != NAMESPACE)

    assert _violations("engine", allowed) == []


def test_connectors_know_http_not_prefect_nor_the_layers_above() -> None:
    def allowed(module: str) -> bool:
        if module.split(".")[0] == "prefect":
            return False
        return not _product(module) or _part(module) in {"connectors", "engine"}

    assert _violations("connectors", allowed) == []


def test_the_emulators_import_nothing_from_the_product() -> None:
    assert _violations("emulators", lambda module: not _product(module) or _part(module) == "emulators") == []


def test_models_know_neither_prefect_tasks_nor_flows() -> None:
    # models/ may resolve `prefect-secret:` references (models/secrets.py) but never runs flows or tasks.
    def allowed(module: str) -> bool:
        return _part(module) not in {"tasks", "flows", "cli", "deployments", "emulators"}

    assert _violations("models", allowed) == []


def _cycles() -> list[list[str]]:
    graph = {
        name: sorted({imported for imported, _ in imports if imported in MODULES and imported != name})
        for name, imports in IMPORTS.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for name in graph:
        if name not in index:
            visit(name)
    return components


def test_no_import_cycle_between_modules() -> None:
    assert _cycles() == []


@pytest.mark.parametrize("part", PARTS)
def test_each_part_says_in_its_first_docstring_what_lives_there(part: str) -> None:
    docstring = ast.get_docstring(ast.parse((ROOT / part / "__init__.py").read_text()))
    assert docstring and len(docstring.split()) >= 8, f"{part}/__init__.py needs a docstring saying what lives there"
