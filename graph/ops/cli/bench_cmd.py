"""``discount-manager bench``: the performance benchmark (``graph/ops/bench/perf``)."""

from __future__ import annotations

import argparse
from typing import Any

from graph.ops.bench.perf.options import add_arguments
from graph.settings import Settings


def cmd_bench(args: argparse.Namespace, s: Settings) -> int:
    """Run every stage and print the table (and JSON); its own data, never ``s.data_dir``."""
    from graph.ops.bench.perf.run import run_from_args

    del s  # the bench seeds throw-away data dirs of its own
    return run_from_args(args)


def add_bench_parser(sub: Any) -> None:
    """Register the ``bench`` subcommand."""
    sp = sub.add_parser("bench", help="performance figures beside their baselines")
    add_arguments(sp)
    sp.set_defaults(func=cmd_bench)
