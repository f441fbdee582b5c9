"""The package tree shows the pipeline: every import (at the top of a module or inside a
function) points from a later stage to an earlier one, and no module imports itself back
through others."""

from __future__ import annotations

import ast
from pathlib import Path

import derive

PACKAGE = Path(derive.__file__).parent
# The stages in pipeline order; a module may import only from its own stage or earlier ones.
STAGES = [
    {"errors", "version"},
    {"limits", "files"},
    {"spec"},
    {"model"},
    {"solution"},
    {"views"},
    {"exercises"},
    {"cli", "gallery", "__init__", "__main__"},
]


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str) -> set[str]:
    """The derive modules `name` imports anywhere in its text (TYPE_CHECKING included)."""
    path = MODULES[name]
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == "derive":
                base = node.module
            else:
                continue
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in MODULES)
    return {module for module in found if module in MODULES and module != name}


GRAPH = {name: _imports(name) for name in MODULES}


def _stage(module: str) -> int:
    part = module.split(".")[1] if "." in module else "__init__"
    return next(n for n, stage in enumerate(STAGES) if part in stage)


def test_every_module_belongs_to_a_stage():
    for module in MODULES:
        _stage(module)


def test_no_import_cycle():
    """Depth-first search for a back edge; the message shows the cycle."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for imported in sorted(GRAPH[module]):
            if state.get(imported) == 1:
                cycle = path[path.index(imported):] + [imported]
                raise AssertionError("import cycle: " + " → ".join(cycle))
            if imported not in state:
                visit(imported)
        path.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)


def test_imports_point_to_earlier_stages():
    wrong = [
        f"{module} imports {imported}"
        for module, imported_modules in GRAPH.items()
        for imported in imported_modules
        if _stage(imported) > _stage(module)
    ]
    assert not wrong, wrong


def test_the_checker_sees_a_cycle():
    """The search itself works: a made-up cycle is found."""
    saved = dict(GRAPH)
    try:
        GRAPH["derive.errors"] = {"derive.limits"}
        GRAPH["derive.limits"] = GRAPH["derive.limits"] | {"derive.errors"}
        try:
            test_no_import_cycle()
        except AssertionError as error:
            assert "derive.errors → derive.limits → derive.errors" in str(error) or "derive.limits → derive.errors → derive.limits" in str(error)
        else:
            raise AssertionError("the made-up cycle was not found")
    finally:
        GRAPH.clear()
        GRAPH.update(saved)


def test_public_names_are_functions_and_submodules_are_not_shadowed():
    """derive.render and derive.exercise are the functions; the stages are packages of
    other names, so no function hides a module."""
    assert callable(derive.render) and callable(derive.exercise) and callable(derive.solve)
    for stage in ("spec", "model", "solution", "views", "exercises"):
        assert f"derive.{stage}" in MODULES
    assert not {"derive.render", "derive.exercise", "derive.solve"} & set(MODULES)
