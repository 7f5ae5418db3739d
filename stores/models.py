"""Pydantic models of the stores: features, store rows, offers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from stores.errors import OfferReason

Inventory = Literal["High", "Normal", "Low", "Critical"]
ChurnBand = Literal["high", "mid", "low"]
OfferStatus = Literal[
    "proposed", "approval_pending", "accepted", "rejected", "expired", "superseded"
]
LIVE_STATUSES: frozenset[OfferStatus] = frozenset({"proposed", "approval_pending"})
REDEEMABLE_STATUSES: frozenset[OfferStatus] = frozenset({"proposed", "accepted"})
"""A code the customer can use (until it expires)."""


def discount_amount(cart_value: float, discount_percent: float) -> float:
    """The discount in currency: ``round(cart_value * discount_percent / 100, 2)``."""
    return round(cart_value * discount_percent / 100, 2)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LiveSession(_Frozen):
    """A row of the hot store: the customer's current cart."""

    user_id: str
    cart_value: float = Field(ge=0)
    margin: float = Field(ge=0, le=1, description="gross margin as a fraction")
    inventory: Inventory
    updated_at: AwareDatetime


class UserAnalytics(_Frozen):
    """A row of the cold store: the customer's history."""

    user_id: str
    lifetime_value: float = Field(ge=0)
    churn_probability: float = Field(ge=0, le=1)
    avg_days_between_orders: float = Field(ge=0)


class CustomerFeatures(_Frozen):
    """Everything the policy needs about one customer (hot + cold)."""

    user_id: str
    cart_value: float = Field(ge=0)
    margin: float = Field(ge=0, le=1, description="gross margin as a fraction")
    inventory: Inventory
    lifetime_value: float = Field(ge=0)
    churn_probability: float = Field(ge=0, le=1)
    avg_days_between_orders: float = Field(ge=0)
    updated_at: datetime


class UnknownUser(_Frozen):
    """Lookup result for a customer missing from a store."""

    user_id: str
    reason: str


class Offer(_Frozen):
    """A row of the offer ledger."""

    code: str
    user_id: str
    session_id: str
    turn: int = Field(ge=0)
    slot: str = "main"
    discount_percent: float = Field(ge=0, le=100)
    cap_percent: float = Field(ge=0)
    cart_value: float = Field(ge=0)
    amount: float = Field(ge=0)
    status: OfferStatus
    created_at: AwareDatetime
    expires_at: AwareDatetime
    decided_by: str | None = None
    decided_at: AwareDatetime | None = None  # when a manager decided (approvals only)
    superseded_by: str | None = None
    churn_band: ChurnBand | None = None  # at issue (None: written before it was recorded)
    inventory: Inventory | None = None  # at issue (None: written before it was recorded)

    @property
    def is_live(self) -> bool:
        """Proposed or waiting for approval (by status; expiry is the ledger's job)."""
        return self.status in LIVE_STATUSES

    def is_redeemable(self, now: datetime) -> bool:
        """Proposed or accepted and not expired at ``now``."""
        return self.status in REDEEMABLE_STATUSES and self.expires_at > now


class OfferValidation(_Frozen):
    """Outcome of checking a code for a customer."""

    valid: bool
    reason: OfferReason
    offer: Offer | None = None
