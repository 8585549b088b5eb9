"""``python -m nst.weights``: fetch and verify the weights (see :func:`nst.weights.fetch.main`)."""

import sys

from nst.weights.fetch import main

sys.exit(main())
