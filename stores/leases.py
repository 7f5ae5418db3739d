"""Session leases: one turn per session at a time, across threads and processes.

A lease is a row of ``session_leases`` (in the checkpoint DB), taken by one upsert whose
``WHERE`` only lets a free, expired or own row change (or, when a live-looking holder must be
checked, inside ``BEGIN IMMEDIATE``), so that two takers are serialised by SQLite itself.
A holder that dies leaves its row behind; the row stops counting when it expires, or at once
when the holder was a process on this host that no longer exists (``kill -9`` of a CLI turn).
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from stores._sqlite import SqliteConnection


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds a session's lease (what a busy error reports)."""

    holder: str
    host: str
    pid: int
    expires_at: float


def _alive(pid: int) -> bool:
    """Whether a process of this host with ``pid`` exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class SessionLeases:
    """The ``session_leases`` table on ``path`` (thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = SqliteConnection(self.path, schema=("leases_schema",))
        self.host = socket.gethostname()

    def new_holder(self) -> str:
        """A token unique to one turn of this process."""
        return f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:12]}"

    def _stale(self, row: LeaseHolder, now: float) -> bool:
        if row.expires_at <= now:
            return True
        return row.host == self.host and row.pid != os.getpid() and not _alive(row.pid)

    def acquire(
        self, session_id: str, holder: str, ttl_s: float, now: float | None = None
    ) -> LeaseHolder | None:
        """Take the session's lease for ``holder``; ``None`` when taken, else who holds it."""
        moment = time.time() if now is None else now
        mine = {
            "session_id": session_id,
            "holder": holder,
            "host": self.host,
            "pid": os.getpid(),
            "expires_at": moment + ttl_s,
        }
        # Fast path, one autocommit statement: free, expired or already ours.
        if self._db.run("leases_take", {**mine, "now": moment}):
            return None
        # Held until a later time: its holder may be a dead process of this host.
        with self._db.transaction() as db:
            row = db.one("leases_get", (session_id,))
            if row is not None:
                current = LeaseHolder(row["holder"], row["host"], row["pid"], row["expires_at"])
                if current.holder != holder and not self._stale(current, moment):
                    return current
            db.run("leases_put", mine)
        return None

    def release(self, session_id: str, holder: str) -> bool:
        """Give the lease back (only ``holder``'s own); ``False`` if it was not held."""
        return self._db.run("leases_release", (session_id, holder)) > 0  # one statement: atomic

    def holder(self, session_id: str) -> LeaseHolder | None:
        """The current row of ``session_id`` (stale or not), if any."""
        row = self._db.one("leases_get", (session_id,))
        if row is None:
            return None
        return LeaseHolder(row["holder"], row["host"], row["pid"], row["expires_at"])

    def close(self) -> None:
        """Close the connection."""
        self._db.close()
