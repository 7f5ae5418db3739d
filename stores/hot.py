"""Hot store: live shopping sessions in SQLite."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from stores._sqlite import SqliteConnection
from stores._time import to_text, utc_now
from stores.errors import StoreNotFoundError
from stores.models import Inventory, LiveSession

log = logging.getLogger(__name__)


class HotStore:
    """``live_sessions`` over one long-lived, lock-guarded WAL connection (thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise StoreNotFoundError(self.path, "hot store")
        self._db = SqliteConnection(self.path, schema=("hot_schema",))
        log.debug("hot store open: %s", self.path)

    def get_session(self, user_id: str) -> LiveSession | None:
        """The user's live session, or ``None``."""
        row = self._db.one("hot_get_session", (user_id,))
        return None if row is None else LiveSession.model_validate(dict(row))

    def put_session(
        self,
        user_id: str,
        *,
        cart_value: float,
        margin: float,
        inventory: Inventory,
        now: datetime | None = None,
    ) -> LiveSession:
        """Insert or replace the user's live session (validated before writing)."""
        session = LiveSession(
            user_id=user_id,
            cart_value=cart_value,
            margin=margin,
            inventory=inventory,
            updated_at=utc_now(now),
        )
        self._db.run(
            "hot_put_session",
            (user_id, cart_value, margin, inventory, to_text(session.updated_at)),
        )
        return session

    def count(self) -> int:
        """Number of live sessions."""
        row = self._db.one("hot_count_sessions")
        return int(row[0]) if row else 0

    def close(self) -> None:
        """Close the connection."""
        self._db.close()
