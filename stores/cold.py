"""Cold store: customer analytics, read from a SQLite copy of the DuckDB file.

The analytics live in DuckDB (``cold.duckdb``), written by ``setup-data`` or an analytics job
that swaps in a new file. A DuckDB point query costs ~0.5 ms, so the store serves lookups
from a SQLite copy of ``user_analytics`` beside it (``cold.duckdb.lookup.sqlite``, ~10 µs a
lookup at any size), built once per version of the DuckDB file:

* the copy records the identity of the file it was made from (device, inode, size, mtime);
  a copy made from another version is rebuilt on open (under a file lock, so processes
  opening the store together build it once, then all read it);
* while open, the store re-checks that identity at most every ``recheck_s`` seconds (one
  ``stat``) and rebuilds when it changed: lookups are never staler than the DuckDB file plus
  ``recheck_s`` (1 s by default). The feature-store cache also reopens on a swapped file.

On the Postgres backend the DuckDB file stays the source of the analytics, and
``materialise_analytics`` loads its ``user_analytics`` into a table of the database (COPY):
``AnalyticsTable`` serves lookups from it, so every worker on every machine reads the same
values (one version at a time: the load replaces the rows in one transaction).
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

import duckdb

from stores.db import Database, connect
from stores.db.base import iter_chunks
from stores.errors import StoreNotFoundError
from stores.models import UserAnalytics
from stores.sql import sql

log = logging.getLogger(__name__)

_COLUMNS = ("user_id", "lifetime_value", "churn_probability", "avg_days_between_orders")
_BATCH = 100_000
RECHECK_S = 1.0


def copy_path(duckdb_path: Path) -> Path:
    """Where the SQLite copy of ``duckdb_path`` lives."""
    return duckdb_path.with_name(duckdb_path.name + ".lookup.sqlite")


def source_identity(path: Path) -> str:
    """Device, inode, size and mtime of ``path``: changes with every new version."""
    st = os.stat(path)
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def _copy_identity(copy: Path) -> str | None:
    """The source identity a copy was built from (``None``: missing or unreadable)."""
    if not copy.is_file():
        return None
    try:
        conn = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
        try:
            row = conn.execute(sql("cold_copy_identity")).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return str(row[0]) if row else None


def _build_copy(source: Path, copy: Path, identity: str) -> None:
    """Write ``user_analytics`` of ``source`` into a new SQLite file, then swap it in."""
    started = time.perf_counter()
    tmp = copy.with_name(f".{copy.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.unlink(missing_ok=True)
    src = duckdb.connect(str(source), read_only=True)
    dst = sqlite3.connect(tmp, isolation_level=None)
    try:
        src.execute(sql("cold_lookup_settings"))
        dst.executescript(sql("cold_copy_build_pragmas"))
        dst.executescript(sql("cold_copy_schema"))
        dst.execute("BEGIN")
        cursor = src.execute(sql("cold_all_analytics"))
        rows = 0
        while batch := cursor.fetchmany(_BATCH):
            dst.executemany(sql("cold_copy_insert"), batch)
            rows += len(batch)
        dst.execute(sql("cold_copy_set_identity"), (identity,))
        dst.execute("COMMIT")
    finally:
        src.close()
        dst.close()
    os.replace(tmp, copy)
    log.info(
        "cold store: copied %d rows of %s into %s in %.2fs",
        rows,
        source,
        copy,
        time.perf_counter() - started,
    )


def ensure_copy(source: Path) -> Path:
    """The SQLite copy of ``source``, (re)built if it is missing or from another version."""
    copy = copy_path(source)
    identity = source_identity(source)
    if _copy_identity(copy) == identity:
        return copy
    lock = copy.with_name(f".{copy.name}.lock")
    with lock.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # another process may be building the same copy
        try:
            identity = source_identity(source)
            if _copy_identity(copy) != identity:
                _build_copy(source, copy, identity)
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
    return copy


class ColdStore:
    """``user_analytics`` from the SQLite copy of a DuckDB file; thread-safe (one lock)."""

    def __init__(self, path: Path, *, recheck_s: float = RECHECK_S) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise StoreNotFoundError(self.path, "cold store")
        self.recheck_s = recheck_s
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._identity = ""
        self._checked = 0.0
        self._open()
        log.debug("cold store open: %s (copy %s)", self.path, copy_path(self.path))

    def _open(self) -> None:
        """(Re)connect to a copy that matches the DuckDB file as it is now."""
        copy = ensure_copy(self.path)
        conn = sqlite3.connect(f"file:{copy}?mode=ro", uri=True, check_same_thread=False)
        conn.executescript(sql("cold_copy_read_pragmas"))
        row = conn.execute(sql("cold_copy_identity")).fetchone()
        if self._conn is not None:
            self._conn.close()
        self._conn = conn
        self._identity = str(row[0]) if row else ""
        self._checked = time.monotonic()

    def _fresh_conn(self) -> sqlite3.Connection:
        """The connection, reopened first if the DuckDB file changed (checked every 1 s)."""
        if time.monotonic() - self._checked >= self.recheck_s:
            self._checked = time.monotonic()
            try:
                changed = source_identity(self.path) != self._identity
            except FileNotFoundError:
                changed = False  # being swapped: keep serving the last version
            if changed:
                log.info("cold store %s changed: refreshing its copy", self.path)
                self._open()
        assert self._conn is not None
        return self._conn

    def get_analytics(self, user_id: str) -> UserAnalytics | None:
        """The user's analytics row, or ``None``."""
        with self._lock:
            row = self._fresh_conn().execute(sql("cold_copy_get"), (user_id,)).fetchone()
        if row is None:
            return None
        return UserAnalytics.model_validate(dict(zip(_COLUMNS, row, strict=True)))

    def exists(self, user_id: str) -> bool:
        """Whether the user has analytics."""
        with self._lock:
            return (
                self._fresh_conn().execute(sql("cold_copy_get"), (user_id,)).fetchone() is not None
            )

    def count(self) -> int:
        """Number of customers."""
        with self._lock:
            row = self._fresh_conn().execute(sql("cold_copy_count")).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class AnalyticsTable:
    """``user_analytics`` as a table of a store ``Database`` (the Postgres backend's cold
    store): the interface of ``ColdStore``; thread-safe.

    ``target``: a ``postgresql://`` URL or an open ``Database`` (not closed by ``close``).
    """

    def __init__(self, target: str | Database) -> None:
        self.path: Path | None = None
        self._db, self._owned = connect(target, schema=("analytics_schema",))

    def get_analytics(self, user_id: str) -> UserAnalytics | None:
        """The user's analytics row, or ``None``."""
        row = self._db.one("analytics_get", (user_id,))
        return None if row is None else UserAnalytics.model_validate(dict(row))

    def exists(self, user_id: str) -> bool:
        """Whether the user has analytics."""
        return self._db.one("analytics_get", (user_id,)) is not None

    def count(self) -> int:
        """Number of customers."""
        row = self._db.one("analytics_count")
        return int(row["n"]) if row else 0

    def close(self) -> None:
        """Close the connection (not a ``Database`` passed in)."""
        if self._owned:
            self._db.close()


