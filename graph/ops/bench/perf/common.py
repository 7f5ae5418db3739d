"""Shared pieces of the performance benchmark: stats, progress, seeded data, customers."""

from __future__ import annotations

import asyncio
import itertools
import operator
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph

from graph.policy import compute_cap
from graph.settings import Settings
from stores.features import FeatureStore
from stores.models import CustomerFeatures
from stores.seed import FIRST_USER, generate

MESSAGE = "Can I get a discount? Otherwise I'll shop elsewhere."
BARE_SHAPE = ("router", "retrieval", "pricing", "offer")  # the negotiate path, node for node
BARE_LLM_NODES = ("router", "pricing")  # the two that call the LLM


class _Bare(TypedDict):
    steps: Annotated[list[str], operator.add]


def _bare_node(name: str, sleep: float) -> Callable[..., Any]:
    async def run(_state: _Bare) -> dict[str, list[str]]:
        if sleep:
            await asyncio.sleep(sleep)
        return {"steps": [name]}

    return run


def bare_graph(
    names: Sequence[str], *, sleeping: Sequence[str] = (), latency: float = 0.0
) -> StateGraph:
    """The baselines' graph: async ``names`` in a line doing no work; ``sleeping`` nodes
    sleep ``latency`` (the fake LLM's). Input ``{"steps": [...]}``."""
    b = StateGraph(_Bare)
    for name in names:
        b.add_node(name, _bare_node(name, latency if name in sleeping else 0.0))
    b.add_edge(START, names[0])
    for a, z in itertools.pairwise(names):
        b.add_edge(a, z)
    b.add_edge(names[-1], END)
    return b


def say(line: str) -> None:
    """One progress line on stderr."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def pct(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` (nearest rank); 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary_ms(seconds: Sequence[float]) -> dict[str, Any]:
    """p50 / p99 / mean of durations, in milliseconds."""
    ms = [1000 * s for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(pct(ms, 0.5), 3),
        "p99_ms": round(pct(ms, 0.99), 3),
        "mean_ms": round(statistics.fmean(ms), 3) if ms else 0.0,
    }


def bench_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings on ``data_dir`` that never probe a real endpoint."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "llm_base_url": "http://127.0.0.1:9/v1",
        "verify_constraint": False,
        "structured_output": "structured_outputs",
        "llm_model": "bench-model",
    }
    values.update(overrides)
    return Settings(**values)


def seeded(data_dir: Path, users: int) -> Settings:
    """Generate ``users`` customers in ``data_dir`` (seed 42); settings on it."""
    generate(data_dir, users=users, seed=42)
    return bench_settings(data_dir)


def priceable_users(settings: Settings, count: int) -> list[str]:
    """``count`` customers whose cap is at least 1 % (a fresh session gets an offer)."""
    store = FeatureStore.open(settings.hot_db, settings.cold_db)
    try:
        out: list[str] = []
        n = FIRST_USER
        limit = FIRST_USER + store.hot.count()
        while len(out) < count and n < limit:
            user = f"user_{n}"
            found = store.lookup(user)
            if isinstance(found, CustomerFeatures):
                cap = compute_cap(found, settings)
                if cap.cap_percent >= 1 and cap.cap_percent < settings.approval_percent:
                    out.append(user)
            n += 1
    finally:
        store.close()
    if len(out) < count:
        raise RuntimeError(f"only {len(out)} priceable customers, {count} needed")
    return out
