"""The checkpoint saver of a deployment: async SQLite by default, async Postgres with
``SGR_DATABASE_URL``. One per process, shared by every session it runs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver

from graph.settings import Settings

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


@asynccontextmanager
async def sqlite_checkpointer(path: Path) -> AsyncIterator[BaseCheckpointSaver]:
    """An ``AsyncSqliteSaver`` on ``path`` in WAL mode, writers of several processes queueing
    on a busy timeout instead of failing with "database is locked"."""
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    conn = await aiosqlite.connect(str(path), timeout=BUSY_TIMEOUT_S)
    try:
        await conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        for attempt in range(50):  # a fresh file's switch to WAL can race another process
            try:
                await conn.execute("PRAGMA journal_mode = WAL")
                await conn.execute("PRAGMA synchronous = NORMAL")
                saver = AsyncSqliteSaver(conn)
                await saver.setup()
                break
            except Exception as e:  # sqlite3.OperationalError: database is locked
                if "locked" not in str(e) or attempt == 49:
                    raise
                await asyncio.sleep(0.02 * (attempt + 1))
        yield saver
    finally:
        await conn.close()


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
