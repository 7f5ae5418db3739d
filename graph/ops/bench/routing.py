"""Benchmark: routing accuracy, offers to non-negotiation turns and decode health, real model.

    uv run python -m graph.ops.bench.routing [--scenarios PATH ...] [--user user_100] [--json]

Plays every scenario in its own session through the whole graph and prints, per turn, the
expected and chosen route and any offer; then the figures: routing accuracy on labelled turns,
offers made to turns that ask for no concession (labelled ``respond``/``accept_offer``),
replies cut at ``max_tokens``, fallback turns (the customer saw the fallback reply), turns
priced from the schedule with template words, latency and output tokens per second. Default
scenarios: the shared development set, our own messages and two held-out sets
(``graph/ops/bench/messages``). Every delivered reply is printed with whose words it is.
Runs on a throw-away data dir; needs an endpoint (``discount-manager local-llm start``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
from collections import Counter
from pathlib import Path

from graph.ops.bench.messages import HOLDOUT_2, HOLDOUT_MESSAGES, OWN_MESSAGES, SHARED_SCENARIOS
from graph.services import Services, build_structured_llm
from graph.session import TurnResult, open_negotiator
from graph.settings import Settings, get_settings
from graph.sgr import ProbeResult
from stores.backend import reset_backends
from stores.seed import generate

FALLBACK_START = "Sorry, I couldn't process that"
NEW_OFFER = ("proposed", "approval_pending")

Row = tuple[dict, int, TurnResult]


def load_scenarios(path: Path) -> list[dict]:
    """The scenario lines of ``path``."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run(s: Settings, scenarios: list[dict], user: str, *, echo: bool = True) -> list[Row]:
    """Play every scenario in its own session on freshly seeded data (no standing offer
    carries over from one scenario to the next); returns (scenario, turn index, result)."""
    return asyncio.run(_run(s, scenarios, user, echo))


async def _run(s: Settings, scenarios: list[dict], user: str, echo: bool) -> list[Row]:
    out = []
    llm = build_structured_llm(s.model_copy(update={"verify_constraint": False}))
    for sc in scenarios:
        with tempfile.TemporaryDirectory() as tmp:
            data = s.with_data_dir(tmp).model_copy(update={"verify_constraint": False})
            generate(data.data_dir, users=10, seed=42)
            services = Services.with_llm(llm, data)  # one client for the whole run
            try:
                async with open_negotiator(services) as neg:
                    for i, text in enumerate(sc["turns"]):
                        if not text.strip():
                            continue  # bad input never reaches the model
                        r = await neg.run_turn(f"bench-{sc['id']}", user, text)
                        if r.approval:
                            decision = {"decision": "approve"}
                            r = await neg.resume(f"bench-{sc['id']}", decision)
                        out.append((sc, i, r))
                        if echo:
                            print(_line(sc, i, text, r), flush=True)
                            for cut in truncated_replies(r):
                                print(f"    cut at max_tokens: {cut}", flush=True)
            finally:
                reset_backends()
    await llm.aclose()
    return out


def truncated_replies(r: TurnResult) -> list[str]:
    """The raw text of each attempt of this turn cut at ``max_tokens`` (node, length, ends)."""
    out = []
    for rec in r.audit:
        for raw, finish in zip(rec.get("raw") or [], rec.get("finish_reasons") or [], strict=False):
            if finish == "length":
                out.append(f"{rec.get('node')} {len(raw)} chars: {raw[:160]!r} … {raw[-120:]!r}")
    return out


def _line(sc: dict, i: int, text: str, r: TurnResult) -> str:
    offer = f"offer {r.offer['discount_percent']:g}%" if new_offer(r) and r.offer else ""
    err = f"ERR {r.error[:50]}" if r.error else ""
    how = f"[{reply_source(r)}]"
    return (
        f"{sc['id']} t{i + 1} expect={expected(sc, i):<13} got={r.route!s:<13} "
        f"{r.latency_s:5.1f}s {offer:<11} {err}\n    customer: {text}\n    reply {how}: "
        f"{(r.reply or '').replace(chr(10), ' / ')}"
    )


def reply_source(r: TurnResult) -> str:
    """Whose words the customer read: ``model`` (passed the guard and the sentence judge),
    ``template`` (the model's words were refused), or ``code`` (no model words asked for)."""
    for rec in r.audit:
        parsed = rec.get("parsed") or {}
        if rec.get("node") == "router" and (parsed.get("decision") or {}).get("action") == (
            "respond"
        ):
            if r.route != "respond":
                return "code"  # the code heard an ask or an acceptance instead
            said = str(parsed["decision"].get("reply") or "")
            return "model" if said and said.strip() in (r.reply or "") else "template"
        if rec.get("node") == "pricing" and parsed.get("customer_message"):
            said = str(parsed["customer_message"])
            return "model" if said.strip() in (r.reply or "") else "template"
    return "code"


