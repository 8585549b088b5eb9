"""The layout of docs/ARCHITECTURE.md, checked: layers, no import cycles, commands apart, short modules.

Imports are read from the source (every ``import``, also those inside functions), so a
deferred import cannot hide an edge.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "nst"
# Lowest first: a package may import its own modules and those of the packages before it.
LAYERS = (
    {"nst", "nst._exports"},
    {"nst.io", "nst.host"},
    {"nst.weights"},
    {"nst.fast"},
    {"nst.optimise"},
    {"nst.parallel"},
    {"nst.video"},
    {"nst.web", "nst.classroom", "nst.grade", "nst.tf1_compat", "nst.notebook_helpers"},
    {"nst.commands", "nst.__main__"},
)
# Modules of nst.commands that every command may import; any other is one command's own.
SHARED_COMMAND_MODULES = {"nst.commands", "nst.commands.common", "nst.commands.options", "nst.commands.registry"}
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 500, 60


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imported(path: Path) -> dict:
    """{project module imported: [names taken from it]} for every import in ``path``."""
    found = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("nst"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                if sub in MODULES:
                    found.setdefault(sub, [])
                else:
                    found.setdefault(node.module, []).append(alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("nst"):
                    found.setdefault(alias.name, [])
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            pytest.fail(f"{path}: relative import; write `from nst.package.module import ...`")
    return {module: names for module, names in found.items() if module in MODULES}


GRAPH = {name: imported(path) for name, path in MODULES.items()}


def layer_of(module: str) -> int:
    package = ".".join(module.split(".")[:2])
    return next(index for index, members in enumerate(LAYERS) if package in members)


def test_every_module_has_a_layer():
    assert all(layer_of(module) is not None for module in MODULES)


def test_imports_go_down_the_layers_only():
    upward = [f"{module} -> {target}" for module, targets in GRAPH.items() for target in targets
              if layer_of(target) > layer_of(module)]
    assert upward == [], "see the layers in docs/ARCHITECTURE.md"


def test_no_import_cycles():
    done, path, cycles = set(), [], []

    def visit(module):
        if module in path:
            cycles.append(path[path.index(module):] + [module])
            return
        if module in done:
            return
        path.append(module)
        for target in GRAPH[module]:
            visit(target)
        path.pop()
        done.add(module)

    for module in sorted(GRAPH):
        visit(module)
    assert cycles == []


def test_a_command_imports_no_other_command_and_no_private_name():
    crossing, private = [], []
    for module, targets in GRAPH.items():
        for target, names in targets.items():
            if (module.startswith("nst.commands.") and target.startswith("nst.commands.") and
                    target not in SHARED_COMMAND_MODULES and target != module and module not in SHARED_COMMAND_MODULES):
                if not (module == "nst.commands.image" and target == "nst.commands.fast"):  # --method fast
                    crossing.append(f"{module} -> {target}")
            private += [f"{module} imports {target}.{name}" for name in names if name.startswith("_")]
    assert crossing == [] and private == []


def test_modules_and_functions_are_short():
    long_modules = [f"{name}: {len(path.read_text().splitlines())} lines" for name, path in MODULES.items()
                    if len(path.read_text().splitlines()) > MAX_MODULE_LINES]
    long_functions = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(f"{name}.{node.name}: {length} lines")
    assert long_modules == [] and long_functions == []
