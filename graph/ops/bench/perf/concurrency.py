"""Concurrent sessions with a fixed-latency fake LLM: in-process runner and API server.

Each session is one customer running ``turns`` turns one after the other; a negotiate turn
makes two LLM calls (router, pricing), so the ideal turn time is ``2 * latency`` and the ideal
throughput ``sessions / (2 * latency)`` turns/s.

* in-process: threads over ``open_negotiator`` (the CLI's runner), in ``procs`` processes
  (sessions sharded by process, each process its own checkpoint file, one shared ledger);
* LangGraph's ceiling (the baseline of the in-process levels): a bare graph of the same shape
  (four nodes in a line, the first and third sleeping ``latency`` like the two LLM calls, no
  other work) on the runner's checkpointer with the same durability, the same threads and
  turns: what LangGraph alone reaches on this machine in the same run;
* API server: ``langgraph dev --n-jobs-per-worker N`` (``servers`` of them, sessions sharded,
  each its own checkpoint file) against the fake LLM over HTTP, driven by ``langgraph-sdk``.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from graph.ops.bench.perf.common import (
    BARE_GRAPH_ID,
    BARE_LLM_NODES,
    BARE_SHAPE,
    MESSAGE,
    bare_graph,
    bench_settings,
    pct,
    say,
)
from graph.ops.bench.perf.fake_llm import fixed_latency_llm
from graph.services import Services
from graph.session import open_checkpointer, open_negotiator
from stores.features import reset_feature_stores
from stores.ledger import reset_ledgers

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


def _drive_threads(turn_fns: list[Callable[[], bool]], turns: int, ready: Any) -> list[Sample]:
    """A thread per session, each running ``turns`` turns of its ``turn_fn() -> ok``; all
    started once ``ready()`` (every process set up) returns."""
    samples: list[Sample] = []
    lock = threading.Lock()

    def session(turn: Callable[[], bool]) -> None:
        for _ in range(turns):
            start = time.time()
            try:
                ok = turn()
            except Exception:  # counted as an error, the level goes on
                ok = False
            with lock:
                samples.append((start, time.time(), ok))

    threads = [threading.Thread(target=session, args=(f,), daemon=True) for f in turn_fns]
    if ready is not None:
        ready()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return samples


def _worker(
    data_dir: str, ckpt: str, users: list[str], turns: int, latency: float, ready: Any = None
) -> list[Sample]:
    """One process of the runner's levels: a session per user."""
    settings = bench_settings(Path(data_dir), checkpoint_db=Path(ckpt))
    services = Services.with_llm(fixed_latency_llm(latency), settings)
    services.features().lookup(users[0])  # open the stores before the clock starts
    with open_negotiator(services) as neg:

        def runner_turn(user: str) -> Callable[[], bool]:
            sid = f"c-{uuid.uuid4().hex[:12]}"
            return lambda: neg.run_turn(sid, user, MESSAGE).error is None

        samples = _drive_threads([runner_turn(u) for u in users], turns, ready)
    reset_feature_stores(Path(data_dir))
    reset_ledgers(Path(data_dir))
    return samples


def _proc_main(q: Any, ready_q: Any, go: Any, target: Any, *args: Any) -> None:
    def ready() -> None:
        ready_q.put(1)
        go.wait()

    q.put(target(*args, ready))


def _in_processes(target: Any, shards: list[tuple[Any, ...]]) -> list[Sample]:
    """``target(*shard, ready)`` in one spawned process per shard, all started together."""
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
        samples = _worker(
            str(data_dir), str(data_dir / f"ckpt-{tag}.sqlite"), users, turns, latency
        )
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
        samples = _in_processes(_worker, shards)
    return {**summarise(samples, len(users), latency), "processes": procs}


