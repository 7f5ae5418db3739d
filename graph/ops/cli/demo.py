"""``discount-manager demo``: a scripted negotiation on a real model, end to end.

The script tells the story of the concession schedule: a general question answered without
an offer, an opening offer below the cap, a counter-offer step, the best-and-final round and
acceptance; :func:`story` says at the end which of these beats the run showed.

If nothing answers at ``SGR_LLM_BASE_URL`` the local vLLM CPU server is installed (first time
only) and started, and stopped again at the end unless ``--keep-server``. The demo writes to
its own freshly seeded data directory (``$SGR_DATA_DIR/demo``), so it can be replayed.
"""

from __future__ import annotations

import asyncio
import time
from itertools import pairwise

from graph.ops import local_llm
from graph.ops.cli.render import format_record
from graph.progress import Progress
from graph.services import Services
from graph.session import Negotiator, TurnResult, open_negotiator
from graph.settings import Settings
from stores.seed import generate

SCRIPT = [
    "What are your opening hours?",
    "I want a discount or I'm leaving!",
    "That's too little, I need 25%.",
    "Can you go higher? This is my last try.",
    "Alright, I accept.",
]
NEW_OFFER = ("proposed", "approval_pending")


def story(results: list[TurnResult]) -> list[tuple[str, bool]]:
    """The beats of the demo's story and whether this run showed each one."""
    offers = [r.offer for r in results if r.offer and r.status in NEW_OFFER]
    steps = [b["discount_percent"] for b in offers]
    first = results[0] if results else None
    return [
        (
            "a general question answered without an offer",
            bool(first and first.route == "respond" and not first.offer),
        ),
        (
            "an opening offer below the cap",
            bool(offers and offers[0]["discount_percent"] < offers[0]["cap_percent"]),
        ),
        ("a counter-offer step", any(b > a for a, b in pairwise(steps))),
        ("a best-and-final round", any("best and final" in (r.reply or "") for r in results)),
        ("acceptance", any(r.status == "accepted" for r in results)),
    ]


def _print_turn(n: int, message: str, r: TurnResult, dialect: str, out: Progress) -> None:
    out(f"\n--- turn {n}: customer> {message}")
    out(f"route: {r.route}   dialect: {dialect}   latency: {r.latency_s:.1f}s")
    for rec in r.audit:
        for line in format_record(rec):
            out(line)
    if r.approval:
        out(
            f"proposed {r.approval['proposed_percent']:g}% (cap {r.approval['cap_percent']:g}%): "
            "paused for a manager's approval"
        )
        return
    if r.offer:
        out(
            f"offer: {r.offer['discount_percent']:g}% (cap {r.offer['cap_percent']:g}%), "
            f"code {r.offer['code']}, status {r.status}"
        )
    if r.error:
        out(f"error (fallback reply used): {r.error}")
    out(f"agent> {r.reply}")


async def play(neg: Negotiator, user: str, session: str, out: Progress) -> list[TurnResult]:
    """Play ``SCRIPT``; approvals are granted by the demo's manager, and say so."""
    results = []
    dialect = neg.services.llm().dialect
    for n, message in enumerate(SCRIPT, 1):
        r = await neg.run_turn(session, user, message)
        if r.approval:
            _print_turn(n, message, r, dialect, out)
            out(
                f"manager approval needed ({'; '.join(r.approval['reasons'])}): "
                "the demo's manager approves"
            )
            paused = r.latency_s
            r = await neg.resume(session, {"decision": "approve", "approver": "demo-manager"})
            r.latency_s += paused
            r.audit = []  # printed above, before the pause
        _print_turn(n, message, r, dialect, out)
        results.append(r)
    return results


def run_demo(
    s: Settings, *, keep_server: bool = False, user: str = "user_100", out: Progress = print
) -> int:
    """Set up what is missing, play the script, clean up. 0 when every turn ran."""
    s, started = local_llm.ensure_endpoint(s, out)
    try:
        demo = s.with_data_dir(s.data_dir / "demo")
        generate(demo.data_dir, users=10, seed=42)
        out(f"demo data seeded in {demo.data_dir}")
        services = Services(settings=demo)
        out(f"model {services.llm().model_name} · dialect {services.llm().dialect}")
        session = f"demo-{time.strftime('%Y%m%d-%H%M%S')}"

        async def run() -> list[TurnResult]:
            async with open_negotiator(services) as neg:
                return await play(neg, user, session, out)

        results = asyncio.run(run())
        out("\nthe story:")
        for beat, shown in story(results):
            out(f"  [{'x' if shown else ' '}] {beat}")
        lat = sorted(r.latency_s for r in results)
        out(f"\nsession {session}: {len(results)} turns, p50 latency {lat[len(lat) // 2]:.1f}s")
        out(
            f"read it back: SGR_DATA_DIR={demo.data_dir} discount-manager history "
            f"--session {session}"
        )
        return 0
    finally:
        if started and not keep_server:
            local_llm.stop(s)
            out("stopped the local server (use --keep-server to keep it)")
