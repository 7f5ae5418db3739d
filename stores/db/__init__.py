"""One database interface for the stores, two engines: SQLite files and PostgreSQL.

``Database`` runs the *named* statements of ``stores/sql/<dialect>/`` (``one`` / ``all`` /
``run``) and groups them in transactions: ``transaction(lock=key)`` takes the key's lock
first (Postgres: a transaction-scoped advisory lock; SQLite: ``BEGIN IMMEDIATE`` already
serialises every writer of the file, the key is not needed), ``atomic(fn, lock=key)`` also
retries the whole transaction on a deadlock or serialization failure.

``connect(target)`` opens either: a ``Path`` (or a path string) is a SQLite file, a
``postgresql://`` URL a Postgres database (a small connection pool).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from stores.db.base import Database, Row, Session, UniqueViolation
from stores.sql import Dialect

if TYPE_CHECKING:
    from stores.db.postgres import PostgresDatabase
    from stores.db.sqlite import SqliteDatabase

__all__ = [
    "Database",
    "Dialect",
    "Row",
    "Session",
    "UniqueViolation",
    "connect",
    "is_database_url",
    "open_postgres",
    "open_sqlite",
]

_URL_PREFIXES = ("postgresql://", "postgres://")


def is_database_url(target: object) -> bool:
    """Whether ``target`` is a Postgres URL (``postgresql://...``)."""
    return isinstance(target, str) and target.startswith(_URL_PREFIXES)


def open_sqlite(path: Path, *, schema: tuple[str, ...] = ()) -> SqliteDatabase:
    """A WAL connection to the SQLite file ``path`` (made if missing), ``schema`` applied."""
    from stores.db.sqlite import SqliteDatabase

    return SqliteDatabase(Path(path), schema=schema)


def open_postgres(url: str, *, schema: tuple[str, ...] = (), max_size: int = 4) -> PostgresDatabase:
    """A pool of up to ``max_size`` connections to ``url``, ``schema`` applied."""
    from stores.db.postgres import PostgresDatabase

    return PostgresDatabase(url, schema=schema, max_size=max_size)


def connect(
    target: Path | str | Database, *, schema: tuple[str, ...] = ()
) -> tuple[Database, bool]:
    """``(database, owned)``: ``target`` itself (not owned; ``schema`` applied to it), or a
    new connection to the file or URL ``target`` that the caller must close."""
    if isinstance(target, Path | str) and not is_database_url(target):
        return open_sqlite(Path(target), schema=schema), True
    if is_database_url(target):
        assert isinstance(target, str)
        return open_postgres(target, schema=schema), True
    db: Database = target  # type: ignore[assignment]
    for name in schema:
        db.script(name)
    return db, False
