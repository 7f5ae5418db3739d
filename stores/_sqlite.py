"""One long-lived, lock-guarded SQLite connection shared by a store's threads."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from stores.sql import sql


def with_wal_retry(setup: Callable[[], object], attempts: int = 50) -> None:
    """Run ``setup`` (pragmas, schema) again while SQLite says "database is locked".

    Switching a new file to WAL takes an exclusive lock that the busy timeout does not always
    wait for: two connections opening the same fresh file at once can see it fail at once.
    """
    for attempt in range(attempts):
        try:
            setup()
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or attempt == attempts - 1:
                raise
            time.sleep(0.02 * (attempt + 1))


class SqliteConnection:
    """A WAL-mode connection in autocommit mode; ``transaction()`` for atomic writes."""

    def __init__(self, path: Path, *, schema: tuple[str, ...] = ()) -> None:
        self.path = Path(path)
        self.lock = threading.RLock()
        self._conn = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=30.0
        )
        self._conn.row_factory = sqlite3.Row
        with_wal_retry(lambda: self._conn.executescript(sql("hot_pragmas")))
        for name in schema:
            with_wal_retry(lambda name=name: self._conn.executescript(sql(name)))

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
