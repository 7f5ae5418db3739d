"""``discount-manager``: the command line of the negotiator.

Exit codes: 0 ok; 1 a check failed (doctor, offers validate); 2 bad input; 3 the LLM endpoint
is unreachable or misbehaved — before the turn (one error line) or during it (the turn's JSON
is printed with the fallback reply, ``status: "fallback"`` and the error); 4 data or local
server missing/broken.

Modules: ``parser`` (argparse), ``commands`` (the ``cmd_*`` functions), ``render`` (what is
printed, the audit formatter included), ``errors`` (exit codes), ``demo``, ``doctor``.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence

from graph.ops.cli.errors import CLIError, exit_code
from graph.ops.cli.parser import build_parser
from graph.ops.cli.render import error
from graph.settings import Settings, get_settings

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    func: Callable[[argparse.Namespace, Settings], int] = args.func
    try:
        return func(args, get_settings())
    except CLIError as e:
        error(f"error: {e}")
        return e.code
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    except Exception as e:
        code = exit_code(e)
        if code is None:
            raise
        error(f"error: {e}")
        return code
