"""Compatibility names: the SQLite connection now lives in ``stores.db.sqlite``."""

from __future__ import annotations

from stores.db.sqlite import SqliteDatabase, with_wal_retry

SqliteConnection = SqliteDatabase

__all__ = ["SqliteConnection", "with_wal_retry"]
