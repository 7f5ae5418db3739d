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
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from graph.settings import Settings

__all__ = ["SYNC_NODE_THREADS", "checkpoint_path", "sqlite_checkpointer"]

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
    path = await asyncio.to_thread(checkpoint_path, settings, create_dir=True)
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        await saver.setup()
        yield saver