def expected(sc: dict, i: int) -> str:
    """The labelled route of turn ``i`` ('-' when unlabelled)."""
    routes = sc.get("expect_route") or []
    return routes[i] if i < len(routes) else "-"


def new_offer(r: TurnResult) -> bool:
    """Whether this turn issued (or proposed for approval) an offer."""
    return r.offer is not None and r.status in NEW_OFFER


def figures(rows: list[Row]) -> dict[str, float]:
    """Accuracy, offers to non-negotiation turns and decode figures of a run."""
    judged = [(sc, i, r) for sc, i, r in rows if expected(sc, i) != "-"]
    no_ask = [r for sc, i, r in judged if expected(sc, i) != "negotiate"]
    calls = [rec for _, _, r in rows for rec in r.audit if "finish_reasons" in rec]
    attempts = [f for rec in calls for f in rec["finish_reasons"]]
    lat = sorted(r.latency_s for _, _, r in rows)
    tokens = sum(rec["completion_tokens"] for rec in calls)
    seconds = sum(rec["latency_ms"] for rec in calls) / 1000
    fallbacks = sum(bool(r.reply and r.reply.startswith(FALLBACK_START)) for _, _, r in rows)
    templated = sum(
        bool((rec.get("policy") or {}).get("template")) for _, _, r in rows for rec in r.audit
    )
    sources = Counter(reply_source(r) for _, _, r in rows)
    model_words = sources["model"] + sources["template"]
    return {
        "turns": len(rows),
        "judged_turns": len(judged),
        "replies_in_model_words": sources["model"],
        "replies_templated": sources["template"],
        "templated_share_of_model_replies": sources["template"] / max(model_words, 1),
        "routing_accuracy": sum(r.route == expected(sc, i) for sc, i, r in judged)
        / max(len(judged), 1),
        "no_concession_turns": len(no_ask),
        "offers_to_no_concession": sum(new_offer(r) for r in no_ask),
        "offers_unlabelled_turns": sum(new_offer(r) for sc, i, r in rows if expected(sc, i) == "-"),
        "sgr_calls": len(calls),
        "valid_first_try": sum(not rec["errors"] for rec in calls) / max(len(calls), 1),
        "cut_at_max_tokens": sum(f == "length" for f in attempts),
        "attempts": len(attempts),
        "fallback_turns": fallbacks,
        "fallback_rate": fallbacks / max(len(rows), 1),
        "schedule_template_turns": templated,
        "latency_p50_s": statistics.median(lat) if lat else 0.0,
        "latency_p90_s": lat[int(0.9 * (len(lat) - 1))] if lat else 0.0,
        "output_tokens_per_s": tokens / seconds if seconds else 0.0,
    }


def confusion(rows: list[Row]) -> Counter:
    """(expected, chosen) route counts over labelled turns."""
    return Counter((expected(sc, i), str(r.route)) for sc, i, r in rows if expected(sc, i) != "-")


async def _probe(s: Settings) -> ProbeResult:
    """Whether the endpoint enforces schemas (its client closed afterwards)."""
    llm = build_structured_llm(s)
    try:
        return await llm.probe()
    finally:
        await llm.aclose()


def main() -> None:
    """Run the benchmark on each scenario file and print the figures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--scenarios",
        type=Path,
        nargs="+",
        default=[SHARED_SCENARIOS, OWN_MESSAGES, HOLDOUT_MESSAGES, HOLDOUT_2],
    )
    p.add_argument("--user", default="user_100")
    p.add_argument("--json", action="store_true", help="one JSON object per scenario file")
    args = p.parse_args()
    s = get_settings()
    probe = asyncio.run(_probe(s))  # once, not per scenario
    if not probe.enforced:
        raise SystemExit(f"the server does not enforce schemas: {probe.raw[:80]!r}")
    for path in args.scenarios:
        if not path.is_file():
            print(f"# {path}: missing, skipped")
            continue
        print(f"# {path.name}")
        rows = run(s, load_scenarios(path), args.user, echo=not args.json)
        figs = figures(rows)
        if args.json:
            print(json.dumps({"scenarios": path.name, **figs}))
            continue
        for key, value in figs.items():
            print(f"{key:>26}: {value:.3f}" if isinstance(value, float) else f"{key:>26}: {value}")
        for (exp, got), n in sorted(confusion(rows).items()):
            print(f"{'expected ' + exp:>26}: got {got} x{n}")


if __name__ == "__main__":
    main()
