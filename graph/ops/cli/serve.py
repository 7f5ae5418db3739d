"""``discount-manager serve`` and ``discount-manager token``: the HTTP service, from a shell.

``serve`` starts uvicorn with ``--workers N`` processes of ``graph.api.app:create_app``; each
reads its settings from the environment, so everything decided here (an LLM endpoint found or
started, development secrets) is put into the environment first. On a machine with nothing
set up it behaves like ``demo``: the local model is started (installed once), demo data is
seeded, and development secrets are generated and printed with ready-to-open page links.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from graph.ops.cli.errors import EXIT_INPUT, CLIError
from graph.settings import Settings


def add_serve_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The ``serve`` and ``token`` subcommands."""
    sp = sub.add_parser("serve", help="the HTTP service and the pages (FastAPI + uvicorn)")
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=8080)
    sp.add_argument("--workers", type=int, default=1, help="worker processes (stateless)")
    sp.add_argument(
        "--no-local-llm",
        action="store_true",
        help="never start the local model: fail if SGR_LLM_BASE_URL does not answer",
    )
    sp.set_defaults(func=cmd_serve)

    sp = sub.add_parser("token", help="a shopper JWT for development (signed with SGR_SHOP_SECRET)")
    sp.add_argument("--user", required=True)
    sp.add_argument("--ttl", type=int, default=None, help="seconds (default SGR_TOKEN_TTL_S)")
    sp.set_defaults(func=cmd_token)


def cmd_token(args: argparse.Namespace, s: Settings) -> int:
    from graph.api.auth import shopper_token
    from graph.validation import check_user_id

    check_user_id(args.user)
    if args.ttl is not None and args.ttl <= 0:
        raise CLIError("--ttl must be positive", EXIT_INPUT)
    if not s.shop_secret:
        raise CLIError("SGR_SHOP_SECRET is not set: there is no key to sign with", EXIT_INPUT)
    print(shopper_token(s, args.user, args.ttl))
    return 0


def _dev_secrets(s: Settings) -> tuple[Settings, list[str]]:
    """Secrets generated for this run when none are configured (development only)."""
    notes = []
    update: dict[str, str] = {}
    if not s.shop_secret:
        update["shop_secret"] = os.environ["SGR_SHOP_SECRET"] = secrets.token_urlsafe(32)
        notes.append("SGR_SHOP_SECRET is not set: generated one for this run (development)")
    if not s.manager_tokens:
        token = "dev:" + secrets.token_urlsafe(18)
        update["manager_tokens"] = os.environ["SGR_MANAGER_TOKENS"] = token
        notes.append("SGR_MANAGER_TOKENS is not set: generated one for this run (development)")
    return s.model_copy(update=update), notes


@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """SIGTERM (what a process manager sends) raises ``SystemExit(143)`` here instead of
    ending the process at once, so that cleanup runs: uvicorn shuts down gracefully, then
    re-raises the signal it caught, which would otherwise skip every ``finally``."""

    def leave(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, leave)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_serve(args: argparse.Namespace, s: Settings) -> int:
    import uvicorn

    from graph.api.auth import manager_entries, shopper_token
    from graph.ops import local_llm
    from stores.seed import generate

    if args.workers < 1:
        raise CLIError("--workers must be at least 1", EXIT_INPUT)
    started = False
    if not args.no_local_llm:
        s, started = local_llm.ensure_endpoint(s, print)
        os.environ["SGR_LLM_BASE_URL"] = s.llm_base_url
    try:
        if not s.hot_db.is_file() or not Path(s.cold_db).is_file():
            generate(s.data_dir, users=10, seed=42, database_url=s.database_url)
            print(f"no customer data in {s.data_dir}: seeded the ten demo customers")
        s, notes = _dev_secrets(s)
        for note in notes:
            print(f"warning: {note}")
        base = f"http://{args.host}:{args.port}"
        if notes:
            print(f"shopper page: {base}/?token={shopper_token(s, 'user_100', 3600)}")
            print(f"manager inbox: {base}/manager  (token: {manager_entries(s)[0][1]})")
            print(f"analyst dashboard: {base}/analyst")
        print(
            f"API docs: {base}/docs  ({args.workers} worker(s), backend "
            f"{'postgres' if s.database_url else 'sqlite'})"
        )
        with sigterm_as_exit():  # the local model is stopped on SIGTERM too
            uvicorn.run(
                "graph.api.app:create_app",
                factory=True,
                host=args.host,
                port=args.port,
                workers=args.workers,
                log_level="warning",
                proxy_headers=False,
            )
    finally:
        if started:
            local_llm.stop(s)
            print("stopped the local model server")
    return 0
