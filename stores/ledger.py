"""Offer ledger: every offer made, with a redeemable code, in its own SQLite file or Postgres.

The ledger is the single authority on money. It keeps its own long-lived connection to
``ledger.sqlite`` (``setup-data`` never touches it) or runs on a Postgres ``Database``. Every
write is one transaction that first takes the customer's lock (SQLite: ``BEGIN IMMEDIATE``,
which serialises every writer of the file; Postgres: the advisory lock of ``offers:<user>``,
which serialises the writers of that customer on every machine), and re-reads the customer's
rows holding it, so the rules below hold across threads, processes and hosts:

1. ``one_redeemable``: a customer holds at most one *redeemable* code (``proposed`` or
   ``accepted``, not expired).
2. ``one_pending``: at most one proposal per customer waits for a manager
   (``approval_pending``); while it waits, no other offer is issued to that customer.
3. ``pending_supersedes_nothing``: a pending proposal leaves the redeemable code alone until it
   is approved; it is always above that code.
4. ``accepted_is_final``: while an accepted code is redeemable, the customer has no other live
   offer and no further code is issued.
5. ``never_lower``: a new code is above the customer's redeemable code (re-checked inside the
   issuing transaction, never from a value read earlier); a code is superseded only by a code
   of at least its percent, or closed by the acceptance of another.
6. ``within_cap``: a code's percent is within ``0..cap_percent`` and its amount is
   ``cart_value * percent / 100``.

``violations()`` checks all of them on the stored rows. A proposal is keyed by
``(session_id, turn, slot)`` (``slot`` defaults to ``"main"``): a re-run returns the stored row
unchanged (never a second code, never a new expiry). Each row also keeps the churn band and
stock status the offer was priced under (for the analyst report; ``NULL`` on older rows).
Refusals are typed (``OfferRefusedError``) and write nothing. Expiry is applied lazily: a
read expires every due offer (one statement), a write only the locked customer's (on Postgres,
touching other customers' rows would take their row locks and could deadlock).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal, get_args

from stores._cache import StoreCache
from stores._time import to_text, utc_now
from stores.codes import new_code, normalize_code
from stores.db import Database, Row, Session, UniqueViolation, connect, is_database_url
from stores.errors import OfferError, OfferReason, OfferRefusedError
from stores.models import (
    LIVE_STATUSES,
    ChurnBand,
    Inventory,
    Offer,
    OfferValidation,
    discount_amount,
)

__all__ = [
    "INVARIANTS",
    "OfferError",
    "OfferLedger",
    "OfferRefusedError",
    "get_ledger",
    "ledger_violations",
    "reset_ledgers",
]

log = logging.getLogger(__name__)

_CODE_ATTEMPTS = 8
INVARIANTS = (
    "one_redeemable",
    "one_pending",
    "pending_supersedes_nothing",
    "accepted_is_final",
    "never_lower",
    "within_cap",
)
CHURN_BANDS: tuple[str, ...] = get_args(ChurnBand)
INVENTORY_STATUSES: tuple[str, ...] = get_args(Inventory)


def _lock(user_id: str) -> str:
    """The lock key of a customer's offers (every ledger write takes it first)."""
    return f"offers:{user_id}"


