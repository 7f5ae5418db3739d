"""``langgraph dev``'s idle run queue looks again after ``SGR_DEV_QUEUE_POLL_S``, not 0.5 s."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from graph.settings import Settings
from graph.studio import shorten_dev_queue_poll

ops = pytest.importorskip("langgraph_runtime_inmem.ops")


def test_idle_queue_looks_again_after_the_short_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []

    async def fake_next(wait: bool, limit: int = 1) -> Any:
        seen.append(wait)
        if wait:  # the runtime's own idle sleep
            await asyncio.sleep(0.5)
        yield ("run", limit)

    monkeypatch.setattr(ops.Runs, "next", staticmethod(fake_next))
    assert shorten_dev_queue_poll(0.01)
    assert not shorten_dev_queue_poll(0.01)  # once only

    async def take() -> tuple[list[Any], float]:
        start = time.perf_counter()
        got = [item async for item in ops.Runs.next(wait=True, limit=3)]
        return got, time.perf_counter() - start

    got, took = asyncio.run(take())
    assert got == [("run", 3)]
    assert seen == [False]  # the runtime never sleeps its 0.5 s
    assert took < 0.4


def test_the_runtime_default_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    async def fake_next(wait: bool, limit: int = 1) -> Any:
        yield None

    monkeypatch.setattr(ops.Runs, "next", staticmethod(fake_next))
    assert not shorten_dev_queue_poll(0.5)
    assert ops.Runs.next is fake_next
    assert Settings().dev_queue_poll_s < 0.5
