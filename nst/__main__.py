"""``python -m nst``: the same as the ``nst`` command (see :mod:`nst.commands`)."""

import sys

from nst.commands import main

sys.exit(main())
