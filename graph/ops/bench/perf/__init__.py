"""The performance benchmark: ``discount-manager bench`` / ``python -m graph.ops.bench.perf``."""
