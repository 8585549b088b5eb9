"""The ``nst`` command line: the image command and the subcommands of :mod:`nst.commands.registry`.

``common`` is what every command shares; ``options`` is the image command's parser
(reused by ``batch`` and the fast mode); one module per command.
"""

from __future__ import annotations

import importlib
import sys

from nst.commands.registry import BY_NAME, IMAGE


def main(argv=None) -> int:
    """``nst ...``.  ``argv`` None: this process's command line (the process is the command, so it
    ignores late signals after finishing); a list: called from Python, signals untouched after."""
    console = argv is None
    argv = list(sys.argv[1:] if console else argv)
    if argv[:1] == ["help"]:  # `nst help`, `nst help video`
        argv = [*argv[1:2], "--help"]
    command = BY_NAME.get(argv[0]) if argv else None
    if command is None:
        return importlib.import_module(IMAGE.module).main(argv, console=console)
    return importlib.import_module(command.module).main(argv[1:], console=console)
