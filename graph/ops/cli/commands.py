"""The ``cmd_*`` functions behind the subcommands: ``(args, settings) -> exit code``."""

from __future__ import annotations

import argparse
import asyncio
import uuid
from typing import Any

from graph.ops.cli.errors import EXIT_CHECK, EXIT_INPUT, CLIError, turn_exit_code
from graph.ops.cli.render import (
    dump,
    error,
    format_audit,
    print_approval,
    print_history,
    print_offers,
    print_turn,
    progress,
    safe,
)
from graph.settings import Settings


def _require_llm(s: Settings) -> None:
    from graph.services import first_model

    first_model(s.llm_base_url, s.llm_api_key)


def cmd_setup_data(args: argparse.Namespace, s: Settings) -> int:
    from stores.seed import generate

    report = generate(
        s.data_dir,
        users=args.users,
        seed=args.seed,
        progress=progress,
        database_url=s.database_url,
    )
    where = f"{s.hot_db} and {s.cold_db}"
    if s.database_url:
        where += " (hot sessions and analytics also loaded into the database)"
    print(f"wrote {report.users} users to {where} in {report.seconds:.1f}s")
    return 0


def cmd_turn(args: argparse.Namespace, s: Settings) -> int:
    from graph.services import Services
    from graph.session import open_negotiator

    async def run() -> Any:
        async with open_negotiator(Services(settings=s)) as neg:
            await neg.check_turn(args.session, args.user, args.message)
            await asyncio.to_thread(_require_llm, s)
            return await neg.run_turn(
                args.session, args.user, args.message, progress=None if args.json else progress
            )

    result = asyncio.run(run())
    if args.json:
        dump(result.as_json())
    else:
        print_turn(result, verbose=True)
    if result.status == "closed":
        error(f"session {args.session} is closed ({s.max_turns} turns): start a new session")
    return turn_exit_code(result)


async def _ask_approval(neg: Any, session: str, approval: dict[str, Any]) -> Any:
    from graph.validation import InputError

    print_approval(approval)
    while True:
        prompt = "  approve? [y]es / [n]o / a lower percent: "
        answer = (await asyncio.to_thread(input, prompt)).strip().lower()
        if answer in ("y", "yes"):
            decision: dict[str, Any] = {"decision": "approve", "approver": "cli"}
        elif answer in ("n", "no"):
            decision = {"decision": "reject", "approver": "cli"}
        else:
            try:
                decision = {"decision": "approve", "percent": float(answer), "approver": "cli"}
            except ValueError:
                continue
        try:
            return await neg.resume(session, decision, progress=progress)
        except InputError as e:
            error(f"error: {e}")


def cmd_chat(args: argparse.Namespace, s: Settings) -> int:
    from graph.services import Services
    from graph.session import open_negotiator
    from graph.validation import InputError

    session = args.session or f"s-{uuid.uuid4().hex[:12]}"

    async def run() -> None:  # one process, one warm graph and connection for the chat
        async with open_negotiator(Services(settings=s)) as neg:
            await neg.check_turn(session, args.user, "hello")
            await asyncio.to_thread(_require_llm, s)
            print(f"session {session} as {args.user} (empty line or Ctrl-D to quit)")
            while True:
                try:
                    text = await asyncio.to_thread(input, "you> ")
                except EOFError:
                    print()
                    break
                if not text.strip():
                    break
                try:
                    result = await neg.run_turn(session, args.user, text, progress=progress)
                    while result.approval:
                        result = await _ask_approval(neg, session, result.approval)
                except InputError as e:
                    error(f"error: {e}")
                    continue
                print_turn(result, verbose=True)

    asyncio.run(run())
    print(f"resume with: discount-manager chat --user {args.user} --session {session}")
    return 0


def cmd_history(args: argparse.Namespace, s: Settings) -> int:
    from graph.services import Services
    from graph.session import open_negotiator
    from graph.validation import check_session_id

    check_session_id(args.session)

    async def run() -> list[dict[str, Any]]:
        async with open_negotiator(Services(settings=s)) as neg:
            return await neg.history(args.session)

    turns = asyncio.run(run())
    if not turns:
        raise CLIError(f"no session {args.session} in {s.checkpoint_db}", EXIT_INPUT)
    if args.json:
        dump(turns)
    else:
        print_history(turns)
    return 0


def cmd_graph(args: argparse.Namespace, s: Settings) -> int:
    from graph.builder import graph

    print(graph.get_graph().draw_mermaid())
    return 0


def cmd_doctor(args: argparse.Namespace, s: Settings) -> int:
    from graph.ops.cli.doctor import run_doctor

    return run_doctor(s, lambda text: print(safe(text)))


def cmd_approve(args: argparse.Namespace, s: Settings) -> int:
    from graph.services import Services
    from graph.session import open_negotiator

    decision: dict[str, Any] = {"decision": args.decision, "approver": args.approver}
    if args.percent is not None:
        decision["percent"] = args.percent

    async def run() -> Any:
        async with open_negotiator(Services(settings=s)) as neg:
            return await neg.resume(
                args.session, decision, progress=None if args.json else progress
            )

    result = asyncio.run(run())
    if args.json:
        dump(result.as_json())
    else:
        print_turn(result, verbose=True)
    return turn_exit_code(result)


def cmd_offers(args: argparse.Namespace, s: Settings) -> int:
    from graph.services import Services

    ledger = Services(settings=s).ledger()
    if args.offers_cmd == "validate":
        check = ledger.validate(args.code, args.user)
        if args.json:
            dump(check.model_dump(mode="json"))
        else:
            print(("valid" if check.valid else "invalid") + f": {check.reason}")
        return 0 if check.valid else EXIT_CHECK
    offers = ledger.list(args.user)
    if args.json:
        dump([o.model_dump(mode="json") for o in offers])
    else:
        print_offers(offers)
    return 0


def cmd_audit(args: argparse.Namespace, s: Settings) -> int:
    from graph.services import Services
    from graph.validation import check_session_id

    check_session_id(args.session)
    records = Services(settings=s).audit_log().session(args.session)
    if not records:
        raise CLIError(f"no audit records for session {args.session}", EXIT_INPUT)
    if args.json:
        dump(records)
    else:
        print(format_audit(records))
    return 0


def cmd_local_llm(args: argparse.Namespace, s: Settings) -> int:
    from graph.ops import local_llm

    action = args.action
    if action == "install":
        r = local_llm.install(s, progress=progress)
        print("already installed" if r.already_installed else f"installed in {r.seconds:.0f}s")
    elif action == "start":
        info = local_llm.start(s, progress=progress)
        print(f"serving {info.model} at {info.base_url} (pid {info.pid}, log {info.log_path})")
    elif action == "stop":
        print("stopped" if local_llm.stop(s) else "not running")
    elif action == "status":
        st = local_llm.status(s)
        print(
            f"installed={st.installed} running={st.running} ready={st.ready} pid={st.pid} "
            f"url={st.base_url} model={st.model}"
        )
    elif action == "logs":
        print(local_llm.logs(s, lines=args.lines))
    return 0


def cmd_demo(args: argparse.Namespace, s: Settings) -> int:
    from graph.ops.cli.demo import run_demo

    return run_demo(s, keep_server=args.keep_server, user=args.user)
