"""``python -m graph.cli``: the same as the ``discount-manager`` console script."""

import sys

from graph.cli import main

sys.exit(main())
