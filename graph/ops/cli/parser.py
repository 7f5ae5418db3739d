"""The argument parser of ``discount-manager``: one subcommand per ``cmd_*`` function."""

from __future__ import annotations

import argparse

from graph.ops.cli.analyst import add_analyst_parsers
from graph.ops.cli.bench_cmd import add_bench_parser
from graph.ops.cli.commands import (
    cmd_approve,
    cmd_audit,
    cmd_chat,
    cmd_demo,
    cmd_doctor,
    cmd_graph,
    cmd_history,
    cmd_local_llm,
    cmd_offers,
    cmd_setup_data,
    cmd_turn,
)
from graph.ops.cli.serve import add_serve_parsers

DESCRIPTION = "``discount-manager``: the command line of the negotiator."


def build_parser() -> argparse.ArgumentParser:
    """Subcommands, their options, and the ``cmd_*`` each one runs (``args.func``)."""
    p = argparse.ArgumentParser(prog="discount-manager", description=DESCRIPTION)
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = p.add_subparsers(dest="command", required=True)

    sp = sub.add_parser("setup-data", help="generate the deterministic demo data")
    sp.add_argument("--users", type=int, default=10)
    sp.add_argument("--seed", type=int, default=42)
    sp.set_defaults(func=cmd_setup_data)

    sp = sub.add_parser("chat", help="interactive negotiation")
    sp.add_argument("--user", required=True)
    sp.add_argument("--session")
    sp.set_defaults(func=cmd_chat)

    sp = sub.add_parser("turn", help="one turn of a session")
    sp.add_argument("--user", required=True)
    sp.add_argument("--session", required=True)
    sp.add_argument("--message", required=True)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_turn)

    sp = sub.add_parser("history", help="a session's turns from the checkpoints")
    sp.add_argument("--session", required=True)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_history)

    sub.add_parser("graph", help="print the graph as Mermaid").set_defaults(func=cmd_graph)
    sub.add_parser("doctor", help="check the endpoint enforces schemas").set_defaults(
        func=cmd_doctor
    )

    sp = sub.add_parser("approve", help="decide a pending approval")
    sp.add_argument("--session", required=True)
    sp.add_argument("--decision", choices=["approve", "reject"], required=True)
    sp.add_argument("--percent", type=float)
    sp.add_argument("--approver", default="manager")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_approve)

    sp = sub.add_parser("offers", help="the offer ledger")
    osub = sp.add_subparsers(dest="offers_cmd", required=True)
    op = osub.add_parser("list")
    op.add_argument("--user")
    op.add_argument("--json", action="store_true")
    op = osub.add_parser("validate")
    op.add_argument("code")
    op.add_argument("--user", required=True)
    op.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_offers)

    sp = sub.add_parser("audit", help="the SGR reasoning trace of a session")
    sp.add_argument("--session", required=True)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_audit)

    sp = sub.add_parser("local-llm", help="the local vLLM CPU server")
    sp.add_argument("action", choices=["install", "start", "stop", "status", "logs"])
    sp.add_argument("--lines", type=int, default=50)
    sp.set_defaults(func=cmd_local_llm)

    sp = sub.add_parser("demo", help="play a scripted negotiation on the real local model")
    sp.add_argument("--keep-server", action="store_true")
    sp.add_argument("--user", default="user_100")
    sp.set_defaults(func=cmd_demo)

    add_analyst_parsers(sub)
    add_bench_parser(sub)
    add_serve_parsers(sub)
    return p
