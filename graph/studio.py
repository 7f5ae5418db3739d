"""Persistence for ``langgraph dev`` / Studio: checkpoints in SQLite, like the CLI's.

``langgraph.json`` points ``checkpointer.path`` at :func:`sqlite_checkpointer`. The LangGraph
API server (langgraph-api, also in its in-memory ``langgraph dev`` runtime) loads it at
startup from the ``LANGGRAPH_CHECKPOINTER`` config, calls it, enters the returned async
context manager once per server thread (``_checkpointer/_adapter.py``) and wraps the saver in
an adapter; thread *metadata* (thread and run records) stays in the dev server's own
``.langgraph_api/`` pickles, only checkpoints (state, history, interrupts) go to SQLite.

The database is ``Settings().checkpoint_db`` (``SGR_CHECKPOINT_DB``, by default
``$SGR_DATA_DIR/checkpoints.sqlite``), the file the CLI's ``SqliteSaver`` uses too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from graph.settings import Settings

__all__ = [
    "SYNC_NODE_THREADS",
    "checkpoint_path",
    "shorten_dev_queue_poll",
    "sqlite_checkpointer",
]

# The server runs sync nodes in its event loop's default executor: min(32, cores + 4)
# threads, i.e. 6 concurrent nodes on 2 cores, each blocked ~1 s on the LLM. Measured with
# ``discount-manager bench``: 1.8 turns/s at 20 sessions with the default pool.
SYNC_NODE_THREADS = 256


def _widen_default_executor() -> None:
    """Give the running loop a default executor wide enough for I/O-bound sync nodes."""
    loop = asyncio.get_running_loop()
    current = getattr(loop, "_default_executor", None)
    if getattr(current, "_max_workers", 0) < SYNC_NODE_THREADS:
        loop.set_default_executor(
            ThreadPoolExecutor(SYNC_NODE_THREADS, thread_name_prefix="sgr-node")
        )


def shorten_dev_queue_poll(poll_s: float) -> bool:
    """Make ``langgraph dev``'s in-memory run queue look for new runs every ``poll_s``.

    ``langgraph_runtime_inmem.ops.Runs.next(wait=True)`` sleeps 0.5 s whenever its previous
    look found no pending run, so a run created while the queue was idle waits up to 0.5 s
    before it starts (a single session: 1.2 s a turn for 0.4 s of model time). The wrapper
    sleeps ``poll_s`` instead, then looks without waiting. Only the in-memory dev runtime
    has this loop; ``True`` when installed (``False``: not that runtime, or already done).
    """
    try:
        from langgraph_runtime_inmem import ops
    except ImportError:
        return False
    runs = ops.Runs
    original = runs.next
    if getattr(original, "_sgr_poll", None) is not None or poll_s >= 0.5:
        return False

    async def next_run(wait: bool, limit: int = 1) -> AsyncIterator[Any]:
        if wait:
            await asyncio.sleep(poll_s)
        async for item in original(False, limit):
            yield item

    next_run._sgr_poll = poll_s  # type: ignore[attr-defined]
    runs.next = staticmethod(next_run)  # type: ignore[method-assign]
    return True


def checkpoint_path(settings: Settings | None = None, *, create_dir: bool = False) -> Path:
    """The absolute path of the checkpoint database; ``create_dir`` makes its parent."""
    s = settings or Settings()
    assert s.checkpoint_db is not None  # derived from data_dir by Settings
    path = Path(s.checkpoint_db).expanduser().absolute()
    if create_dir:
        path.parent.mkdir(parents=True, exist_ok=True)
    return path


@asynccontextmanager
async def sqlite_checkpointer(settings: Settings | None = None) -> AsyncIterator[AsyncSqliteSaver]:
    """An ``AsyncSqliteSaver`` on the configured checkpoint database, tables created.

    Path resolution and ``mkdir`` run in a worker thread: the dev server (blockbuster) flags
    blocking calls such as ``os.getcwd``/``os.mkdir`` made on its event loop.
    """
    _widen_default_executor()
    s = settings or await asyncio.to_thread(Settings)
    if shorten_dev_queue_poll(s.dev_queue_poll_s):
        logging.getLogger(__name__).info("dev run queue polls every %.3f s", s.dev_queue_poll_s)
    path = await asyncio.to_thread(checkpoint_path, s, create_dir=True)
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        await saver.setup()
        yield saver