def _bare_worker(
    ckpt: str, sessions: range, turns: int, latency: float, durability: str, ready: Any = None
) -> list[Sample]:
    """One process of the bare baseline: a session per index, like :func:`_worker`."""
    with open_checkpointer(ckpt) as saver:
        app = bare_graph(BARE_SHAPE, sleeping=BARE_LLM_NODES, latency=latency).compile(
            checkpointer=saver
        )

        def bare_turn(i: int) -> Callable[[], bool]:
            config = {"configurable": {"thread_id": f"bare-{i}"}}

            def turn() -> bool:
                for _chunk in app.stream({"steps": ["in"]}, config, durability=durability):
                    pass
                return True

            return turn

        return _drive_threads([bare_turn(i) for i in sessions], turns, ready)


def run_bare(
    data_dir: Path, sessions: int, turns: int, latency: float, durability: str, procs: int = 1
) -> dict[str, Any]:
    """LangGraph's ceiling: ``sessions`` threads (over ``procs`` processes, each its own
    checkpoint file) driving a bare graph of the runner's shape."""
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
    return {**summarise(samples, sessions, latency), "durability": durability, "processes": procs}


# --------------------------------------------------------------------------- API server


async def _drive_api(
    urls: list[str], users: list[str], turns: int, latency: float | None = None
) -> list[Sample]:
    """Sessions over ``urls``; ``latency`` given: the bare graph (``BARE_GRAPH_ID``) instead."""
    import httpx
    from langgraph_sdk.client import LangGraphClient

    clients = [
        LangGraphClient(
            httpx.AsyncClient(
                base_url=url,
                timeout=httpx.Timeout(600.0),
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
            )
        )
        for url in urls
    ]
    samples: list[Sample] = []

    def request(user: str) -> dict[str, Any]:
        if latency is not None:
            return {
                "assistant_id": BARE_GRAPH_ID,
                "input": {"steps": ["in"]},
                "config": {"configurable": {"latency": latency}},
            }
        return {
            "assistant_id": "negotiator",
            "input": {"messages": [{"role": "user", "content": MESSAGE}]},
            "context": {"user_id": user},
        }

    async def session(i: int, user: str) -> None:
        client = clients[i % len(clients)]
        try:
            thread = await client.threads.create()
        except Exception:
            samples.extend((time.time(), time.time(), False) for _ in range(turns))
            return
        for _ in range(turns):
            start = time.time()
            try:
                out = await client.runs.wait(thread["thread_id"], **request(user))
                ok = isinstance(out, dict) and not out.get("error") and "__error__" not in out
            except Exception:
                ok = False
            samples.append((start, time.time(), ok))

    try:
        await asyncio.gather(*(session(i, u) for i, u in enumerate(users)))
    finally:
        for c in clients:
            await c.aclose()
    return samples


def run_api(urls: list[str], users: list[str], turns: int, latency: float) -> dict[str, Any]:
    """``len(users)`` concurrent sessions through the API server(s) at ``urls``."""
    samples = asyncio.run(_drive_api(urls, users, turns))
    return {**summarise(samples, len(users), latency), "servers": len(urls)}


def run_api_bare(url: str, sessions: int, turns: int, latency: float) -> dict[str, Any]:
    """The API server's ceiling: the bare graph of the runner's shape through the same server
    and client, nodes sleeping ``latency`` in the server's executor like the sync LLM nodes."""
    samples = asyncio.run(_drive_api([url], [""] * sessions, turns, latency))
    return {**summarise(samples, sessions, latency), "servers": 1}


def fresh_settings_dir(data_dir: Path) -> Any:
    """Settings of the concurrency data dir (for callers that need paths)."""
    return bench_settings(data_dir)


def describe(result: dict[str, Any]) -> str:
    """One progress line for a level."""
    return (
        f"{result['sessions']} sessions: {result['turns_per_s']} turns/s "
        f"(ideal {result['ideal_turns_per_s']}), p50 {result['turn_p50_s']} s, "
        f"errors {result['errors']}"
    )


__all__ = [
    "describe",
    "run_api",
    "run_api_bare",
    "run_bare",
    "run_inprocess",
    "say",
    "summarise",
]
