"""Offer ledger: every offer made, with a redeemable code, in the hot SQLite file.

The ledger keeps its own long-lived, lock-guarded connection to the hot store file
(independent of ``HotStore``'s; SQLite WAL serialises the writers, also across processes).
Statuses: ``proposed`` and ``approval_pending`` are *live*; at most one live offer per
customer (a new proposal supersedes the others). Expiry is applied lazily. A proposal is
keyed by ``(session_id, turn, slot)``; ``slot`` defaults to ``"main"``.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from stores._cache import StoreCache
from stores._sqlite import SqliteConnection
from stores._time import to_text, utc_now
from stores.codes import new_code, normalize_code
from stores.errors import OfferError, OfferReason
from stores.models import LIVE_STATUSES, Offer, OfferValidation, discount_amount

__all__ = [
    "OfferError",
    "OfferLedger",
    "get_ledger",
    "reset_ledgers",
]

log = logging.getLogger(__name__)

_CODE_ATTEMPTS = 8


class OfferLedger:
    """The ``offers`` table; all methods are thread-safe and each write is one transaction."""

    def __init__(self, path: Path, *, code_factory: Callable[[], str] = new_code) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = SqliteConnection(self.path, schema=("ledger_schema",))
        self._new_code = code_factory

    # -- reads -------------------------------------------------------------------------

    def get(self, code: str) -> Offer | None:
        """The offer of ``code`` (typed forms accepted, see ``normalize_code``), as stored."""
        canonical = normalize_code(code)
        if canonical is None:
            return None
        return _offer(self._db.one("ledger_get", (canonical,)))

    def by_session_turn(self, session_id: str, turn: int, slot: str = "main") -> Offer | None:
        """The offer made at ``turn`` (and ``slot``) of ``session_id``, as stored."""
        return _offer(self._db.one("ledger_by_session_turn", (session_id, turn, slot)))

    def list(self, user_id: str | None = None, *, now: datetime | None = None) -> list[Offer]:
        """All offers (of ``user_id``), oldest first, after applying expiry."""
        self._expire(now)
        rows = (
            self._db.all("ledger_list_all")
            if user_id is None
            else self._db.all("ledger_list_user", (user_id,))
        )
        return [Offer.model_validate(dict(row)) for row in rows]

    def standing_offer(self, user_id: str, now: datetime | None = None) -> Offer | None:
        """The user's newest unexpired ``proposed`` or ``accepted`` offer."""
        moment = self._expire(now)
        return _offer(self._db.one("ledger_standing", (user_id, to_text(moment))))

    def pending_offer(self, session_id: str, now: datetime | None = None) -> Offer | None:
        """The session's newest unexpired offer awaiting a manager's approval."""
        moment = self._expire(now)
        return _offer(self._db.one("ledger_pending", (session_id, to_text(moment))))

    def validate(self, code: str, user_id: str, now: datetime | None = None) -> OfferValidation:
        """Whether ``user_id`` may redeem ``code`` now (another user's offer is not shown)."""
        self._expire(now)
        offer = self.get(code)
        reason = _refusal(offer, user_id, utc_now(now))
        if reason is None:
            return OfferValidation(valid=True, reason="ok", offer=offer)
        hidden = reason in {"unknown_code", "wrong_user"}
        return OfferValidation(valid=False, reason=reason, offer=None if hidden else offer)

    # -- writes ------------------------------------------------------------------------

    def propose(
        self,
        *,
        session_id: str,
        turn: int,
        user_id: str,
        discount_percent: float,
        cap_percent: float,
        cart_value: float,
        status: Literal["proposed", "approval_pending"] = "proposed",
        ttl_hours: float,
        slot: str = "main",
        now: datetime | None = None,
    ) -> Offer:
        """Record the offer of ``(session_id, turn, slot)``; idempotent per that key.

        ``slot`` tells apart two offers of one turn (e.g. ``"fallback"`` after a rejected
        approval). A rerun updates the same row and keeps its code, unless the row was
        already decided by a manager or left the live statuses (then it is returned
        unchanged). The user's other live offers become ``superseded`` in the same
        transaction.
        """
        if status not in LIVE_STATUSES:
            raise ValueError(f"status must be proposed or approval_pending, not {status!r}")
        if ttl_hours <= 0:
            raise ValueError("ttl_hours must be positive")
        if turn < 0 or cart_value < 0 or cap_percent < 0 or not 0 <= discount_percent <= 100:
            raise ValueError("need turn >= 0, cart_value >= 0, cap >= 0, 0 <= percent <= 100")
        moment = utc_now(now)
        values = {
            "user_id": user_id,
            "session_id": session_id,
            "turn": turn,
            "slot": slot,
            "discount_percent": discount_percent,
            "cap_percent": cap_percent,
            "cart_value": cart_value,
            "amount": discount_amount(cart_value, discount_percent),
            "status": status,
            "created_at": to_text(moment),
            "expires_at": to_text(moment + timedelta(hours=ttl_hours)),
        }
        with self._db.transaction() as db:
            db.run("ledger_expire_due", (to_text(moment),))
            existing = _offer(db.one("ledger_by_session_turn", (session_id, turn, slot)))
            if existing is not None and existing.user_id != user_id:
                raise ValueError(
                    f"session {session_id!r} turn {turn} already holds an offer for another user"
                )
            if existing is None:
                code = self._insert(db, values)
            elif existing.status in LIVE_STATUSES and existing.decided_by is None:
                code = existing.code
                db.run("ledger_update_proposal", {**values, "code": code})
            else:
                log.info("offer %s (%s) kept as is on re-proposal", existing.code, existing.status)
                return existing
            superseded = db.run("ledger_supersede_others", (user_id, code))
            offer = _offer(db.one("ledger_get", (code,)))
        if superseded:
            log.info("offer %s superseded %d earlier offer(s) of %s", code, superseded, user_id)
        assert offer is not None
        return offer

    def accept(self, code: str, user_id: str, now: datetime | None = None) -> Offer:
        """Accept a ``proposed`` offer for its owner (idempotent); ``OfferError`` otherwise."""
        moment = utc_now(now)
        with self._db.transaction() as db:
            db.run("ledger_expire_due", (to_text(moment),))
            offer = self.get(code)
            reason = _refusal(offer, user_id, moment)
            if reason is not None:
                raise OfferError(reason, f"cannot accept {code!r}: {reason}")
            assert offer is not None
            if offer.status == "accepted":
                return offer
            db.run("ledger_set_status", ("accepted", offer.code))
            accepted = self.get(offer.code)
        assert accepted is not None
        return accepted

    def decide(
        self,
        code: str,
        *,
        approved: bool,
        decided_by: str,
        discount_percent: float | None = None,
        now: datetime | None = None,
    ) -> Offer:
        """A manager's decision on an ``approval_pending`` offer.

        Approved: back to ``proposed``, optionally at a *lower* ``discount_percent`` (the
        amount is recomputed). Not approved: ``rejected``.
        """
        if not decided_by.strip():
            raise ValueError("decided_by is required")
        moment = utc_now(now)
        with self._db.transaction() as db:
            db.run("ledger_expire_due", (to_text(moment),))
            offer = self.get(code)
            if offer is None:
                raise OfferError("unknown_code", f"unknown offer code {code!r}")
            if offer.status == "expired":
                raise OfferError("expired", f"offer {offer.code} expired before the decision")
            if offer.status != "approval_pending":
                raise OfferError("not_pending", f"offer {offer.code} is {offer.status}")
            percent = offer.discount_percent if discount_percent is None else discount_percent
            if not 0 <= percent <= offer.discount_percent:
                raise ValueError(
                    f"approved percent must be within 0..{offer.discount_percent}, not {percent}"
                )
            db.run(
                "ledger_decide",
                {
                    "code": offer.code,
                    "status": "proposed" if approved else "rejected",
                    "decided_by": decided_by,
                    "discount_percent": percent,
                    "amount": discount_amount(offer.cart_value, percent),
                },
            )
            decided = self.get(offer.code)
        assert decided is not None
        return decided

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    # -- internals ---------------------------------------------------------------------

    def _expire(self, now: datetime | None) -> datetime:
        """Mark due live offers ``expired``; the effective ``now``."""
        moment = utc_now(now)
        expired = self._db.run("ledger_expire_due", (to_text(moment),))
        if expired:
            log.info("%d offer(s) expired", expired)
        return moment

    def _insert(self, db: SqliteConnection, values: dict[str, object]) -> str:
        """Insert with a fresh code, retrying on a (very unlikely) code collision."""
        for _ in range(_CODE_ATTEMPTS):
            code = self._new_code()
            try:
                db.run("ledger_insert", {**values, "code": code})
            except sqlite3.IntegrityError as exc:
                if "offers.code" not in str(exc):
                    raise
                log.warning("offer code collision, drawing another")
                continue
            return code
        raise RuntimeError(f"no unique offer code after {_CODE_ATTEMPTS} attempts")


def _offer(row: sqlite3.Row | None) -> Offer | None:
    return None if row is None else Offer.model_validate(dict(row))


def _refusal(offer: Offer | None, user_id: str, now: datetime) -> OfferReason | None:
    """Why ``user_id`` may not use ``offer`` now (``None``: they may)."""
    if offer is None:
        return "unknown_code"
    if offer.user_id != user_id:
        return "wrong_user"
    if offer.status in {"expired", "superseded", "rejected", "approval_pending"}:
        return offer.status
    if offer.expires_at <= now:
        return "expired"
    return None


_CACHE: StoreCache[OfferLedger] = StoreCache(OfferLedger)


def get_ledger(path: Path) -> OfferLedger:
    """The process-wide ledger on ``path`` (opened once, reused)."""
    return _CACHE.get(path)


def reset_ledgers(data_dir: Path | None = None) -> None:
    """Close cached ledgers (of ``data_dir``, or all)."""
    _CACHE.reset(data_dir)
