"""PostgreSQL: a small psycopg 3 connection pool; per-key advisory locks in transactions.

Statements outside a transaction run in autocommit mode (each its own transaction).
``transaction(lock=key)`` runs the block in one ``conn.transaction()`` whose first statement
is ``pg_advisory_xact_lock(hashtextextended(key, 0))``: writers of the same key queue in the
database, whatever process or machine they run on, and the lock ends with the transaction.
``atomic`` re-runs a whole transaction that Postgres aborted for a deadlock or a
serialization failure; a single autocommit statement is retried the same way.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import errors
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from stores.db.base import Params, postgres_unique
from stores.sql import Dialect, sql

log = logging.getLogger(__name__)

T = TypeVar("T")
ATTEMPTS = 5
RETRIABLE = (errors.DeadlockDetected, errors.SerializationFailure)
SCHEMA_LOCK = "sgr:schema"


def _params(params: Params) -> Params | None:
    """``None`` for no parameters: psycopg then leaves ``%`` in the SQL alone."""
    return params if params else None


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0.005, 0.02) * (2**attempt))


class PostgresSession:
    """Statements on one connection (inside a transaction)."""

    dialect: Dialect = "postgres"

    def __init__(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        self.conn = conn

    def _execute(self, name: str, params: Params) -> psycopg.Cursor[dict[str, Any]]:
        try:
            return self.conn.execute(sql(name, "postgres"), _params(params))
        except errors.UniqueViolation as exc:
            diag = exc.diag
            raise postgres_unique(diag.table_name, diag.message_detail, str(exc)) from exc

    def one(self, name: str, params: Params = ()) -> dict[str, Any] | None:
        return self._execute(name, params).fetchone()

    def all(self, name: str, params: Params = ()) -> list[dict[str, Any]]:
        return self._execute(name, params).fetchall()

    def run(self, name: str, params: Params = ()) -> int:
        return self._execute(name, params).rowcount

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested ``conn.transaction()``: ``SAVEPOINT`` / ``ROLLBACK TO`` on failure."""
        with self.conn.transaction():
            yield

    def copy_in(self, name: str, chunks: Iterable[bytes]) -> None:
        """Stream ``chunks`` into the named ``COPY ... FROM STDIN`` statement."""
        with self.conn.cursor() as cur, cur.copy(sql(name, "postgres")) as copy:
            for chunk in chunks:
                copy.write(chunk)


class PostgresDatabase:
    """A pool of ``min_size..max_size`` connections (autocommit, dict rows) to ``url``."""

    dialect: Dialect = "postgres"

    def __init__(
        self,
        url: str,
        *,
        schema: tuple[str, ...] = (),
        min_size: int = 1,
        max_size: int = 4,
        timeout_s: float = 30.0,
    ) -> None:
        self.url = url
        self._closed = False
        self._close_lock = threading.Lock()
        self._pool: ConnectionPool[psycopg.Connection[dict[str, Any]]] = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True, "row_factory": dict_row},
            timeout=timeout_s,
            open=True,
            name="sgr-stores",
        )
        try:
            self._pool.wait(timeout=timeout_s)  # a wrong URL fails here, not at first use
            for name in schema:
                self.script(name)
        except BaseException:
            self._pool.close()
            raise

    # -- autocommit statements ---------------------------------------------------------

    def _autocommit(self, fn: Callable[[PostgresSession], T]) -> T:
        for attempt in range(ATTEMPTS):
            try:
                with self._pool.connection() as conn:
                    return fn(PostgresSession(conn))
            except RETRIABLE:
                if attempt == ATTEMPTS - 1:
                    raise
                log.info("postgres: statement aborted (deadlock/serialization): retrying")
                _backoff(attempt)
        raise AssertionError("unreachable")

    def one(self, name: str, params: Params = ()) -> dict[str, Any] | None:
        """First row of the named statement (one autocommit statement)."""
        return self._autocommit(lambda s: s.one(name, params))

    def all(self, name: str, params: Params = ()) -> list[dict[str, Any]]:
        """All rows of the named statement."""
        return self._autocommit(lambda s: s.all(name, params))

    def run(self, name: str, params: Params = ()) -> int:
        """Execute the named statement; the number of changed rows."""
        return self._autocommit(lambda s: s.run(name, params))

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Outside a transaction every statement stands alone: nothing to nest."""
        yield

    # -- transactions ------------------------------------------------------------------

    @contextmanager
    def transaction(self, lock: str | None = None) -> Iterator[PostgresSession]:
        """One transaction on one pooled connection, holding ``lock``'s advisory lock."""
        with self._pool.connection() as conn, conn.transaction():
            session = PostgresSession(conn)
            if lock is not None:
                conn.execute(sql("pg_advisory_lock", "postgres"), (lock,))
            yield session

    @contextmanager
    def snapshot(self) -> Iterator[PostgresSession]:
        """A REPEATABLE READ transaction that is always rolled back: consistent reads across
        statements, and temp objects that vanish with it (the report)."""
        with self._pool.connection() as conn, conn.transaction(force_rollback=True):
            conn.execute(sql("pg_repeatable_read", "postgres"))
            yield PostgresSession(conn)

    def atomic(self, fn: Callable[[PostgresSession], T], *, lock: str | None = None) -> T:
        """``fn(session)`` in ``transaction(lock)``, re-run on a deadlock or serialization
        failure (``ATTEMPTS`` tries)."""
        for attempt in range(ATTEMPTS):
            try:
                with self.transaction(lock) as session:
                    return fn(session)
            except RETRIABLE:
                if attempt == ATTEMPTS - 1:
                    raise
                log.info("postgres: transaction aborted (deadlock/serialization): retrying")
                _backoff(attempt)
        raise AssertionError("unreachable")

    def script(self, name: str) -> None:
        """The named script in one transaction, under a schema-wide advisory lock (two
        processes creating the same tables at once would otherwise collide)."""
        with self.transaction(SCHEMA_LOCK) as session:
            session.conn.execute(sql(name, "postgres"))

    def copy_in(self, name: str, chunks: Iterable[bytes], *, before: tuple[str, ...] = ()) -> None:
        """``before`` statements, then ``COPY`` of ``chunks``, in one transaction."""
        with self.transaction() as session:
            for statement in before:
                session.run(statement)
            session.copy_in(name, chunks)

    def close(self) -> None:
        """Close the pool (idempotent)."""
        with self._close_lock:
            if not self._closed:
                self._closed = True
                self._pool.close()
