"""Benchmark: routing accuracy and decode health on the shared scenarios, with a real model.

    uv run python -m graph.bench.routing [--scenarios PATH] [--user user_100]

Prints, per scenario turn, the expected and chosen route, then the figures: routing accuracy,
schema-valid rate, truncation (finish_reason=length) rate, fallbacks, latency p50/p90 and
output tokens per second. Runs on a throw-away data dir; needs an endpoint
(``discount-manager local-llm start``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from collections import Counter
from pathlib import Path

from graph.services import Services
from graph.session import TurnResult, open_negotiator
from graph.settings import Settings, get_settings
from stores.seed import generate

DEFAULT_SCENARIOS = Path(__file__).resolve().parents[3] / "shared/scenarios/negotiations.jsonl"


def load_scenarios(path: Path) -> list[dict]:
    """The scenario lines of ``path``."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run(s: Settings, scenarios: list[dict], user: str) -> list[tuple[dict, int, TurnResult]]:
    """Play every scenario in its own session; returns (scenario, turn index, result)."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        data = s.with_data_dir(tmp)
        generate(data.data_dir, users=10, seed=42)
        with open_negotiator(Services(settings=data)) as neg:
            for sc in scenarios:
                for i, text in enumerate(sc["turns"]):
                    if not text.strip():
                        continue  # bad input never reaches the model
                    r = neg.run_turn(f"bench-{sc['id']}", user, text)
                    if r.approval:
                        r = neg.resume(f"bench-{sc['id']}", {"decision": "approve"})
                    out.append((sc, i, r))
                    print(
                        f"{sc['id']} t{i + 1} expect={_expect(sc, i):<13} got={r.route:<13} "
                        f"{r.latency_s:5.1f}s {'ERR ' + r.error[:60] if r.error else ''}"
                    )
    return out


def _expect(sc: dict, i: int) -> str:
    routes = sc.get("expect_route") or []
    return routes[i] if i < len(routes) else "-"


def figures(rows: list[tuple[dict, int, TurnResult]]) -> dict[str, float]:
    """Accuracy and decode figures of a run."""
    judged = [(sc, i, r) for sc, i, r in rows if _expect(sc, i) != "-"]
    calls = [rec for _, _, r in rows for rec in r.audit]
    attempts = sum(len(rec["finish_reasons"]) for rec in calls)
    lat = sorted(r.latency_s for _, _, r in rows)
    tokens = sum(rec["completion_tokens"] for rec in calls)
    seconds = sum(rec["latency_ms"] for rec in calls) / 1000
    return {
        "turns": len(rows),
        "routing_accuracy": sum(r.route == _expect(sc, i) for sc, i, r in judged) / len(judged),
        "judged_turns": len(judged),
        "sgr_calls": len(calls),
        "valid_first_try": sum(not rec["errors"] for rec in calls) / len(calls),
        "fallbacks": sum(rec["parsed"] is None for rec in calls),
        "truncated_attempts": sum(f == "length" for rec in calls for f in rec["finish_reasons"])
        / max(attempts, 1),
        "latency_p50_s": statistics.median(lat),
        "latency_p90_s": lat[int(0.9 * (len(lat) - 1))],
        "output_tokens_per_s": tokens / seconds if seconds else 0.0,
    }


def main() -> None:
    """Run the benchmark and print the figures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenarios", type=Path, default=DEFAULT_SCENARIOS)
    p.add_argument("--user", default="user_100")
    args = p.parse_args()
    rows = run(get_settings(), load_scenarios(args.scenarios), args.user)
    for key, value in figures(rows).items():
        print(f"{key:>22}: {value:.3f}" if isinstance(value, float) else f"{key:>22}: {value}")
    confusion = Counter((_expect(sc, i), r.route) for sc, i, r in rows if _expect(sc, i) != "-")
    for (expected, got), n in sorted(confusion.items()):
        print(f"{'expected ' + expected:>22}: got {got} x{n}")


if __name__ == "__main__":
    main()
