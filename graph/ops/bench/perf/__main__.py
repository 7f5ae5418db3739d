"""``uv run python -m graph.ops.bench.perf [--quick] [--json]``."""

from graph.ops.bench.perf.run import main

raise SystemExit(main())
