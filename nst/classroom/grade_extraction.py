"""The grader's first step: a notebook's graded functions as source text, without running anything.

It reads the code cells *without running them*, parses them with :mod:`ast`
and keeps only the top-level ``def`` statements (decorators and annotations
dropped, defaults must be literals).  No other student code runs: not the
imports, not the test cells, nothing at the top level.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from nst.classroom import GRADED


class UnusableInput(Exception):
    """A notebook that cannot be read at all."""


def _cell_python(source: str) -> str:
    """IPython cell text -> plain Python that ast can parse (magics and shell lines become calls or comments)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(source)
    except Exception:  # IPython missing or confused: comment out the IPython-only lines
        return "\n".join("# " + line if line.lstrip().startswith(("%", "!")) else line
                         for line in source.split("\n"))


def _literal(node) -> bool:
    try:
        ast.literal_eval(node)
        return True
    except Exception:
        return False


def _sanitise(node: ast.FunctionDef) -> tuple[str | None, str | None]:
    """(source, None) of a def that can be defined without running student code, else (None, reason)."""
    node.decorator_list = []
    node.returns = None
    arguments = node.args
    for argument in arguments.posonlyargs + arguments.args + arguments.kwonlyargs + \
            [a for a in (arguments.vararg, arguments.kwarg) if a is not None]:
        argument.annotation = None
    defaults = arguments.defaults + [d for d in arguments.kw_defaults if d is not None]
    if not all(_literal(default) for default in defaults):
        return None, (f"a default argument value of {node.name} is not a plain literal; "
                      "the grader does not evaluate expressions outside the function body")
    return ast.unparse(node), None


def _has_placeholders(node: ast.FunctionDef) -> bool:
    for child in ast.walk(node):
        if isinstance(child, ast.Assign) and isinstance(child.value, ast.Constant) and child.value.value is None:
            return True
        if isinstance(child, ast.Expr) and isinstance(child.value, ast.Constant) and child.value.value is None:
            return True
    return False


def read_code_cells(path: Path) -> list[str]:
    try:
        notebook = json.loads(Path(path).read_text(encoding="utf-8"))
        cells = notebook["cells"]
        sources = []
        for cell in cells:
            if cell.get("cell_type") == "code":
                source = cell.get("source", "")
                sources.append("".join(source) if isinstance(source, list) else str(source))
        return sources
    except RecursionError:  # the JSON decoder's stack: nesting no notebook needs
        raise UnusableInput(f"{path}: not a readable Jupyter notebook (its JSON is nested too deeply to read); "
                            "re-save it from Jupyter") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError, MemoryError) as error:
        raise UnusableInput(f"{path}: not a readable Jupyter notebook ({type(error).__name__}: {error})") from None


def _cell_definitions(raw: str, index: int) -> dict[str, dict]:
    """{name: {"source", "placeholders"} or {"error"}} for the top-level defs of one code cell.

    A cell that cannot be analysed (a syntax error, or nesting deep enough to
    exhaust the parser's stack) yields an error for each graded function it
    appears to define, so it costs those functions only.
    """
    try:
        definitions = {}
        for node in ast.parse(_cell_python(raw)).body:
            if not isinstance(node, ast.FunctionDef):
                continue  # imports, calls, assignments, classes...: never run
            placeholders = _has_placeholders(node)
            source, reason = _sanitise(node)
            definitions[node.name] = {"error": reason} if source is None else {"source": source,
                                                                             "placeholders": placeholders}
        return definitions
    except SyntaxError as error:
        problem = f"syntax error in code cell {index}, which defines {{}}: {error.msg} (line {error.lineno})"
    except (RecursionError, MemoryError) as error:  # ast's recursion limit or the parser's stack
        problem = (f"code cell {index}, which defines {{}}, is nested too deeply for the grader to read "
                   f"({type(error).__name__}); split the deep expression into several statements")
    return {name: {"error": problem.replace("{}", name, 1)} for name in GRADED
            if re.search(rf"^\s*def\s+{name}\s*\(", raw, re.MULTILINE)}


def extract(path: Path) -> dict:
    """{name: {"source", "helpers", "placeholders"} or {"error"}} for the graded functions of a notebook.

    The last definition of a name wins, as it would when running all cells.
    ``helpers`` holds the notebook's other top-level functions (definitions
    only), so a graded function may call a helper the student wrote.
    """
    found: dict[str, dict] = {}
    helpers: dict[str, str] = {}
    for index, raw in enumerate(read_code_cells(path), start=1):
        for name, definition in _cell_definitions(raw, index).items():
            if name in GRADED:
                found[name] = definition
            elif "source" in definition:
                helpers[name] = definition["source"]
    for entry in found.values():
        entry["helpers"] = helpers
    return found
