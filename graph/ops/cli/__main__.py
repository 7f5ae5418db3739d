"""``python -m graph.ops.cli``: the same as the ``discount-manager`` console script."""

import sys

from graph.ops.cli import main

sys.exit(main())
