"""The checkpoint saver of a deployment: async SQLite by default, async Postgres with
``SGR_DATABASE_URL``. One per process, shared by every session it runs."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple, DeltaChannelHistory

from graph.settings import Settings
from stores.db.sqlite import with_wal_retry

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 30.0
POSTGRES_POOL_SIZE = 20


@asynccontextmanager
async def open_checkpointer(s: Settings) -> AsyncIterator[BaseCheckpointSaver]:
    """The saver of ``s`` (tables created), closed on exit."""
    if s.database_url:
        async with postgres_checkpointer(s.database_url) as saver:
            yield saver
    else:
        assert s.checkpoint_db is not None  # derived from data_dir by Settings
        async with sqlite_checkpointer(Path(s.checkpoint_db)) as saver:
            yield saver


class DelegatingSaver(BaseCheckpointSaver):
    """Every call passed on to another saver (what the two below change, they override)."""

    def __init__(self, saver: BaseCheckpointSaver) -> None:
        super().__init__(serde=saver.serde)
        self.saver = saver

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self.saver.get_tuple(config)

    def list(self, config: RunnableConfig | None, **kwargs: Any) -> Iterator[CheckpointTuple]:
        return self.saver.list(config, **kwargs)

    def put(self, *args: Any, **kwargs: Any) -> RunnableConfig:
        return self.saver.put(*args, **kwargs)

    def put_writes(self, *args: Any, **kwargs: Any) -> None:
        self.saver.put_writes(*args, **kwargs)

    def delete_thread(self, thread_id: str) -> None:
        self.saver.delete_thread(thread_id)

    def get_next_version(self, current: Any, channel: Any) -> Any:
        return self.saver.get_next_version(current, channel)

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        return self.saver.get_delta_channel_history(config=config, channels=channels)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self.saver.aget_tuple(config)

    async def alist(
        self, config: RunnableConfig | None, **kwargs: Any
    ) -> AsyncIterator[CheckpointTuple]:
        async for tup in self.saver.alist(config, **kwargs):
            yield tup

    async def aput(self, *args: Any, **kwargs: Any) -> RunnableConfig:
        return await self.saver.aput(*args, **kwargs)

    async def aput_writes(self, *args: Any, **kwargs: Any) -> None:
        await self.saver.aput_writes(*args, **kwargs)

    async def adelete_thread(self, thread_id: str) -> None:
        await self.saver.adelete_thread(thread_id)

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        return await self.saver.aget_delta_channel_history(config=config, channels=channels)


class ThreadedSaver(DelegatingSaver):
    """A sync saver's calls made async by one worker-thread hop each.

    ``AsyncSqliteSaver`` goes through ``aiosqlite``, which hands every statement, cursor and
    commit to its connection thread: ~47 hand-offs per negotiate turn, most of a turn's
    non-LLM time on this 2-core machine (measured: a bare 3-node graph 6.0 -> 3.0 ms, our
    graph 16 -> 12 ms p50). This runs each whole ``SqliteSaver`` method (the library's own
    SQL and serialisation, thread-safe behind its lock) in one hop. Only the public
    ``BaseCheckpointSaver`` contract is used.
    """

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.saver.get_tuple, config)

    async def alist(
        self, config: RunnableConfig | None, **kwargs: Any
    ) -> AsyncIterator[CheckpointTuple]:
        for tup in await asyncio.to_thread(lambda: [*self.saver.list(config, **kwargs)]):
            yield tup

    async def aput(self, *args: Any, **kwargs: Any) -> RunnableConfig:
        return await asyncio.to_thread(self.saver.put, *args, **kwargs)

    async def aput_writes(self, *args: Any, **kwargs: Any) -> None:
        await asyncio.to_thread(self.saver.put_writes, *args, **kwargs)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.saver.delete_thread, thread_id)

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        return await asyncio.to_thread(
            self.saver.get_delta_channel_history, config=config, channels=channels
        )


class FencedSaver(DelegatingSaver):
    """Another saver whose writes first pass ``fence(config)``, which raises to refuse them:
    a turn whose session lease may have passed to another worker stores nothing more (the
    other worker finishes the turn; two writers would fork the session's checkpoints)."""

    def __init__(self, saver: BaseCheckpointSaver, fence: Callable[[RunnableConfig], None]) -> None:
        super().__init__(saver)
        self.fence = fence

    def put(self, config: RunnableConfig, *args: Any, **kwargs: Any) -> RunnableConfig:
        self.fence(config)
        return self.saver.put(config, *args, **kwargs)

    def put_writes(self, config: RunnableConfig, *args: Any, **kwargs: Any) -> None:
        self.fence(config)
        self.saver.put_writes(config, *args, **kwargs)

    async def aput(self, config: RunnableConfig, *args: Any, **kwargs: Any) -> RunnableConfig:
        self.fence(config)
        return await self.saver.aput(config, *args, **kwargs)

    async def aput_writes(self, config: RunnableConfig, *args: Any, **kwargs: Any) -> None:
        self.fence(config)
        await self.saver.aput_writes(config, *args, **kwargs)


def _open_sqlite_saver(path: Path) -> tuple[sqlite3.Connection, BaseCheckpointSaver]:
    from langgraph.checkpoint.sqlite import SqliteSaver

    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    saver = SqliteSaver(conn)

    def setup() -> None:
        # WAL + NORMAL: a commit survives a process crash without an fsync per checkpoint
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        saver.setup()

    with_wal_retry(setup)
    return conn, saver


@asynccontextmanager
async def sqlite_checkpointer(path: Path) -> AsyncIterator[BaseCheckpointSaver]:
    """The SQLite checkpoints on ``path`` (WAL; writers of several processes queue on a busy
    timeout instead of failing with "database is locked"), async by :class:`ThreadedSaver`."""
    conn, saver = await asyncio.to_thread(_open_sqlite_saver, path)
    try:
        yield ThreadedSaver(saver)
    finally:
        await asyncio.to_thread(conn.close)


@asynccontextmanager
async def postgres_checkpointer(url: str) -> AsyncIterator[BaseCheckpointSaver]:
    """An ``AsyncPostgresSaver`` over a connection pool (the connection settings it needs:
    autocommit, no prepared statements, dict rows); its tables set up once."""
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    kwargs = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
    async with AsyncConnectionPool(
        url, min_size=1, max_size=POSTGRES_POOL_SIZE, kwargs=kwargs, open=False
    ) as pool:
        saver = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
        await _setup_once(saver, pool)
        yield saver


async def _setup_once(saver: BaseCheckpointSaver, pool: object) -> None:
    """``saver.setup()`` under an advisory lock: workers starting together migrate once."""
    async with pool.connection() as conn:  # type: ignore[attr-defined]
        await conn.execute("SELECT pg_advisory_lock(7432001)")
        try:
            await saver.setup()  # type: ignore[attr-defined]
        finally:
            await conn.execute("SELECT pg_advisory_unlock(7432001)")
