"""The second course's task files, written from one template.

The spec hands in one file per task (``class_tasks/0-neural_style.py`` ...
``9-neural_style.py`` and ``100-neural_style.py``), each holding the whole
class ``NST`` as it stands after that task and importing only numpy and
tensorflow.  They are generated from ``eager_nst.py.in`` so that a fix is
made once; ``neural_style.py`` at the repository root is the final form
(task 10) under an importable name.

``python -m nst.classroom.eager_tasks`` writes the files;
``--check`` only says whether they are current (the test suite runs it).

Template lines ``#% if task >= N``, ``#% elif ...``, ``#% else`` and
``#% end`` keep or drop the lines between them for a task (conditions are
``task`` compared with an integer; blocks nest); ``@TASK@`` and
``@SUMMARY@`` are replaced by the task's number and one-line summary.
"""

import operator
import re
import sys
from pathlib import Path

from nst.io.files import PROJECT_ROOT, write_atomically

TEMPLATE = Path(__file__).with_name("eager_nst.py.in")
FINAL_TASK = 10
TASKS = tuple(range(FINAL_TASK + 1))
# The spec's task titles, the first line of each file's docstring.
TITLES = ("Initialize", "Load the Model", "Gram Matrix", "Extract Features", "Layer Style Cost",
          "Style Cost", "Content Cost", "Total Cost", "Compute Gradients", "Generate Image",
          "Variational Cost")
_CONDITION = re.compile(r"task\s*(<=|>=|==|!=|<|>)\s*(\d+)")
_COMPARE = {"<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
            ">": operator.gt, ">=": operator.ge}


class TemplateError(ValueError):
    """A malformed ``#%`` line in the template."""


def file_name(task: int) -> str:
    """The spec's file name for a task (task 10 is 100-neural_style.py)."""
    return "100-neural_style.py" if task == FINAL_TASK else f"{task}-neural_style.py"


def _holds(condition: str, task: int, line_number: int) -> bool:
    match = _CONDITION.fullmatch(condition.strip())
    if not match:
        raise TemplateError(f"line {line_number}: cannot read the condition {condition!r}")
    return _COMPARE[match.group(1)](task, int(match.group(2)))


def render(task: int, template: str = None) -> str:
    """The task file's text for ``task`` (0 to 10)."""
    if not isinstance(task, int) or task not in TASKS:
        raise ValueError(f"task must be an integer from 0 to {FINAL_TASK}")
    text = TEMPLATE.read_text() if template is None else template
    # One entry per open block: [keeping now, some branch already taken, parent keeping].
    blocks, kept = [], []
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        directive = line.strip()
        if not directive.startswith("#%"):
            if all(block[0] for block in blocks):
                kept.append(line)
            continue
        word, _, condition = directive[2:].strip().partition(" ")
        if word == "if":
            holds = _holds(condition, task, number)
            blocks.append([holds, holds])
        elif word in ("elif", "else") and blocks:
            block = blocks[-1]
            holds = not block[1] and (word == "else" or _holds(condition, task, number))
            block[0], block[1] = holds, block[1] or holds
        elif word == "end" and blocks:
            blocks.pop()
        else:
            raise TemplateError(f"line {number}: unexpected {directive!r}")
    if blocks:
        raise TemplateError(f"{len(blocks)} block(s) not closed by '#% end'")
    summary = f"Task {task} of the NST class: {TITLES[task]}."
    return "".join(kept).replace("@TASK@", str(task)).replace("@SUMMARY@", summary)


def targets(root: Path = None) -> dict:
    """``{path: text}`` for every generated file under the repository ``root``."""
    root = PROJECT_ROOT if root is None else root
    files = {root / "class_tasks" / file_name(task): render(task) for task in TASKS}
    files[root / "neural_style.py"] = files[root / "class_tasks" / file_name(FINAL_TASK)]
    return files


def stale(root: Path = None) -> list:
    """The generated files that are missing or differ from the template's output."""
    return [path for path, text in targets(root).items()
            if not path.is_file() or path.read_text() != text]


def write(root: Path = None) -> list:
    """Write every stale file (atomically, executable); return their paths."""
    written = stale(root)
    files = targets(root)
    for path in written:
        write_atomically(path, lambda name, text=files[path]: Path(name).write_text(text))
        path.chmod(0o755)
    return written


def main(argv=None) -> int:
    """``python -m nst.classroom.eager_tasks [--check]``."""
    argv = sys.argv[1:] if argv is None else argv
    if argv not in ([], ["--check"]):
        print("usage: python -m nst.classroom.eager_tasks [--check]", file=sys.stderr)
        return 2
    if argv == ["--check"]:
        out_of_date = stale()
        for path in out_of_date:
            print(f"{path} is not what {TEMPLATE.name} gives; run python -m nst.classroom.eager_tasks")
        return 1 if out_of_date else 0
    for path in write():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
