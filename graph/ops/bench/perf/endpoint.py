"""With a real endpoint: whole-graph turn latency and output tokens per second."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from graph.ops.bench.perf.common import bench_settings, pct, say
from graph.services import Services, first_model
from graph.session import open_negotiator
from graph.sgr import LLMUnavailableError
from stores.backend import reset_backends
from stores.seed import generate

MESSAGES = (
    "Hi, can I get a discount on my order?",
    "That's not enough, my friend got 20% off. Can you do better?",
)
USERS = ("user_100", "user_101", "user_102")


def run(work: Path, endpoint: str | None) -> dict[str, Any]:
    """Turn p50/p95 and output tokens/s over a few two-turn sessions (skipped without one)."""
    if not endpoint:
        return {"skipped": "no --endpoint given"}
    try:
        model = first_model(endpoint)
    except LLMUnavailableError as e:
        return {"skipped": f"endpoint unreachable: {e}"}
    data_dir = work / "endpoint"
    generate(data_dir, users=10, seed=42)
    settings = bench_settings(
        data_dir, llm_base_url=endpoint, llm_model=model, structured_output="auto"
    )
    turns: list[float] = []
    tokens = 0
    llm_s = 0.0
    errors = 0

    async def play() -> None:
        nonlocal tokens, llm_s, errors
        async with open_negotiator(Services(settings=settings)) as neg:
            for n, user in enumerate(USERS):
                for text in MESSAGES:
                    say(f"endpoint: {user} turn {len(turns) + 1}")
                    result = await neg.run_turn(f"e-{n}", user, text)
                    turns.append(result.latency_s)
                    errors += result.error is not None
                    for rec in result.audit:
                        tokens += int(rec.get("completion_tokens", 0))
                        llm_s += float(rec.get("latency_ms", 0.0)) / 1000

    try:
        asyncio.run(play())
    finally:
        reset_backends()
    return {
        "endpoint": endpoint,
        "model": model,
        "turns": len(turns),
        "errors": errors,
        "turn_p50_s": round(pct(turns, 0.5), 3),
        "turn_p95_s": round(pct(turns, 0.95), 3),
        "output_tokens": tokens,
        "output_tokens_per_s": round(tokens / llm_s, 2) if llm_s else 0.0,
    }
