"""The session checkpointer: reads never queue behind the write lock, and see every commit."""

from __future__ import annotations

import operator
import threading
from pathlib import Path
from typing import Annotated, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph

from stores.checkpoints import ConcurrentSqliteSaver, open_checkpointer


class _State(TypedDict):
    steps: Annotated[list[str], operator.add]


def _graph(saver: ConcurrentSqliteSaver):
    b = StateGraph(_State)
    b.add_node("a", lambda _s: {"steps": ["a"]})
    b.add_node("b", lambda _s: {"steps": ["b"]})
    b.add_edge(START, "a")
    b.add_edge("a", "b")
    b.add_edge("b", END)
    return b.compile(checkpointer=saver)


def _cfg(thread: str) -> dict:
    return {"configurable": {"thread_id": thread}}


def test_a_read_does_not_wait_for_a_held_write_lock(tmp_path: Path) -> None:
    """``SqliteSaver`` reads under its write lock: with 200 sessions in threads, turns queued
    there. Fails on the plain saver (the read below would block until the lock is freed)."""
    with open_checkpointer(str(tmp_path / "ck.sqlite")) as saver:
        app = _graph(saver)
        app.invoke({"steps": ["in"]}, _cfg("s1"))
        got: list[list[str]] = []
        with saver.lock:  # a writer holds the lock (e.g. a long put in another thread)
            reader = threading.Thread(
                target=lambda: got.append(app.get_state(_cfg("s1")).values["steps"])
            )
            reader.start()
            reader.join(timeout=5)
            waited = reader.is_alive()
        reader.join()  # the lock is free now: a blocked read ends before the saver closes
        assert not waited, "the read waited for the write lock"
        assert got == [["in", "a", "b"]]


def test_reads_in_other_threads_see_every_committed_step(tmp_path: Path) -> None:
    with open_checkpointer(str(tmp_path / "ck.sqlite")) as saver:
        app = _graph(saver)
        errors: list[BaseException] = []

        def session(i: int) -> None:
            try:
                for turn in range(1, 4):
                    app.invoke({"steps": [f"in{turn}"]}, _cfg(f"t{i}"), durability="sync")
                    values = app.get_state(_cfg(f"t{i}")).values
                    assert len(values["steps"]) == 3 * turn, values
            except BaseException as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=session, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors[0]
        # history (``list``) reads on the shared connection under the lock: still consistent
        history = list(app.get_state_history(_cfg("t0")))
        assert len(history) == 3 * 4  # input + 2 steps + (loop end) per turn, newest first
        assert history[0].values["steps"][-1] == "b"


def test_read_connections_are_pooled_and_closed_with_the_saver(tmp_path: Path) -> None:
    with open_checkpointer(str(tmp_path / "ck.sqlite")) as saver:
        app = _graph(saver)
        app.invoke({"steps": ["in"]}, _cfg("s1"))
        for _ in range(20):
            app.get_state(_cfg("s1"))
        readers = list(saver._opened)
        assert 1 <= len(readers) <= 2  # reused, not one per read
    with pytest.raises(Exception, match="closed"):
        readers[0].execute("select 1")


def test_readers_cannot_write(tmp_path: Path) -> None:
    with (
        open_checkpointer(str(tmp_path / "ck.sqlite")) as saver,
        saver.cursor(transaction=False) as cur,
        pytest.raises(Exception, match="readonly"),
    ):
        cur.execute("DELETE FROM checkpoints")
