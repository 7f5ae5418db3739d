"""Rate limits: fixed-window counters shared by every process on the database.

Stored beside the session leases (the checkpoint DB, or the Postgres database): one row per
key, one upsert per hit, so that every worker, on every machine, counts into the same window.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from stores.db import Database, connect, is_database_url


class RateLimits:
    """The ``rate_limits`` table (thread-safe).

    ``target``: a SQLite file (the checkpoint DB), a ``postgresql://`` URL or an open
    ``Database`` (not closed by ``close``).
    """

    def __init__(self, target: Path | str | Database) -> None:
        self.path: Path | None = None
        if isinstance(target, Path | str) and not is_database_url(target):
            self.path = Path(target)
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db, self._owned = connect(target, schema=("ratelimits_schema",))

    def hit(self, key: str, window_s: float, limit: int, now: float | None = None) -> bool:
        """Count one call of ``key``; ``True`` while the calls of the current window (this one
        included) are at most ``limit``.

        Windows are fixed: ``[k * window_s, (k + 1) * window_s)`` in Unix seconds. A key names
        what it limits and is used with one ``window_s``. Refused calls count too.
        """
        if window_s <= 0:
            raise ValueError("window_s must be positive")
        if limit < 0:
            raise ValueError("limit must be >= 0")
        moment = time.time() if now is None else now
        start = math.floor(moment / window_s) * window_s
        row = self._db.one(
            "ratelimits_hit", {"key": key, "window_start": start, "window_end": start + window_s}
        )
        assert row is not None
        return int(row["hits"]) <= limit

    def prune(self, now: float | None = None) -> int:
        """Delete the counters of windows that have ended; how many."""
        return self._db.run("ratelimits_prune", (time.time() if now is None else now,))

    def close(self) -> None:
        """Close the connection (not a ``Database`` passed in)."""
        if self._owned:
            self._db.close()
