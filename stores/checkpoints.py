"""The session checkpoints: LangGraph's ``SqliteSaver`` on a WAL file, reads off the write lock.

``SqliteSaver`` runs every statement, reads included, on one connection under one lock, and
deserialises what it read while holding it. With 200 sessions in threads, the turns queued on
that lock (72 % of the thread samples of a 200-session bench run sat there), and a holder that
released the GIL for SQLite had to win it back from every runnable thread before it let go.
``ConcurrentSqliteSaver`` keeps LangGraph's connection and lock for writes (one writer, as
SQLite wants) and answers reads from a pool of read connections: under WAL a reader sees every
committed checkpoint and never waits for the writer.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from queue import Empty, SimpleQueue
from typing import Any

from langgraph.checkpoint.base import CheckpointTuple
from langgraph.checkpoint.sqlite import SqliteSaver

from stores._sqlite import with_wal_retry

BUSY_TIMEOUT_S = 30.0


class ConcurrentSqliteSaver(SqliteSaver):
    """A ``SqliteSaver`` whose reads run on pooled connections, without the write lock.

    Each read (``get_tuple``, ``get_delta_channel_history``) is one read transaction, so the
    checkpoint and its pending writes come from the same snapshot. ``list`` reads on the
    shared connection as LangGraph wrote it, so it keeps the lock.
    """

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        super().__init__(conn)
        self.path = path
        self._idle: SimpleQueue[sqlite3.Connection] = SimpleQueue()
        self._opened: list[sqlite3.Connection] = []
        self._opened_lock = threading.Lock()
        self._closed = False

    def _reader(self) -> sqlite3.Connection:
        try:
            return self._idle.get_nowait()
        except Empty:
            conn = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_S
            )
            conn.execute("PRAGMA query_only = ON")
            with self._opened_lock:
                self._opened.append(conn)
            return conn

    @contextmanager
    def cursor(self, transaction: bool = True) -> Iterator[sqlite3.Cursor]:
        """Writes: LangGraph's locked connection. Reads: a pooled reader in a read transaction."""
        if transaction or self._closed:
            with super().cursor(transaction) as cur:
                yield cur
            return
        if not self.is_setup:
            with self.lock:
                self.setup()
        conn = self._reader()
        cur = conn.cursor()
        try:
            cur.execute("BEGIN")
            yield cur
        finally:
            try:
                cur.execute("COMMIT")
            finally:
                cur.close()
                self._idle.put(conn)

    def list(self, *args: Any, **kwargs: Any) -> Iterator[CheckpointTuple]:
        """LangGraph's ``list`` (it reads on the shared connection: hold its lock)."""
        with self.lock:
            found = [*super().list(*args, **kwargs)]
        yield from found

    def close(self) -> None:
        """Close the read connections (the write connection belongs to the opener)."""
        self._closed = True
        with self._opened_lock:
            for conn in self._opened:
                conn.close()
            self._opened.clear()


@contextmanager
def open_checkpointer(path: str) -> Iterator[ConcurrentSqliteSaver]:
    """A ``ConcurrentSqliteSaver`` on ``path`` (created if missing, WAL), closed on exit.

    The busy timeout lets writers of several processes queue instead of failing with
    "database is locked".
    """
    conn = sqlite3.connect(path, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
    saver = ConcurrentSqliteSaver(conn, path)
    try:
        # WAL + NORMAL: a commit survives a process crash without an fsync per checkpoint
        # (the ledger's pragmas too); FULL made every turn wait on ~10 fsyncs under one lock.
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")

        def setup() -> None:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            saver.setup()

        with_wal_retry(setup)
        yield saver
    finally:
        saver.close()
        conn.close()
