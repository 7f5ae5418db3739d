"""Typed errors of the stores."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from stores.models import Offer

OfferReason = Literal[
    "ok",
    "unknown_code",
    "wrong_user",
    "expired",
    "superseded",
    "rejected",
    "approval_pending",
    "not_pending",
]

RefusalReason = Literal["offer_stands", "accepted_stands", "approval_pending", "session_conflict"]
"""Why the ledger refused to issue an offer (see ``OfferRefusedError``)."""


class StoreNotFoundError(FileNotFoundError):
    """A store file is missing: the data has not been generated yet."""

    def __init__(self, path: object, what: str) -> None:
        super().__init__(f"{what} not found at {path}: run `discount-manager setup-data`")
        self.path = path


class OfferError(Exception):
    """An offer operation refused, with a machine-readable ``reason``."""

    def __init__(self, reason: OfferReason, message: str | None = None) -> None:
        super().__init__(message or reason)
        self.reason: OfferReason = reason


class OfferRefusedError(Exception):
    """The ledger would not issue a new offer; nothing was written.

    ``reason``: ``offer_stands`` (not above the customer's redeemable offer),
    ``accepted_stands`` (the customer holds an accepted, redeemable code),
    ``approval_pending`` (another proposal of the customer waits for a manager),
    ``session_conflict`` (the session id already holds an offer of another customer).
    ``standing`` is the customer's redeemable offer (``None`` if none, or for
    ``session_conflict``); ``pending`` the offer awaiting approval, if that is the reason.
    """

    def __init__(
        self,
        reason: RefusalReason,
        message: str,
        *,
        standing: Offer | None = None,
        pending: Offer | None = None,
    ) -> None:
        super().__init__(message)
        self.reason: RefusalReason = reason
        self.standing = standing
        self.pending = pending