class OfferLedger:
    """The ``offers`` table; all methods are thread-safe and each write is one transaction.

    ``target``: a SQLite file (``Path``), a ``postgresql://`` URL, or an open ``Database``
    (shared with other stores: not closed by ``close``).
    """

    def __init__(
        self, target: Path | str | Database, *, code_factory: Callable[[], str] = new_code
    ) -> None:
        self.path: Path | None = None
        if isinstance(target, Path | str) and not is_database_url(target):
            self.path = Path(target)
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db, self._owned = connect(target, schema=("ledger_schema",))
        self._new_code = code_factory
        if self._db.dialect == "sqlite":
            with self._db.transaction() as db:  # ledgers made before these columns existed
                columns = {row["name"] for row in db.all("ledger_columns")}
                for column in ("superseded_by", "decided_at", "churn_band", "inventory"):
                    if column not in columns:
                        db.run(f"ledger_add_{column}")

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgres``."""
        return self._db.dialect

    # -- reads -------------------------------------------------------------------------

    def get(self, code: str) -> Offer | None:
        """The offer of ``code`` (typed forms accepted, see ``normalize_code``), as stored."""
        return _get(self._db, code)

    def refresh(self, code: str, now: datetime | None = None) -> Offer | None:
        """``get`` after applying expiry."""
        self._expire(now)
        return self.get(code)

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
        """The user's redeemable offer: unexpired ``proposed`` or ``accepted`` (at most one)."""
        moment = self._expire(now)
        return _offer(self._db.one("ledger_standing", (user_id, to_text(moment))))

    def pending_offer(self, session_id: str, now: datetime | None = None) -> Offer | None:
        """The session's newest unexpired offer awaiting a manager's approval."""
        moment = self._expire(now)
        return _offer(self._db.one("ledger_pending", (session_id, to_text(moment))))

    def user_pending_offer(self, user_id: str, now: datetime | None = None) -> Offer | None:
        """The user's unexpired offer awaiting a manager's approval (any session)."""
        moment = self._expire(now)
        return _offer(self._db.one("ledger_pending_user", (user_id, to_text(moment))))

    def pending_offers(self, now: datetime | None = None) -> list[Offer]:
        """Every unexpired offer awaiting a manager's approval, newest first."""
        moment = self._expire(now)
        return [_must(r) for r in self._db.all("ledger_pending_all", (to_text(moment),))]

    def validate(self, code: str, user_id: str, now: datetime | None = None) -> OfferValidation:
        """Whether ``user_id`` may redeem ``code`` now (another user's offer is not shown)."""
        self._expire(now)
        offer = self.get(code)
        reason = _refusal(offer, user_id, utc_now(now))
        if reason is None:
            return OfferValidation(valid=True, reason="ok", offer=offer)
        hidden = reason in {"unknown_code", "wrong_user"}
        return OfferValidation(valid=False, reason=reason, offer=None if hidden else offer)

    def violations(self, now: datetime | None = None) -> list[str]:
        """The ledger invariants (module docstring) broken by the stored rows; ``[]`` if none.

        Reads only (expiry is judged from ``expires_at``, not applied). Each entry starts with
        the rule's name from ``INVARIANTS``.
        """
        offers = [Offer.model_validate(dict(r)) for r in self._db.all("ledger_list_all")]
        order = {row["code"]: row["seq"] for row in self._db.all("ledger_insert_order")}
        return ledger_violations(offers, utc_now(now), order)

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
        churn_band: str | None = None,
        inventory: str | None = None,
        now: datetime | None = None,
    ) -> Offer:
        """Issue the offer of ``(session_id, turn, slot)``; idempotent per that key.

        ``churn_band`` (``high``/``mid``/``low``) and ``inventory`` (the hot store's status)
        are the values the offer was priced under, kept for the analyst report.

        A re-run returns the stored row as it is now (decided, accepted, superseded or
        expired included), never a second code and never a new expiry. A new offer is
        checked against the customer's offers *inside* this transaction and refused with
        ``OfferRefusedError`` (nothing written) when the key belongs to another customer,
        when an accepted code is redeemable, when another proposal waits for approval, or
        when it is not above the redeemable code. A ``proposed`` offer supersedes the
        customer's other proposed code; an ``approval_pending`` one supersedes nothing.
        """
        if status not in LIVE_STATUSES:
            raise ValueError(f"status must be proposed or approval_pending, not {status!r}")
        if ttl_hours <= 0:
            raise ValueError("ttl_hours must be positive")
        if turn < 0 or cart_value < 0 or cap_percent < 0 or not 0 <= discount_percent <= 100:
            raise ValueError("need turn >= 0, cart_value >= 0, cap >= 0, 0 <= percent <= 100")
        if discount_percent > cap_percent:
            raise ValueError(f"{discount_percent:g}% is above the cap of {cap_percent:g}%")
        if churn_band is not None and churn_band not in CHURN_BANDS:
            raise ValueError(f"churn_band must be one of {CHURN_BANDS}, not {churn_band!r}")
        if inventory is not None and inventory not in INVENTORY_STATUSES:
            raise ValueError(f"inventory must be one of {INVENTORY_STATUSES}, not {inventory!r}")

        def write(db: Session) -> tuple[Offer, int]:
            # read the clock holding the customer's lock: stamps follow the commit order
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
                "churn_band": churn_band,
                "inventory": inventory,
            }
            db.run("ledger_expire_due_user", (user_id, to_text(moment)))
            existing = _offer(db.one("ledger_by_session_turn", (session_id, turn, slot)))
            if existing is not None:
                return _rerun(existing, user_id), 0
            _check_new_offer(db, user_id, discount_percent, moment)
            try:
                code = self._insert(db, values)
            except UniqueViolation as exc:
                if "session_id" not in exc.columns:
                    raise
                # Postgres: another customer's transaction (another lock) committed this key
                # meanwhile; SQLite serialises every writer, so it never gets here.
                taken = _must(db.one("ledger_by_session_turn", (session_id, turn, slot)))
                return _rerun(taken, user_id), 0
            superseded = 0
            if status == "proposed":
                superseded = db.run("ledger_supersede_proposed", {"user_id": user_id, "code": code})
            return _must(db.one("ledger_get", (code,))), superseded

        offer, superseded = self._db.atomic(write, lock=_lock(user_id))
        if superseded:
            log.info(
                "offer %s superseded %d earlier offer(s) of %s", offer.code, superseded, user_id
            )
        return offer

    def accept(self, code: str, user_id: str, now: datetime | None = None) -> Offer:
        """Accept a ``proposed`` offer for its owner (idempotent); ``OfferError`` otherwise.

        Acceptance closes the customer's other live offers (a pending proposal included).
        """

        def write(db: Session) -> Offer:
            moment = utc_now(now)  # holding the customer's lock, as in propose
            db.run("ledger_expire_due_user", (user_id, to_text(moment)))
            offer = _get(db, code)
            reason = _refusal(offer, user_id, moment)
            if reason is not None:
                raise OfferError(reason, f"cannot accept {code!r}: {reason}")
            assert offer is not None
            if offer.status == "accepted":
                return offer
            db.run("ledger_set_status", ("accepted", offer.code))
            db.run("ledger_supersede_live", {"user_id": user_id, "code": offer.code})
            return _must(db.one("ledger_get", (offer.code,)))

        return self._db.atomic(write, lock=_lock(user_id))

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

        Approved: ``proposed`` at the proposed or a *lower* ``discount_percent``, but never
        below the customer's redeemable code (raised to it); it then supersedes that code.
        Not approved: ``rejected`` (the redeemable code is untouched). ``OfferError`` if the
        offer is unknown, expired or no longer pending (already decided: read it with
        ``get`` to deliver the recorded decision).
        """
        if not decided_by.strip():
            raise ValueError("decided_by is required")
        owner = self._owner(normalize_code(code))
        if owner is None:
            raise OfferError("unknown_code", f"unknown offer code {code!r}")

        def write(db: Session) -> Offer:
            moment = utc_now(now)  # holding the owner's lock, as in propose
            db.run("ledger_expire_due_user", (owner, to_text(moment)))
            offer = _get(db, code)  # re-read holding the lock
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
            if approved:
                best = _offer(db.one("ledger_standing_best", (offer.user_id, to_text(moment))))
                if best is not None:
                    percent = max(percent, best.discount_percent)
            db.run(
                "ledger_decide",
                {
                    "code": offer.code,
                    "status": "proposed" if approved else "rejected",
                    "decided_by": decided_by,
                    "decided_at": to_text(moment),
                    "discount_percent": percent,
                    "amount": discount_amount(offer.cart_value, percent),
                },
            )
            if approved:
                db.run("ledger_supersede_proposed", {"user_id": offer.user_id, "code": offer.code})
            return _must(db.one("ledger_get", (offer.code,)))

        return self._db.atomic(write, lock=_lock(owner))

    def withdraw(self, code: str, now: datetime | None = None) -> Offer | None:
        """Let a pending proposal lapse now (``expired``): its approval request is gone.

        Only an ``approval_pending`` row changes; the stored row is returned either way.
        """
        owner = self._owner(code)
        if owner is None:
            return None

        def write(db: Session) -> tuple[Offer | None, int]:
            moment = utc_now(now)  # holding the owner's lock, as in propose
            changed = db.run("ledger_withdraw", {"code": code, "now": to_text(moment)})
            return _offer(db.one("ledger_get", (code,))), changed

        offer, changed = self._db.atomic(write, lock=_lock(owner))
        if changed:
            log.info("pending offer %s withdrawn", code)
        return offer

    def close(self) -> None:
        """Close the connection (a ``Database`` passed in stays open: its owner closes it)."""
        if self._owned:
            self._db.close()

    # -- internals ---------------------------------------------------------------------

    def _expire(self, now: datetime | None) -> datetime:
        """Mark due live offers ``expired``; the effective ``now``."""
        moment = utc_now(now)
        expired = self._db.run("ledger_expire_due", (to_text(moment),))
        if expired:
            log.info("%d offer(s) expired", expired)
        return moment

    def _owner(self, code: str | None) -> str | None:
        """The customer of ``code`` (never changes: safe to read before taking the lock)."""
        row = None if code is None else self._db.one("ledger_owner", (code,))
        return None if row is None else str(row["user_id"])

    def _insert(self, db: Session, values: dict[str, object]) -> str:
        """Insert with a fresh code, retrying on a (very unlikely) code collision.

        Each attempt runs in a savepoint: on Postgres a failed statement would otherwise
        abort the whole transaction.
        """
        for _ in range(_CODE_ATTEMPTS):
            code = self._new_code()
            try:
                with db.savepoint():
                    db.run("ledger_insert", {**values, "code": code})
            except UniqueViolation as exc:
                if exc.columns != ("code",):
                    raise
                log.warning("offer code collision, drawing another")
                continue
            return code
        raise RuntimeError(f"no unique offer code after {_CODE_ATTEMPTS} attempts")


def _rerun(existing: Offer, user_id: str) -> Offer:
    """The stored offer of a re-run key; ``session_conflict`` if another customer's."""
    if existing.user_id != user_id:
        raise OfferRefusedError(
            "session_conflict",
            f"session {existing.session_id!r} turn {existing.turn} holds an offer of another "
            "customer",
        )
    return existing


