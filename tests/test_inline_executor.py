"""The session runner saves checkpoints in its own thread: no thread pool per turn."""

from __future__ import annotations

import operator
import threading
from pathlib import Path
from typing import Annotated, TypedDict

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

from graph.inline_executor import INLINE_KEY, InlineExecutor, install, installed
from graph.ops.bench.perf.fake_llm import fixed_latency_llm
from graph.services import Services
from graph.session import open_negotiator
from graph.settings import Settings


class _S(TypedDict):
    steps: Annotated[list[str], operator.add]


def _graph():
    b = StateGraph(_S)
    b.add_node("a", lambda _s: {"steps": ["a"]})
    b.add_node("b", lambda _s: {"steps": ["b"]})
    b.add_edge(START, "a")
    b.add_edge("a", "b")
    b.add_edge("b", END)
    return b.compile(checkpointer=InMemorySaver())


class _ThreadCount:
    """Counts ``threading.Thread.start`` calls while active."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started = 0
        original = threading.Thread.start

        def start(thread: threading.Thread) -> None:
            self.started += 1
            original(thread)

        monkeypatch.setattr(threading.Thread, "start", start)


def test_inline_executor_runs_at_once_and_keeps_errors_in_the_future() -> None:
    ex = InlineExecutor()
    calls: list[int] = []
    fut = ex.submit(calls.append, 1)
    assert fut.done() and calls == [1]

    def boom() -> None:
        raise ValueError("x")

    bad = ex.submit(boom)
    assert bad.done()
    with pytest.raises(ValueError):
        bad.result()


def test_only_opted_in_runs_skip_the_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    assert install() and installed()
    app = _graph()
    count = _ThreadCount(monkeypatch)
    for i in range(3):
        app.invoke({"steps": []}, {"configurable": {"thread_id": f"p{i}"}}, durability="sync")
    pooled = count.started
    assert pooled > 0  # LangGraph's own pool for a graph that did not opt in

    count.started = 0
    out = app.invoke(
        {"steps": []},
        {"configurable": {"thread_id": "inline", INLINE_KEY: True}},
        durability="sync",
    )
    assert out["steps"] == ["a", "b"]
    assert count.started == 0
    saved = app.get_state({"configurable": {"thread_id": "inline"}})
    assert saved.values["steps"] == ["a", "b"] and not saved.next


def test_runner_turn_starts_no_thread(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings.model_copy(update={"checkpoint_db": tmp_path / "ck.sqlite"})
    services = Services.with_llm(fixed_latency_llm(0.0), settings)
    with open_negotiator(services) as neg:
        assert neg.inline_saves
        neg.run_turn("warm", "user_100", "hello")  # opens the stores
        count = _ThreadCount(monkeypatch)
        result = neg.run_turn("s-inline", "user_101", "Can I get a discount?")
        assert count.started == 0
    assert result.error is None and result.turn == 1
    with open_negotiator(services) as neg:
        assert neg.state("s-inline")["turn"] == 1  # the checkpoints are on disk
