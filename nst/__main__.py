"""``python -m nst``: the same as the ``nst`` command (see :mod:`nst.cli`)."""

import sys

from .cli import main

sys.exit(main())
