"""The ``nst`` command line: the image command and the subcommands of :mod:`nst.commands.registry`.

``common`` is what every command shares; ``options`` is the image command's parser
(reused by ``batch`` and the fast mode); one module per command.
"""

from __future__ import annotations

import importlib
import sys

from nst.commands.common import EXIT_BAD_INPUT
from nst.commands.registry import BY_NAME, IMAGE
from nst.host import quiet


def main(argv=None) -> int:
    """``nst ...``.  ``argv`` None: this process's command line (the process is the command, so it
    ignores late signals after finishing); a list: called from Python, signals untouched after."""
    console = argv is None
    argv = list(sys.argv[1:] if console else argv)
    if console:  # this process is the command: TensorFlow's start-up lines stay off its terminal
        quiet.install()
    if argv[:1] == ["help"]:  # `nst help`, `nst help video`
        if len(argv) > 1 and argv[1] not in BY_NAME:
            print(f"error: no command {argv[1]!r}; the commands are {', '.join(BY_NAME)} (see nst --help)",
                  file=sys.stderr)
            return EXIT_BAD_INPUT
        argv = [*argv[1:2], "--help"]
    command = BY_NAME.get(argv[0]) if argv else None
    if command is None:
        return importlib.import_module(IMAGE.module).main(argv, console=console)
    return importlib.import_module(command.module).main(argv[1:], console=console)
