"""Run LangGraph's background work (checkpoint saves, parallel tasks) in the calling thread.

A sync LangGraph run starts a thread pool of its own (``BackgroundExecutor`` ->
``langchain_core.runnables.config.get_executor_for_config``) and hands every checkpoint save
to it; with ``durability="sync"`` the run then waits for each save before the next step. Per
turn that is ~3 new threads and ~12 hand-offs between threads; with 200 sessions in one
process each hand-off queues for the GIL behind the other runnable threads (measured:
``discount-manager bench``). Running the saves inline does the same work in the same order
(a save is finished before the next step, as ``sync`` promises), without threads.

Opt-in per run: only runs whose config carries ``configurable[INLINE_KEY] = True`` (the
session runner's) get the inline executor; every other graph of the process keeps
LangGraph's pool. :func:`install` wraps the module attribute LangGraph reads; it is
idempotent and a no-op if a LangGraph upgrade moved it (``installed()`` then says False and
a test fails, rather than the runner silently slowing down).
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

log = logging.getLogger(__name__)

INLINE_KEY = "__sgr_inline_executor"
_LOCK = threading.Lock()
_MARK = "_sgr_inline_wrapper"


class InlineExecutor(concurrent.futures.Executor):
    """An ``Executor`` whose ``submit`` runs the call at once and returns a finished future.

    A task submitted later may wait on one submitted earlier (LangGraph chains checkpoint
    saves): that one has finished already, so nothing can deadlock.
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        fut.set_running_or_notify_cancel()
        try:
            result = fn(*args, **kwargs)
        except BaseException as e:  # the future carries it, as a pool thread's would
            fut.set_exception(e)
        else:
            fut.set_result(result)
        return fut


def _wants_inline(config: Any) -> bool:
    return bool(isinstance(config, dict) and (config.get("configurable") or {}).get(INLINE_KEY))


def install() -> bool:
    """Route opted-in runs to :class:`InlineExecutor`; ``True`` when active."""
    try:
        from langgraph.pregel import _executor
    except ImportError:  # pragma: no cover - LangGraph moved its internals
        log.warning("langgraph.pregel._executor not found: sync runs keep their thread pool")
        return False
    with _LOCK:
        original = getattr(_executor, "get_executor_for_config", None)
        if original is None:  # pragma: no cover - LangGraph moved its internals
            log.warning("LangGraph no longer uses get_executor_for_config: not installed")
            return False
        if getattr(original, _MARK, False):
            return True

        @contextmanager
        def get_executor_for_config(config: Any) -> Iterator[Any]:
            if _wants_inline(config):
                yield InlineExecutor()
                return
            cm: AbstractContextManager[Any] = original(config)
            with cm as executor:
                yield executor

        setattr(get_executor_for_config, _MARK, True)
        _executor.get_executor_for_config = get_executor_for_config
    return True


def installed() -> bool:
    """Whether LangGraph's sync loop currently picks up the inline executor."""
    from langgraph.pregel import _executor

    return bool(getattr(getattr(_executor, "get_executor_for_config", None), _MARK, False))
