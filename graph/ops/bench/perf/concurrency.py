"""Concurrent sessions with a fixed-latency fake LLM: the in-process runner and its ceiling.

Each session is one customer running ``turns`` turns one after the other; a negotiate turn
makes two LLM calls (router, pricing), so the ideal turn time is ``2 * latency`` and the ideal
throughput ``sessions / (2 * latency)`` turns/s.

* in-process: one asyncio task per session over ``open_negotiator`` (the runner of the CLI
  and of the HTTP service), in ``procs`` processes (sessions sharded, one checkpoint file per
  process, one shared ledger);
* LangGraph's ceiling (the baseline): a bare async graph of the same shape (four nodes in a
  line, the first and third sleeping ``latency`` like the two LLM calls, no other work) on the
  same kind of saver with the same durability, tasks and turns.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from graph.checkpoints import sqlite_checkpointer
from graph.ops.bench.perf.common import (
    BARE_LLM_NODES,
    BARE_SHAPE,
    MESSAGE,
    bare_graph,
    bench_settings,
    pct,
)
from graph.ops.bench.perf.fake_llm import fixed_latency_llm
from graph.services import Services
from graph.session import open_negotiator
from stores.backend import reset_backends

Sample = tuple[float, float, bool]  # start, end (time.time), ok


def summarise(samples: list[Sample], sessions: int, latency: float) -> dict[str, Any]:
    """Throughput against the ideal, turn p50/p99 and errors of one level."""
    ok = [s for s in samples if s[2]]
    wall = (max(s[1] for s in samples) - min(s[0] for s in samples)) if samples else 0.0
    durations = [s[1] - s[0] for s in ok]
    ideal = sessions / (2 * latency) if latency else 0.0
    throughput = len(ok) / wall if wall else 0.0
    return {
        "sessions": sessions,
        "turns": len(samples),
        "errors": len(samples) - len(ok),
        "wall_s": round(wall, 3),
        "turns_per_s": round(throughput, 2),
        "ideal_turns_per_s": round(ideal, 2),
        "efficiency": round(throughput / ideal, 3) if ideal else None,
        "turn_p50_s": round(pct(durations, 0.5), 3),
        "turn_p99_s": round(pct(durations, 0.99), 3),
        "ideal_turn_s": round(2 * latency, 3),
    }


async def drive(turns_of: list[Callable[[], Awaitable[bool]]], turns: int) -> list[Sample]:
    """A task per session, each running ``turns`` turns of its ``turn() -> ok`` in order."""
    samples: list[Sample] = []

    async def session(turn: Callable[[], Awaitable[bool]]) -> None:
        for _ in range(turns):
            start = time.time()
            try:
                ok = await turn()
            except Exception:  # counted as an error, the level goes on
                ok = False
            samples.append((start, time.time(), ok))

    await asyncio.gather(*(session(t) for t in turns_of))
    return samples


async def _runner(data_dir: str, ckpt: str, users: list[str], turns: int, latency: float):
    settings = bench_settings(Path(data_dir), checkpoint_db=Path(ckpt))
    services = Services.with_llm(fixed_latency_llm(latency), settings)
    await asyncio.to_thread(services.features().lookup, users[0])  # stores open before
    async with open_negotiator(services) as neg:

        def turn_of(user: str) -> Callable[[], Awaitable[bool]]:
            sid = f"c-{uuid.uuid4().hex[:12]}"

            async def turn() -> bool:
                return (await neg.run_turn(sid, user, MESSAGE)).error is None

            return turn

        return await drive([turn_of(u) for u in users], turns)


async def _bare(ckpt: str, sessions: range, turns: int, latency: float, durability: str):
    async with sqlite_checkpointer(Path(ckpt)) as saver:
        app = bare_graph(BARE_SHAPE, sleeping=BARE_LLM_NODES, latency=latency).compile(
            checkpointer=saver
        )

        def turn_of(i: int) -> Callable[[], Awaitable[bool]]:
            config = {"configurable": {"thread_id": f"bare-{i}"}}

            async def turn() -> bool:
                async for _ in app.astream({"steps": ["in"]}, config, durability=durability):  # type: ignore[arg-type]
                    pass
                return True

            return turn

        return await drive([turn_of(i) for i in sessions], turns)


def _runner_worker(*args: Any) -> list[Sample]:
    try:
        return asyncio.run(_runner(*args))
    finally:
        reset_backends()


def _bare_worker(*args: Any) -> list[Sample]:
    return asyncio.run(_bare(*args))


def _proc_main(q: Any, ready_q: Any, go: Any, target: Any, *args: Any) -> None:
    ready_q.put(1)
    go.wait()
    q.put(target(*args))


def _in_processes(target: Any, shards: list[tuple[Any, ...]]) -> list[Sample]:
    """``target(*shard)`` in one spawned process per shard, all started together."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    ready_q, go = ctx.Queue(), ctx.Event()
    ps = [ctx.Process(target=_proc_main, args=(q, ready_q, go, target, *shard)) for shard in shards]
    for p in ps:
        p.start()
    for _ in ps:
        ready_q.get()
    go.set()
    samples = [s for _ in ps for s in q.get()]
    for p in ps:
        p.join()
    return samples


def run_inprocess(
    data_dir: Path, users: list[str], turns: int, latency: float, procs: int
) -> dict[str, Any]:
    """``len(users)`` concurrent sessions through the session runner in ``procs`` processes."""
    tag = uuid.uuid4().hex[:6]
    if procs <= 1:
        args = (str(data_dir), str(data_dir / f"ckpt-{tag}.sqlite"), users, turns, latency)
        samples = _runner_worker(*args)
    else:
        shards = [
            (
                str(data_dir),
                str(data_dir / f"ckpt-{tag}-{i}.sqlite"),
                users[i::procs],
                turns,
                latency,
            )
            for i in range(procs)
        ]
        samples = _in_processes(_runner_worker, shards)
    return {**summarise(samples, len(users), latency), "processes": procs}


def run_bare(
    data_dir: Path, sessions: int, turns: int, latency: float, durability: str, procs: int = 1
) -> dict[str, Any]:
    """LangGraph's ceiling: ``sessions`` tasks (over ``procs`` processes, each its own
    checkpoint file) driving a bare async graph of the runner's shape."""
    tag = uuid.uuid4().hex[:6]
    if procs <= 1:
        ckpt = str(data_dir / f"bare-{tag}.sqlite")
        samples = _bare_worker(ckpt, range(sessions), turns, latency, durability)
    else:
        shards = [
            (
                str(data_dir / f"bare-{tag}-{i}.sqlite"),
                range(i, sessions, procs),
                turns,
                latency,
                durability,
            )
            for i in range(procs)
        ]
        samples = _in_processes(_bare_worker, shards)
    return {
        **summarise(samples, sessions, latency),
        "processes": procs,
        "durability": durability,
        "shape": list(BARE_SHAPE),
    }


def describe(result: dict[str, Any]) -> str:
    """One progress line for a level."""
    return (
        f"{result['turns_per_s']:.1f} turns/s (ideal {result['ideal_turns_per_s']:.1f}), "
        f"p50 {result['turn_p50_s']:.2f} s, p99 {result['turn_p99_s']:.2f} s, "
        f"{result['errors']} errors"
    )
