"""Benchmarks that print figures: ``python -m graph.ops.bench.routing`` (routing accuracy on a
real model) and ``python -m graph.ops.bench.seed`` (data generation and lookup rates)."""
