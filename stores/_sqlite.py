"""One long-lived, lock-guarded SQLite connection shared by a store's threads."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from stores.sql import sql


class SqliteConnection:
    """A WAL-mode connection in autocommit mode; ``transaction()`` for atomic writes."""

    def __init__(self, path: Path, *, schema: tuple[str, ...] = ()) -> None:
        self.path = Path(path)
        self.lock = threading.RLock()
        self._conn = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=30.0
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.executescript(sql("hot_pragmas"))
        for name in schema:
            self._conn.executescript(sql(name))

    def one(self, name: str, params: tuple | dict = ()) -> sqlite3.Row | None:
        """First row of the named statement."""
        with self.lock:
            return self._conn.execute(sql(name), params).fetchone()

    def all(self, name: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        """All rows of the named statement."""
        with self.lock:
            return self._conn.execute(sql(name), params).fetchall()

    def run(self, name: str, params: tuple | dict = ()) -> int:
        """Execute the named statement; the number of changed rows."""
        with self.lock:
            return self._conn.execute(sql(name), params).rowcount

    @contextmanager
    def transaction(self) -> Iterator[SqliteConnection]:
        """Hold the lock and a write transaction (``BEGIN IMMEDIATE``) for the block."""
        with self.lock:
            self._conn.execute(sql("sqlite_begin"))
            try:
                yield self
            except BaseException:
                self._conn.execute(sql("sqlite_rollback"))
                raise
            self._conn.execute(sql("sqlite_commit"))

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self.lock:
            self._conn.close()