def _get(db: Session, code: str) -> Offer | None:
    """The offer of ``code`` (typed forms accepted) on ``db``, as stored."""
    canonical = normalize_code(code)
    if canonical is None:
        return None
    return _offer(db.one("ledger_get", (canonical,)))


def _check_new_offer(db: Session, user_id: str, percent: float, now: datetime) -> None:
    """Refuse a new offer that would break an invariant (called inside the transaction)."""
    moment = to_text(now)
    redeemable = [_must(r) for r in db.all("ledger_redeemable_user", (user_id, moment))]
    best = redeemable[0] if redeemable else None
    accepted = next((o for o in redeemable if o.status == "accepted"), None)
    if accepted is not None:
        raise OfferRefusedError(
            "accepted_stands", f"{user_id} accepted {accepted.code}", standing=accepted
        )
    pending = _offer(db.one("ledger_pending_user", (user_id, moment)))
    if pending is not None:
        raise OfferRefusedError(
            "approval_pending",
            f"{pending.code} of {user_id} waits for approval",
            standing=best,
            pending=pending,
        )
    if best is not None and percent <= best.discount_percent:
        raise OfferRefusedError(
            "offer_stands",
            f"{percent:g}% is not above the standing {best.discount_percent:g}% ({best.code})",
            standing=best,
        )


