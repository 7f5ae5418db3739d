"""``uv run python -m graph.bench.perf [--quick] [--json]``."""

from graph.bench.perf.run import main

raise SystemExit(main())
