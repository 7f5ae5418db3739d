"""Cold store: customer analytics in DuckDB, opened read-only."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import duckdb

from stores.errors import StoreNotFoundError
from stores.models import UserAnalytics
from stores.sql import sql

log = logging.getLogger(__name__)

_COLUMNS = ("user_id", "lifetime_value", "churn_probability", "avg_days_between_orders")


class ColdStore:
    """``user_analytics`` over one read-only DuckDB connection, lock-guarded (thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise StoreNotFoundError(self.path, "cold store")
        self._lock = threading.Lock()
        self._conn = duckdb.connect(str(self.path), read_only=True)
        self._conn.execute(sql("cold_lookup_settings"))
        log.debug("cold store open (read-only): %s", self.path)

    def get_analytics(self, user_id: str) -> UserAnalytics | None:
        """The user's analytics row, or ``None``."""
        with self._lock:
            row = self._conn.execute(sql("cold_get_analytics"), [user_id]).fetchone()
        if row is None:
            return None
        return UserAnalytics.model_validate(dict(zip(_COLUMNS, row, strict=True)))

    def count(self) -> int:
        """Number of customers."""
        with self._lock:
            row = self._conn.execute(sql("cold_count_analytics")).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()
