"""The bench's command-line options (light: the CLI builds its parser without the bench)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The bench options (shared with the CLI subcommand)."""
    ap.add_argument("--quick", action="store_true", help="smaller stages, about two minutes")
    ap.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # tests
    ap.add_argument("--json", action="store_true", help="JSON on stdout (table on stderr)")
    ap.add_argument("--out", type=Path, help="also write the JSON to this file")
    ap.add_argument("--endpoint", help="a real OpenAI-compatible endpoint (…/v1)")
    ap.add_argument("--no-http", action="store_true", help="skip the HTTP service stage")
    ap.add_argument("--latency", type=float, help="fake LLM seconds per call")
    ap.add_argument(
        "--stages",
        default="overhead,lookup,concurrency,http,tokens,endpoint",
        help="comma-separated subset of the stages to run",
    )
    ap.add_argument("--work-dir", type=Path, help="default: a temporary directory")
