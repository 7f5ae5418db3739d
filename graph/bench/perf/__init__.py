"""The performance benchmark: ``discount-manager bench`` / ``python -m graph.bench.perf``."""
