"""Operator tooling around the run-time graph: the CLI, benchmarks, simulator, local model.

Run-time code (``graph`` outside ``ops``, ``nodes``, ``stores``, ``prompts``) never imports
this package (an import-linter contract).
"""
