"""Audit trail: one append-only row per SGR call, in the ledger's file (or database).

Kept out of the checkpoints (which would re-store the whole trail at every step) and next
to the ledger, so that one SQL query can relate offers to the reasoning behind them. Triggers
refuse updates and deletes on both backends (and ``TRUNCATE`` on Postgres).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from stores._cache import StoreCache
from stores._time import to_text, utc_now
from stores.db import Database, connect, is_database_url


class AuditLog:
    """The ``audit_log`` table; thread-safe, append-only (triggers refuse updates).

    ``target``: a SQLite file, a ``postgresql://`` URL or an open ``Database`` (not closed
    by ``close``).
    """

    def __init__(self, target: Path | str | Database) -> None:
        self.path: Path | None = None
        if isinstance(target, Path | str) and not is_database_url(target):
            self.path = Path(target)
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db, self._owned = connect(target, schema=("audit_schema",))

    def append(
        self,
        *,
        session_id: str,
        user_id: str,
        turn: int,
        node: str,
        record: dict[str, Any],
        seq: int = 0,
        now: datetime | None = None,
    ) -> bool:
        """Store one call's record; ``False`` if ``(session, turn, node, seq)`` is stored."""
        errors = record.get("errors") or []
        ok = record.get("parsed") is not None
        return bool(
            self._db.run(
                "audit_append",
                {
                    "session_id": session_id,
                    "user_id": user_id,
                    "turn": turn,
                    "node": node,
                    "seq": seq,
                    "schema_name": str(record.get("schema") or ""),
                    "ok": int(ok),
                    "error": None if ok else (errors[-1] if errors else "no reply"),
                    "record": json.dumps(record, ensure_ascii=False, default=str),
                    "created_at": to_text(utc_now(now)),
                },
            )
        )

    def session(self, session_id: str, after: int = 0) -> list[dict[str, Any]]:
        """The session's records, oldest first (each the stored dict); only those stored
        after the row ``after`` (a :meth:`last_id`) when given."""
        if after:
            rows = self._db.all("audit_session_after", (session_id, after))
        else:
            rows = self._db.all("audit_session", (session_id,))
        return [json.loads(row["record"]) for row in rows]

    def last_id(self, session_id: str) -> int:
        """The id of the session's newest row (0 if none): a mark for :meth:`session`."""
        row = self._db.one("audit_last_id", (session_id,))
        return int(row["last_id"]) if row is not None else 0

    def close(self) -> None:
        """Close the connection (not a ``Database`` passed in)."""
        if self._owned:
            self._db.close()


_CACHE: StoreCache[AuditLog] = StoreCache(AuditLog)


def get_audit_log(path: Path) -> AuditLog:
    """The process-wide audit log on ``path`` (opened once, reused)."""
    return _CACHE.get(path)


def reset_audit_logs(data_dir: Path | None = None) -> None:
    """Close cached audit logs (of ``data_dir``, or all)."""
    _CACHE.reset(data_dir)
