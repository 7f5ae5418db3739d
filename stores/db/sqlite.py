"""SQLite: one long-lived, lock-guarded WAL connection shared by a store's threads."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from stores.db.base import Params, sqlite_unique
from stores.sql import Dialect, sql

T = TypeVar("T")


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


class SqliteDatabase:
    """A WAL-mode connection in autocommit mode; ``transaction()`` for atomic writes.

    Every writer of the file is serialised by ``BEGIN IMMEDIATE``, so the ``lock`` key of
    ``transaction`` / ``atomic`` is not needed here (it is accepted and ignored).
    """

    dialect: Dialect = "sqlite"

    def __init__(self, path: Path, *, schema: tuple[str, ...] = ()) -> None:
        self.path = Path(path)
        self.lock = threading.RLock()
        self._conn = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=30.0
        )
        self._conn.row_factory = sqlite3.Row
        with_wal_retry(lambda: self._conn.executescript(sql("hot_pragmas")))
        for name in schema:
            self.script(name)

    def _execute(self, name: str, params: Params) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql(name), params)
        except sqlite3.IntegrityError as exc:
            unique = sqlite_unique(str(exc))
            if unique is None:
                raise
            raise unique from exc

    def one(self, name: str, params: Params = ()) -> sqlite3.Row | None:
        """First row of the named statement."""
        with self.lock:
            cursor = self._execute(name, params)
            try:
                return cursor.fetchone()
            finally:
                cursor.close()  # ends a RETURNING statement: its autocommit write commits

    def all(self, name: str, params: Params = ()) -> list[sqlite3.Row]:
        """All rows of the named statement."""
        with self.lock:
            return self._execute(name, params).fetchall()

    def run(self, name: str, params: Params = ()) -> int:
        """Execute the named statement; the number of changed rows."""
        with self.lock:
            return self._execute(name, params).rowcount

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """``SAVEPOINT`` for the block: an exception undoes only the block's statements."""
        with self.lock:
            self._conn.execute(sql("sqlite_savepoint"))
            try:
                yield
            except BaseException:
                self._conn.execute(sql("sqlite_rollback_to"))
                self._conn.execute(sql("sqlite_release"))
                raise
            self._conn.execute(sql("sqlite_release"))

    @contextmanager
    def transaction(self, lock: str | None = None) -> Iterator[SqliteDatabase]:
        """Hold the lock and a write transaction (``BEGIN IMMEDIATE``) for the block."""
        del lock  # BEGIN IMMEDIATE serialises every writer of the file
        with self.lock:
            self._conn.execute(sql("sqlite_begin"))
            try:
                yield self
            except BaseException:
                self._conn.execute(sql("sqlite_rollback"))
                raise
            self._conn.execute(sql("sqlite_commit"))

    def atomic(self, fn: Callable[[SqliteDatabase], T], *, lock: str | None = None) -> T:
        """``fn(self)`` in one transaction (the busy timeout already waits for the lock)."""
        with self.transaction(lock) as db:
            return fn(db)

    def script(self, name: str) -> None:
        """``executescript`` of the named script, retried while a fresh file switches to WAL."""
        with self.lock:
            with_wal_retry(lambda: self._conn.executescript(sql(name)))

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self.lock:
            self._conn.close()
