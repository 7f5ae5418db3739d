"""Benchmarks that print figures: ``python -m graph.bench.routing`` (routing accuracy on a
real model) and ``python -m graph.bench.seed`` (data generation and lookup rates)."""
