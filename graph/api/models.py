"""Pydantic models in and out of the HTTP service (they are its OpenAPI at ``/docs``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ErrorOut(BaseModel):
    """Every error: one line for the user, the meaning in the HTTP status."""

    error: str


class TurnIn(BaseModel):
    """One customer message (the customer comes from the token, never from here)."""

    model_config = ConfigDict(extra="forbid")

    message: str = Field(..., description="what the customer wrote")


class OfferOut(BaseModel):
    """The offer of a turn: ``code`` is ``null`` while a manager must decide."""

    discount_percent: float
    cap_percent: float
    code: str | None


class TurnOut(BaseModel):
    """The ``discount-manager turn --json`` object."""

    session: str
    user_id: str
    turn: int
    route: str | None
    reply: str | None
    offer: OfferOut | None
    error: str | None
    status: str | None
    approval: dict[str, Any] | None
    latency_s: float


class HistoryTurn(BaseModel):
    """One turn as ``discount-manager history --json`` prints it."""

    turn: int
    customer: str
    reply: str | None
    route: str | None
    status: str | None
    offer_code: str | None
    error: str | None


class StandingOffer(BaseModel):
    """A code the customer holds, as the offer card shows it."""

    code: str
    discount_percent: float
    amount: float
    status: str
    expires_at: str


class SessionState(BaseModel):
    """What the shopper's page needs to redraw itself: turns, the offer card, approval."""

    session: str
    user_id: str | None
    turns: list[HistoryTurn]
    approval_pending: bool
    offer: StandingOffer | None


class CartOut(BaseModel):
    """The shopper's cart as the widget opens with it (no margin, no internal figures)."""

    user_id: str
    cart_value: float
    currency_note: str = "amounts in the shop's currency"
    offer: StandingOffer | None


class OfferCheck(BaseModel):
    """Whether the caller may redeem a code now."""

    code: str
    valid: bool
    reason: str
    offer: StandingOffer | None = None


class DecisionIn(BaseModel):
    """A manager's decision; ``percent`` approves a lower percent than proposed."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    percent: float | None = Field(default=None, ge=0, le=100)


class Customer(BaseModel):
    """The customer context a manager decides with."""

    user_id: str
    cart_value: float | None = None
    margin: float | None = None
    inventory: str | None = None
    lifetime_value: float | None = None
    churn_probability: float | None = None
    avg_days_between_orders: float | None = None


class ApprovalOut(BaseModel):
    """A pending approval: the proposal, the customer, the policy and the model's reasoning."""

    session: str
    code: str
    user_id: str
    proposed_percent: float
    amount: float
    cap_percent: float
    cart_value: float
    created_at: str
    expires_at: str
    churn_band: str | None
    standing_offer: StandingOffer | None
    customer: Customer
    reasons: list[str]
    reasoning: dict[str, Any]


class Health(BaseModel):
    """``/healthz`` and ``/readyz``."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)
