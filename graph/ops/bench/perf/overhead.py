"""Per-turn non-LLM overhead: the negotiate path with an instant fake LLM, per durability.

Each measured turn is a fresh session of a fresh customer (router -> retrieval -> pricing ->
offer), so every turn writes an offer. Figures: the graph alone (``stream(...,
durability=mode)`` on a ``SqliteSaver`` file), the session runner (``Negotiator.run_turn``:
input checks, state reads, the run), and the baseline, a bare 3-node graph on a
``SqliteSaver`` file with the same durability.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.checkpoint.sqlite import SqliteSaver

from graph.builder import make_builder
from graph.ops.bench.perf.common import (
    MESSAGE,
    bare_graph,
    priceable_users,
    say,
    seeded,
    summary_ms,
)
from graph.ops.bench.perf.fake_llm import fixed_latency_llm
from graph.services import Services
from graph.session import open_checkpointer, open_negotiator
from graph.settings import Settings
from graph.state import NegotiationContext
from stores.features import reset_feature_stores
from stores.ledger import reset_ledgers

MODES = ("exit", "async", "sync")
WARMUP = 5


def _time_bare(saver: SqliteSaver, mode: str, turns: int) -> list[float]:
    app = bare_graph(("a", "b", "c")).compile(checkpointer=saver)
    out: list[float] = []
    for i in range(turns + WARMUP):
        config = {"configurable": {"thread_id": f"bare-{mode}-{i}"}}
        start = time.perf_counter()
        for _ in app.stream({"steps": ["in"]}, config, durability=mode):
            pass
        if i >= WARMUP:
            out.append(time.perf_counter() - start)
    return out


def _time_graph(services: Services, saver: SqliteSaver, mode: str, users: list[str]) -> list[float]:
    app = make_builder(services).compile(checkpointer=saver)
    out: list[float] = []
    for i, user in enumerate(users):
        config = {"configurable": {"thread_id": f"g-{mode}-{uuid.uuid4().hex[:8]}"}}
        start = time.perf_counter()
        for _ in app.stream(
            {"messages": [HumanMessage(content=MESSAGE)]},
            config,
            context=NegotiationContext(user_id=user),
            stream_mode=["tasks"],
            durability=mode,
        ):
            pass
        if i >= WARMUP:
            out.append(time.perf_counter() - start)
    return out


def runner_durability_setting() -> bool:
    """Whether the session runner reads its durability from the settings (session branch)."""
    return "checkpoint_durability" in Settings.model_fields


def _time_runner(settings: Settings, users: list[str]) -> tuple[list[float], int]:
    """``Negotiator.run_turn`` through ``open_negotiator`` (the CLI's runner)."""
    services = Services.with_llm(fixed_latency_llm(0.0), settings)
    out: list[float] = []
    offers = 0
    with open_negotiator(services) as neg:
        for i, user in enumerate(users):
            session = f"r-{uuid.uuid4().hex[:10]}"
            start = time.perf_counter()
            result = neg.run_turn(session, user, MESSAGE)
            if i >= WARMUP:
                out.append(time.perf_counter() - start)
            offers += bool(result.offer and result.offer.get("code"))
    return out, offers


def run(work: Path, turns: int) -> dict[str, Any]:
    """The overhead figures (milliseconds) for each durability mode, and the baselines."""
    data_dir = work / "overhead"
    per_mode = turns + WARMUP
    settings = seeded(data_dir, users=12 * per_mode + 100)
    users = priceable_users(settings, 2 * len(MODES) * per_mode + 2 * per_mode)
    services = Services.with_llm(fixed_latency_llm(0.0), settings)
    result: dict[str, Any] = {"turns": turns, "modes": {}}
    with_durability = runner_durability_setting()
    result["runner_durability_setting"] = with_durability
    try:
        # Warm the per-process caches (schemas and bounded models per cap) on spare
        # customers, so that the first mode measured is not charged for them.
        with open_checkpointer(str(data_dir / "ckpt-warmup.sqlite")) as saver:
            _time_graph(services, saver, "exit", users[-2 * per_mode : -per_mode])
        for k, mode in enumerate(MODES):
            say(f"overhead: durability={mode} ({turns} turns each: graph, runner, bare graph)")
            chunk = users[2 * k * per_mode : (2 * k + 2) * per_mode]
            with open_checkpointer(str(data_dir / f"ckpt-{mode}.sqlite")) as saver:
                graph_s = _time_graph(services, saver, mode, chunk[:per_mode])
                runner_s: list[float] = []
                offers = 0
            if with_durability:
                mode_settings = settings.model_copy(
                    update={
                        "checkpoint_durability": mode,
                        "checkpoint_db": data_dir / f"runner-{mode}.sqlite",
                    }
                )
                runner_s, offers = _time_runner(mode_settings, chunk[per_mode:])
            with open_checkpointer(str(data_dir / f"bare-{mode}.sqlite")) as saver:
                bare_s = _time_bare(saver, mode, turns)
            entry = {"graph": summary_ms(graph_s), "baseline_bare_3_nodes": summary_ms(bare_s)}
            if runner_s:
                entry["runner"] = summary_ms(runner_s)
                entry["runner_offers"] = offers
            result["modes"][mode] = entry
        if not with_durability:
            say("overhead: session runner with its default durability")
            runner_settings = settings.model_copy(
                update={"checkpoint_db": data_dir / "runner-default.sqlite"}
            )
            runner_s, offers = _time_runner(runner_settings, users[-per_mode:])
            result["runner_default"] = {**summary_ms(runner_s), "offers": offers}
    finally:
        reset_feature_stores(data_dir)
        reset_ledgers(data_dir)
    return result
