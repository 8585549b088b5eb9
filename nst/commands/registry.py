"""Every ``nst`` command: its name, its module and a one-line summary (``nst --help`` lists them).

A new front end is one module here in ``nst/commands/`` with ``main(argv, console) -> int``
and one line below.  The modules are imported only when their command runs, so each
pulls in its own libraries (OpenCV, Ray, FastAPI) and nothing else pays for them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    name: str
    module: str  # its main(argv, console) runs the command
    summary: str


# The command without a name (`nst CONTENT STYLE -o OUT`) is nst.commands.image.
IMAGE = Command("", "nst.commands.image", "paint CONTENT in the style of STYLE (the default command)")
COMMANDS = (
    Command("video", "nst.commands.video", "stylise a clip frame by frame, without flicker, its sound kept"),
    Command("batch", "nst.commands.batch", "stylise many images with one style; resumable; a pool or a Ray cluster"),
    Command("serve", "nst.commands.serve", "start the web page: drop a photo and paintings, watch it paint"),
    Command("weights", "nst.commands.weights", "fetch the networks' weights ahead of time, show where, verify"),
)
BY_NAME = {command.name: command for command in COMMANDS}


def commands_help() -> str:
    """The list of commands for the end of ``nst --help``."""
    width = max(len(command.name) for command in COMMANDS)
    lines = [f"  nst {command.name:<{width}}  {command.summary}" for command in COMMANDS]
    return ("\ncommands (each has its own page: nst help COMMAND, or nst COMMAND --help):\n"
            + "\n".join(lines) + "\n")
