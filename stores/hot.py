"""Hot store: live shopping sessions in SQLite (``hot.sqlite``) or a Postgres table."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from stores._time import to_text, utc_now
from stores.db import Database, connect, is_database_url
from stores.errors import StoreNotFoundError
from stores.models import Inventory, LiveSession

log = logging.getLogger(__name__)


class HotStore:
    """``live_sessions`` over one long-lived, lock-guarded WAL connection (thread-safe).

    ``target``: the SQLite file (it must exist: ``setup-data`` writes it), a ``postgresql://``
    URL or an open ``Database`` (its table is created if missing; ``setup-data`` fills it).
    """

    def __init__(self, target: Path | str | Database) -> None:
        self.path: Path | None = None
        if isinstance(target, Path | str) and not is_database_url(target):
            self.path = Path(target)
            if not self.path.is_file():
                raise StoreNotFoundError(self.path, "hot store")
        self._db, self._owned = connect(target, schema=("hot_schema",))
        log.debug("hot store open: %s", self.path or self._db.dialect)

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
        return int(row["n"]) if row else 0

    def close(self) -> None:
        """Close the connection (not a ``Database`` passed in)."""
        if self._owned:
            self._db.close()