def ledger_violations(
    offers: Iterable[Offer], now: datetime, order: Mapping[str, int] | None = None
) -> list[str]:
    """The invariants (module docstring) that ``offers`` break at ``now``; ``[]`` if none.

    ``order`` maps codes to their insertion order (ties of ``created_at`` are broken by it).
    Rows superseded before ``superseded_by`` was recorded (older ledgers) are not judged by
    ``never_lower``.
    """
    rows = list(offers)
    seq = order or {}

    def age(o: Offer) -> tuple[datetime, int]:
        return (o.created_at, seq.get(o.code, 0))

    by_code = {o.code: o for o in rows}
    by_user: dict[str, list[Offer]] = defaultdict(list)
    for o in rows:
        by_user[o.user_id].append(o)
    found: list[str] = []
    for user, mine in sorted(by_user.items()):
        redeemable = [o for o in mine if o.is_redeemable(now)]
        pending = [o for o in mine if o.status == "approval_pending" and o.expires_at > now]
        if len(redeemable) > 1:
            found.append(f"one_redeemable: {user} holds {[o.code for o in redeemable]}")
        if len(pending) > 1:
            found.append(f"one_pending: {user} has {[o.code for o in pending]} pending")
        for p in pending:
            for r in redeemable:
                if p.discount_percent <= r.discount_percent:
                    found.append(
                        f"pending_supersedes_nothing: pending {p.code} is not above {r.code}"
                    )
        if any(o.status == "accepted" for o in redeemable):
            live = [o.code for o in mine if o.is_live and o.expires_at > now]
            if live:
                found.append(f"accepted_is_final: {user} has live {live} beside an accepted code")
    for o in rows:
        if not 0 <= o.discount_percent <= o.cap_percent:
            found.append(f"within_cap: {o.code} gives {o.discount_percent:g}% > {o.cap_percent:g}%")
        if abs(o.amount - discount_amount(o.cart_value, o.discount_percent)) > 0.005:
            found.append(f"within_cap: {o.code} amount {o.amount} does not match its percent")
        if o.status != "superseded" or o.superseded_by is None:
            continue
        new = by_code.get(o.superseded_by)
        if new is None or new.user_id != o.user_id or new.code == o.code:
            found.append(f"never_lower: {o.code} superseded by unknown {o.superseded_by}")
        elif age(new) >= age(o) and new.discount_percent < o.discount_percent:
            found.append(
                f"never_lower: {o.code} ({o.discount_percent:g}%) replaced by lower {new.code}"
            )
        elif age(new) < age(o) and new.status != "accepted":
            found.append(f"never_lower: {o.code} closed by older {new.code}, not accepted")
    return found


def _must(row: Row | None) -> Offer:
    offer = _offer(row)
    assert offer is not None
    return offer


def _offer(row: Row | None) -> Offer | None:
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
