"""``discount-manager``: the command line of the negotiator.

Exit codes: 0 ok (a turn that ran with the typed fallback reply is ok: its JSON carries the
error); 1 a check failed (doctor, offers validate); 2 bad input; 3 the LLM endpoint is
unreachable before the turn; 4 data or local server missing/broken.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from graph.settings import Settings, get_settings
from graph.sgr_client import LLMUnavailableError, StructuredOutputError
from graph.validation import InputError

EXIT_CHECK, EXIT_INPUT, EXIT_LLM, EXIT_DATA = 1, 2, 3, 4


class CLIError(Exception):
    """A one-line error with its exit code."""

    def __init__(self, message: str, code: int = EXIT_INPUT) -> None:
        super().__init__(message)
        self.code = code


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _progress(text: str) -> None:
    print(f"  … {text}", file=sys.stderr, flush=True)


def _dump(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, default=str))


@contextmanager
def _negotiator(settings: Settings) -> Iterator[Any]:
    from graph.services import Services
    from graph.session import Negotiator, open_checkpointer

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with open_checkpointer(str(settings.checkpoint_db)) as saver:
        yield Negotiator(Services(settings=settings), saver)


def _require_llm(settings: Settings) -> None:
    from graph.services import first_model

    first_model(settings.llm_base_url, settings.llm_api_key)


def _print_turn(result: Any, *, verbose: bool = False) -> None:
    if result.reply:
        print(f"agent> {result.reply}")
    if result.offer and result.offer.get("code"):
        o = result.offer
        pct, cap = o["discount_percent"], o["cap_percent"]
        print(f"       [offer {pct:g}% (cap {cap:g}%) code {o['code']}]")
    if result.error:
        print(f"       [error: {result.error}]")
    if verbose:
        print(f"       [route {result.route}, {result.latency_s:.1f}s]")


# --- commands ---------------------------------------------------------------------------


def cmd_setup_data(args: argparse.Namespace, s: Settings) -> int:
    from stores.seed import generate

    report = generate(s.data_dir, users=args.users, seed=args.seed, progress=_progress)
    print(f"wrote {report.users} users to {s.hot_db} and {s.cold_db} in {report.seconds:.1f}s")
    return 0


def cmd_turn(args: argparse.Namespace, s: Settings) -> int:
    with _negotiator(s) as neg:
        neg.check_turn(args.session, args.user, args.message)
        _require_llm(s)
        result = neg.run_turn(
            args.session, args.user, args.message, progress=None if args.json else _progress
        )
    if args.json:
        _dump(result.as_json())
    else:
        _print_turn(result, verbose=True)
    return 0


def _ask_approval(neg: Any, session: str, approval: dict[str, Any]) -> Any:
    print("\n  MANAGER APPROVAL NEEDED")
    print(
        f"  customer {approval['user_id']}, cart {approval['cart_value']:.2f}, "
        f"cap {approval['cap_percent']:g}%, proposed {approval['proposed_percent']:g}%"
    )
    for reason in approval["reasons"]:
        print(f"  - {reason}")
    for key, value in (approval.get("reasoning") or {}).items():
        print(f"    {key}: {value}")
    while True:
        answer = input("  approve? [y]es / [n]o / a lower percent: ").strip().lower()
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
            return neg.resume(session, decision, progress=_progress)
        except InputError as e:
            _err(f"error: {e}")


def cmd_chat(args: argparse.Namespace, s: Settings) -> int:
    session = args.session or f"s-{uuid.uuid4().hex[:12]}"
    with _negotiator(s) as neg:
        neg.check_turn(session, args.user, "hello")
        _require_llm(s)
        print(f"session {session} as {args.user} (empty line or Ctrl-D to quit)")
        while True:
            try:
                text = input("you> ")
            except EOFError:
                print()
                break
            if not text.strip():
                break
            try:
                result = neg.run_turn(session, args.user, text, progress=_progress)
                while result.approval:
                    result = _ask_approval(neg, session, result.approval)
            except InputError as e:
                _err(f"error: {e}")
                continue
            _print_turn(result, verbose=True)
    print(f"resume with: discount-manager chat --user {args.user} --session {session}")
    return 0


def cmd_history(args: argparse.Namespace, s: Settings) -> int:
    from graph.validation import check_session_id

    check_session_id(args.session)
    with _negotiator(s) as neg:
        turns = neg.history(args.session)
    if not turns:
        raise CLIError(f"no session {args.session} in {s.checkpoint_db}", EXIT_INPUT)
    if args.json:
        _dump(turns)
        return 0
    for t in turns:
        extra = f" [{t['route']}" + (f", {t['status']}" if t["status"] else "") + "]"
        print(f"[{t['turn']}] you> {t['customer']}")
        print(f"    agent{extra if t['route'] else ''}> {t['reply']}")
    return 0


def cmd_graph(args: argparse.Namespace, s: Settings) -> int:
    from graph.builder import graph

    print(graph.get_graph().draw_mermaid())
    return 0


def cmd_doctor(args: argparse.Namespace, s: Settings) -> int:
    from graph.doctor import run_doctor

    return run_doctor(s, print)


def cmd_approve(args: argparse.Namespace, s: Settings) -> int:
    decision: dict[str, Any] = {"decision": args.decision, "approver": args.approver}
    if args.percent is not None:
        decision["percent"] = args.percent
    with _negotiator(s) as neg:
        result = neg.resume(args.session, decision, progress=None if args.json else _progress)
    if args.json:
        _dump(result.as_json())
    else:
        _print_turn(result, verbose=True)
    return 0


def cmd_offers(args: argparse.Namespace, s: Settings) -> int:
    from stores.ledger import get_ledger

    ledger = get_ledger(s)
    if args.offers_cmd == "validate":
        check = ledger.validate(args.code, args.user)
        if args.json:
            _dump(check.model_dump(mode="json"))
        else:
            print(("valid" if check.valid else "invalid") + f": {check.reason}")
        return 0 if check.valid else EXIT_CHECK
    offers = ledger.list(args.user)
    if args.json:
        _dump([o.model_dump(mode="json") for o in offers])
        return 0
    if not offers:
        print("no offers")
    for o in offers:
        print(
            f"{o.code}  {o.user_id:<10} {o.discount_percent:>5g}%  {o.amount:>8.2f}  "
            f"{o.status:<16} session {o.session_id} turn {o.turn}  "
            f"expires {o.expires_at:%Y-%m-%d %H:%M}"
        )
    return 0


def cmd_audit(args: argparse.Namespace, s: Settings) -> int:
    from graph.audit import format_audit
    from graph.validation import check_session_id

    check_session_id(args.session)
    with _negotiator(s) as neg:
        records = neg.state(args.session).get("audit", [])
    if not records:
        raise CLIError(f"no audit records for session {args.session}", EXIT_INPUT)
    if args.json:
        _dump(records)
    else:
        print(format_audit(records))
    return 0


def cmd_local_llm(args: argparse.Namespace, s: Settings) -> int:
    from graph import local_llm

    action = args.action
    if action == "install":
        r = local_llm.install(s, progress=_progress)
        print("already installed" if r.already_installed else f"installed in {r.seconds:.0f}s")
    elif action == "start":
        info = local_llm.start(s, progress=_progress)
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
    from graph.demo import run_demo

    return run_demo(s, keep_server=args.keep_server, user=args.user)


# --- parser -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="discount-manager", description=__doc__.splitlines()[0])
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
    return p


def _errors() -> list[tuple[type[BaseException], int]]:
    from graph.local_llm import LocalLLMError
    from nodes.offer import ApprovalDecisionError
    from stores.errors import OfferError, StoreNotFoundError

    return [
        (InputError, EXIT_INPUT),
        (ApprovalDecisionError, EXIT_INPUT),
        (OfferError, EXIT_INPUT),
        (LLMUnavailableError, EXIT_LLM),
        (StructuredOutputError, EXIT_LLM),
        (LocalLLMError, EXIT_DATA),
        (StoreNotFoundError, EXIT_DATA),
    ]


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
        _err(f"error: {e}")
        return e.code
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except Exception as e:
        for kind, code in _errors():
            if isinstance(e, kind):
                _err(f"error: {e}")
                return code
        raise


if __name__ == "__main__":
    sys.exit(main())
