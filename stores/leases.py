"""Session leases: one turn per session at a time, across threads, processes and machines.

A lease is a row of ``session_leases`` (in the checkpoint DB, or the Postgres database every
worker shares), taken by one upsert whose ``WHERE`` only lets a free, expired or own row
change; a row whose live-looking holder is a dead process of this host is replaced by a
compare-and-swap on the row as read, so that of two takers exactly one wins, on either engine.
A holder that dies leaves its row behind; the row stops counting when it expires, or at once
when the holder was a process on this host that no longer exists (``kill -9`` of a CLI turn).
A running turn ``renew``s its lease (a heartbeat), so that a short TTL frees the session soon
after a worker on another machine is killed. ``heartbeat`` renews from a thread of its own:
driven by a busy event loop, or queued behind the store calls of many running turns in the
default executor, a renewal came after its lease had expired (the scale trial measured over a
second), and another turn of the session could then start while this one still ran.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from stores.db import Database, connect, is_database_url


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


_TAKE_ATTEMPTS = 5
log = logging.getLogger(__name__)


def _row(row: object) -> LeaseHolder:
    r: dict = dict(row)  # type: ignore[call-overload]
    return LeaseHolder(r["holder"], r["host"], int(r["pid"]), float(r["expires_at"]))


class Heartbeat:
    """One holder's lease kept alive by its :class:`LeaseKeeper` until ``stop`` (the holder
    then releases it). ``lost``: who took it, if it was lost."""

    def __init__(self, keeper: LeaseKeeper, session_id: str, holder: str, ttl_s: float) -> None:
        self.keeper = keeper
        self.session_id = session_id
        self.holder = holder
        self.ttl_s = ttl_s
        self.lost: LeaseHolder | None = None
        self.renewed = time.monotonic()

    def held(self, now: float | None = None) -> bool:
        """Whether the lease is surely still this holder's: not lost to another turn, and
        renewed within its TTL (a process frozen longer may have lost it without knowing)."""
        now = time.monotonic() if now is None else now
        return self.lost is None and now - self.renewed < self.ttl_s

    def stop(self) -> None:
        """No renewal after this returns (one in flight is waited for)."""
        self.keeper.forget(self)


class LeaseKeeper:
    """Renews every lease its process holds, each every third of its TTL, from one thread
    of its own: never late behind a busy event loop or a full executor (renewals from the
    loop came over a second late under the scale trial's load), and one thread however many
    turns run at once (a thread per turn cost throughput at 200 concurrent sessions)."""

    def __init__(self, leases: SessionLeases) -> None:
        self.leases = leases
        self._beats: dict[tuple[str, str], Heartbeat] = {}
        self._lock = threading.Condition()  # renewals, keeps and forgets never overlap
        self._thread: threading.Thread | None = None

    def keep(self, session_id: str, holder: str, ttl_s: float) -> Heartbeat:
        beat = Heartbeat(self, session_id, holder, ttl_s)
        with self._lock:
            self._beats[(session_id, holder)] = beat
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
                self._thread.start()
            # no wake-up: a new lease is due a third of its TTL from now, never before the
            # keeper's next wake (waking it for every turn cost a scan of every lease)
        return beat

    def forget(self, beat: Heartbeat) -> None:
        with self._lock:
            self._beats.pop((beat.session_id, beat.holder), None)

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._beats:
                    self._lock.wait(5.0)
                    if not self._beats:
                        self._thread = None
                        return
                now = time.monotonic()
                due = [b for b in self._beats.values() if now - b.renewed >= b.ttl_s / 3]
                for beat in due:
                    self._renew(beat, now)
                wake = min(
                    (b.renewed + b.ttl_s / 3 for b in self._beats.values()), default=now + 5.0
                )
                self._lock.wait(max(0.01, min(wake, now + 1.0) - time.monotonic()))

    def _renew(self, beat: Heartbeat, now: float) -> None:
        try:
            busy = self.leases.acquire(beat.session_id, beat.holder, beat.ttl_s)
        except Exception as e:  # the database away for a moment: try again soon
            log.warning("session %s: lease renewal failed: %s", beat.session_id, e)
            return
        if busy is not None:
            beat.lost = busy
            log.error(
                "session %s: lease lost to pid %d on %s while its turn runs",
                beat.session_id,
                busy.pid,
                busy.host,
            )
        elif now - beat.renewed > beat.ttl_s:
            late = now - beat.renewed - beat.ttl_s
            log.warning("session %s: lease renewed %.2fs late", beat.session_id, late)
        beat.renewed = now


class SessionLeases:
    """The ``session_leases`` table (thread-safe).

    ``target``: a SQLite file (the checkpoint DB), a ``postgresql://`` URL or an open
    ``Database`` (not closed by ``close``).
    """

    def __init__(self, target: Path | str | Database) -> None:
        self.path: Path | None = None
        if isinstance(target, Path | str) and not is_database_url(target):
            self.path = Path(target)
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db, self._owned = connect(target, schema=("leases_schema",))
        self._keeper = LeaseKeeper(self)
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
        current: LeaseHolder | None = None
        for _ in range(_TAKE_ATTEMPTS):
            # One autocommit statement: free, expired or already ours.
            if self._db.run("leases_take", {**mine, "now": moment}):
                return None
            # Held until a later time: its holder may be a dead process of this host.
            row = self._db.one("leases_get", (session_id,))
            if row is None:
                continue  # released meanwhile: take it again
            current = _row(row)
            if not self._stale(current, moment):
                return current
            old = {"old_holder": current.holder, "old_expires_at": current.expires_at}
            if self._db.run("leases_steal", {**mine, **old}):  # only the row as read
                return None
            # another taker replaced (or its holder renewed) that row first: look again
        return current

    def renew(self, session_id: str, holder: str, ttl_s: float, now: float | None = None) -> bool:
        """Extend ``holder``'s lease to ``now + ttl_s`` (a heartbeat); ``False`` if the lease
        is no longer ``holder``'s (released, or taken over after it expired)."""
        moment = time.time() if now is None else now
        params = {"session_id": session_id, "holder": holder, "expires_at": moment + ttl_s}
        return self._db.run("leases_renew", params) > 0

    def heartbeat(self, session_id: str, holder: str, ttl_s: float) -> Heartbeat:
        """Keep ``holder``'s lease (taken with ``acquire``) alive until ``Heartbeat.stop``."""
        return self._keeper.keep(session_id, holder, ttl_s)

    def release(self, session_id: str, holder: str) -> bool:
        """Give the lease back (only ``holder``'s own); ``False`` if it was not held."""
        return self._db.run("leases_release", (session_id, holder)) > 0  # one statement: atomic

    def holder(self, session_id: str) -> LeaseHolder | None:
        """The current row of ``session_id`` (stale or not), if any."""
        row = self._db.one("leases_get", (session_id,))
        return None if row is None else _row(row)

    def close(self) -> None:
        """Close the connection (not a ``Database`` passed in)."""
        if self._owned:
            self._db.close()
