"""The protocol both engines implement, and the one error the stores handle by type."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

from stores.sql import Dialect

T = TypeVar("T")
Params = tuple[Any, ...] | Mapping[str, Any]
Row = Any
"""A result row: ``row["column"]`` and ``dict(row)`` work on both engines."""


class UniqueViolation(Exception):
    """A write broke a unique constraint: ``table`` and the constraint's ``columns``."""

    def __init__(self, table: str, columns: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.table = table
        self.columns = columns


_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)$")
_PG_KEY = re.compile(r"Key \(([^)]*)\)=")


def sqlite_unique(message: str) -> UniqueViolation | None:
    """``UniqueViolation`` of a SQLite ``IntegrityError`` message (``None``: another error)."""
    m = _SQLITE_UNIQUE.search(message)
    if m is None:
        return None
    pairs = [part.strip().split(".", 1) for part in m.group(1).split(",")]
    table = pairs[0][0] if pairs and len(pairs[0]) == 2 else ""
    return UniqueViolation(table, tuple(p[-1] for p in pairs), message)


def postgres_unique(table: str | None, detail: str | None, message: str) -> UniqueViolation:
    """``UniqueViolation`` of a Postgres ``unique_violation`` (its diagnostics)."""
    m = _PG_KEY.search(detail or "")
    columns = tuple(c.strip() for c in m.group(1).split(",")) if m else ()
    return UniqueViolation(table or "", columns, message)


class Session(Protocol):
    """Runs named statements; inside a transaction, on that transaction's connection."""

    @property
    def dialect(self) -> Dialect: ...

    def one(self, name: str, params: Params = ()) -> Row | None:
        """First row of the named statement (``None``: no row)."""
        ...

    def all(self, name: str, params: Params = ()) -> list[Row]:
        """All rows of the named statement."""
        ...

    def run(self, name: str, params: Params = ()) -> int:
        """Execute the named statement; the number of rows it changed."""
        ...

    def savepoint(self) -> AbstractContextManager[None]:
        """A nested transaction: a failure inside it undoes only its own statements."""
        ...


class Database(Session, Protocol):
    """A store's database: autocommit statements, transactions, schema scripts."""

    def transaction(self, lock: str | None = None) -> AbstractContextManager[Session]:
        """One transaction for the block (rolled back on an exception).

        ``lock``: a key whose lock the transaction takes first and holds until it ends
        (writers of the same key queue; other keys do not wait).
        """
        ...

    def atomic(self, fn: Callable[[Session], T], *, lock: str | None = None) -> T:
        """``fn(session)`` in ``transaction(lock)``, re-run on a deadlock or serialization
        failure (a few attempts); ``fn`` must only touch the database."""
        ...

    def script(self, name: str) -> None:
        """Run a multi-statement script (a schema): idempotent, safe from several processes."""
        ...

    def close(self) -> None:
        """Release the connection(s) (idempotent)."""
        ...


def iter_chunks(fh: Any, size: int = 1 << 20) -> Iterator[bytes]:
    """Blocks of ``size`` bytes of a binary file."""
    while block := fh.read(size):
        yield block