def export_csv(
    conn: duckdb.DuckDBPyConnection, query: str, path: Path, params: dict | None = None
) -> None:
    """The rows of a DuckDB ``query`` as a headerless CSV file (what ``COPY ... csv`` reads;
    DuckDB writes doubles in their shortest exact form)."""
    conn.sql(query, params=params).write_csv(str(path), header=False)


def analytics_csv(source: Path, path: Path) -> None:
    """``user_analytics`` of the DuckDB file ``source`` as a CSV file (for ``analytics_copy``)."""
    if not Path(source).is_file():
        raise StoreNotFoundError(source, "cold store")
    src = duckdb.connect(str(source), read_only=True)
    try:
        src.execute(sql("seed_settings"))
        export_csv(src, sql("cold_all_analytics"), path)
    finally:
        src.close()


def materialise_analytics(db: Database, source: Path) -> int:
    """Replace the ``user_analytics`` rows of the Postgres ``db`` by those of the DuckDB file
    ``source`` (one transaction: readers see the old rows or the new ones); the row count.

    What an analytics job that swaps in a new ``cold.duckdb`` runs on the Postgres backend.
    """
    copy_in = getattr(db, "copy_in", None)
    if db.dialect != "postgres" or copy_in is None:
        raise ValueError("materialise_analytics loads a Postgres database")
    started = time.perf_counter()
    db.script("analytics_schema")
    with tempfile.TemporaryDirectory(prefix="sgr-analytics-") as tmp:
        csv = Path(tmp) / "user_analytics.csv"
        analytics_csv(Path(source), csv)
        with csv.open("rb") as fh:
            copy_in("analytics_copy", iter_chunks(fh), before=("analytics_truncate",))
    rows = AnalyticsTable(db).count()
    log.info(
        "cold store: loaded %d rows of %s into postgres in %.2fs",
        rows,
        source,
        time.perf_counter() - started,
    )
    return rows
