"""Per-turn non-LLM overhead: the negotiate path with an instant fake LLM, per durability.

Each measured turn is a fresh session of a fresh customer (router -> retrieval -> pricing ->
offer -> respond), so every turn writes an offer. Figures: the session runner
(``Negotiator.run_turn``: lease, input checks, state reads, the run, the audit read), the
graph alone (``astream(..., durability=mode)``), and the baseline, a bare 3-node async graph
on the same kind of saver (``AsyncSqliteSaver`` on a file) with the same durability.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver

from graph.builder import make_builder
from graph.checkpoints import sqlite_checkpointer
from graph.ops.bench.perf.common import MESSAGE, bare_graph, priceable_users, say, seeded
from graph.ops.bench.perf.common import summary_ms as summarize
from graph.ops.bench.perf.fake_llm import fixed_latency_llm
from graph.services import Services
from graph.session import open_negotiator
from graph.settings import Settings
from graph.state import NegotiationContext
from stores.backend import reset_backends

MODES = ("exit", "async", "sync")
WARMUP = 5


async def _time_bare(saver: BaseCheckpointSaver, mode: str, turns: int) -> list[float]:
    app = bare_graph(("a", "b", "c")).compile(checkpointer=saver)
    out: list[float] = []
    for i in range(turns + WARMUP):
        config = {"configurable": {"thread_id": f"bare-{mode}-{i}"}}
        start = time.perf_counter()
        async for _ in app.astream({"steps": ["in"]}, config, durability=mode):  # type: ignore[arg-type]
            pass
        if i >= WARMUP:
            out.append(time.perf_counter() - start)
    return out


async def _time_graph(
    services: Services, saver: BaseCheckpointSaver, mode: str, users: list[str]
) -> list[float]:
    app = make_builder(services).compile(checkpointer=saver)
    out: list[float] = []
    for i, user in enumerate(users):
        config = {"configurable": {"thread_id": f"g-{mode}-{uuid.uuid4().hex[:8]}"}}
        start = time.perf_counter()
        async for _ in app.astream(
            {"messages": [HumanMessage(content=MESSAGE)]},
            config,
            context=NegotiationContext(user_id=user),
            durability=mode,  # type: ignore[arg-type]
        ):
            pass
        if i >= WARMUP:
            out.append(time.perf_counter() - start)
    return out


async def _time_runner(settings: Settings, users: list[str]) -> tuple[list[float], int]:
    """``Negotiator.run_turn`` through ``open_negotiator`` (the CLI's and the service's)."""
    services = Services.with_llm(fixed_latency_llm(0.0), settings)
    out: list[float] = []
    offers = 0
    async with open_negotiator(services) as neg:
        for i, user in enumerate(users):
            session = f"r-{uuid.uuid4().hex[:10]}"
            start = time.perf_counter()
            result = await neg.run_turn(session, user, MESSAGE)
            if i >= WARMUP:
                out.append(time.perf_counter() - start)
            offers += bool(result.offer and result.offer.get("code"))
    return out, offers


async def _run(data_dir: Path, settings: Settings, users: list[str], turns: int) -> dict:
    per_mode = turns + WARMUP
    services = Services.with_llm(fixed_latency_llm(0.0), settings)
    result: dict[str, Any] = {"turns": turns, "modes": {}}
    # warm the per-process caches (schemas, bounded models per cap) on spare customers
    async with sqlite_checkpointer(data_dir / "ckpt-warmup.sqlite") as saver:
        await _time_graph(services, saver, "exit", users[-per_mode:])
    for k, mode in enumerate(MODES):
        say(f"overhead: durability={mode} ({turns} turns each: runner, graph, bare graph)")
        chunk = users[2 * k * per_mode : (2 * k + 2) * per_mode]
        mode_settings = settings.model_copy(
            update={"checkpoint_durability": mode, "checkpoint_db": data_dir / f"run-{mode}.db"}
        )
        runner_s, offers = await _time_runner(mode_settings, chunk[per_mode:])
        async with sqlite_checkpointer(data_dir / f"ckpt-{mode}.sqlite") as saver:
            graph_s = await _time_graph(services, saver, mode, chunk[:per_mode])
        async with sqlite_checkpointer(data_dir / f"bare-{mode}.sqlite") as saver:
            bare_s = await _time_bare(saver, mode, turns)
        runner, bare = summarize(runner_s), summarize(bare_s)
        result["modes"][mode] = {
            "runner": runner,
            "runner_offers": offers,
            "graph": summarize(graph_s),
            "baseline_bare_3_nodes": bare,
            "runner_to_bare_p50": round(runner["p50_ms"] / bare["p50_ms"], 2),
        }
    return result


def run(work: Path, turns: int) -> dict[str, Any]:
    """The overhead figures (milliseconds) for each durability mode, and the baselines."""
    data_dir = work / "overhead"
    per_mode = turns + WARMUP
    settings = seeded(data_dir, users=12 * per_mode + 100)
    users = priceable_users(settings, 2 * len(MODES) * per_mode + per_mode)
    try:
        return asyncio.run(_run(data_dir, settings, users, turns))
    finally:
        reset_backends()
