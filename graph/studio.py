"""Persistence for ``langgraph dev`` / Studio: the deployment's own checkpoints.

``langgraph.json`` points ``checkpointer.path`` at :func:`checkpointer`; the LangGraph API
server enters the returned async context manager and keeps the saver for its life. Studio
threads and CLI/HTTP sessions then share one store: the SQLite file ``SGR_CHECKPOINT_DB``
(default ``$SGR_DATA_DIR/checkpoints.sqlite``) or the Postgres database ``SGR_DATABASE_URL``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from langgraph.checkpoint.base import BaseCheckpointSaver

from graph.checkpoints import open_checkpointer
from graph.settings import Settings

__all__ = ["checkpointer"]


def _settings() -> Settings:
    s = Settings()
    assert s.checkpoint_db is not None
    # absolute paths: the server may change directory, and resolving them calls os.getcwd
    return s.with_paths_absolute()


@asynccontextmanager
async def checkpointer() -> AsyncIterator[BaseCheckpointSaver]:
    """The configured saver, tables created. Settings are read in a worker thread: the dev
    server flags blocking calls (``os.getcwd``, ``mkdir``) made on its event loop."""
    s = await asyncio.to_thread(_settings)
    async with open_checkpointer(s) as saver:
        yield saver
