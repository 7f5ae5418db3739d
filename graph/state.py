"""Typed graph state. The input is narrower than the state: a turn is just new messages.

Each field says which node writes it and whether the router resets it at the start of
every turn ("per turn") or it carries over between turns ("session").
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NotRequired, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.channels.delta import DeltaChannel
from langgraph.graph.message import add_messages

from stores.models import OfferStatus

Route = Literal["negotiate", "accept_offer", "respond"]
TurnStatus = OfferStatus | Literal["final", "invalid", "fallback", "closed"]


@dataclass
class NegotiationContext:
    """Run-scoped context: who the customer is. Set by the session, never by the model."""

    user_id: str = ""


class OfferData(TypedDict):
    """A ledger row as plain data (``stores.models.Offer.model_dump(mode="json")``)."""

    code: str
    user_id: str
    session_id: str
    turn: int
    slot: str
    discount_percent: float
    cap_percent: float
    cart_value: float
    amount: float
    status: OfferStatus
    created_at: str
    expires_at: str
    decided_by: str | None
    decided_at: str | None
    superseded_by: str | None
    churn_band: str | None  # at issue
    inventory: str | None  # at issue


class Proposal(TypedDict, total=False):
    """An offer priced by ``pricing``, not yet issued; ``offer`` adds ``code``/``approval``."""

    discount_percent: float
    cap_percent: float
    cart_value: float
    amount: float
    message: str  # the customer-facing words (already checked)
    reasoning: dict[str, Any]  # the SGR cascade, for the approver and the audit
    approval_reasons: list[str]  # empty: no manager needed
    approval: str  # "approved by X" / "rejected by X"
    code: str  # the issued code


class AuditRecord(TypedDict, total=False):
    """One SGR call (``graph.sgr.SGRCall.as_dict``) plus the turn and the policy."""

    node: str
    schema: str
    dialect: str
    model: str
    parsed: dict[str, Any] | None
    raw: list[str]
    errors: list[str]
    repairs: int
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int
    finish_reasons: list[str]
    turn: int
    policy: dict[str, Any]  # pricing only: cap, model percent, floor, final percent


class ApprovalRequest(TypedDict):
    """The payload of the ``offer`` node's ``interrupt()``: what a manager decides on."""

    type: Literal["approval"]
    session: str
    user_id: str
    code: str
    cart_value: float
    cap_percent: float
    proposed_percent: float
    amount: float
    reasons: list[str]
    reasoning: dict[str, Any]
    no_approval_percent: float
    error: NotRequired[str]  # set when the previous resume value was refused (re-asked)


def current_turn_records(left: list[AuditRecord], right: list[AuditRecord]) -> list[AuditRecord]:
    """Reducer of ``audit``: append, keeping only the records of the newest turn.

    The whole trail lives in the append-only ``audit_log`` table (written by
    ``nodes.sgr_step``); a checkpoint that re-stored it would grow with every turn.
    """
    merged = [*(left or []), *(right or [])]
    if not merged:
        return []
    newest = max(int(r.get("turn", 0)) for r in merged)
    return [r for r in merged if int(r.get("turn", 0)) == newest]


def add_message_batches(state: list[AnyMessage], writes: Sequence[Any]) -> list[AnyMessage]:
    """``add_messages`` over a batch of writes, oldest first (a ``DeltaChannel`` reducer)."""
    for write in writes:
        state = add_messages(state, write)  # type: ignore[assignment]
    return state


Messages = Annotated[list[AnyMessage], DeltaChannel(add_message_batches)]
"""The conversation, stored as deltas: a checkpoint holds the messages written at its step,
not the whole list again (which made checkpoint storage grow with the square of the turns);
a full snapshot is written every 100 updates and reads replay the writes since."""


class InputState(TypedDict):
    """What a caller sends each turn."""

    messages: Messages
    """The conversation; a turn appends the customer's message and one reply (by the node
    that decides it, ``nodes.messages.end_turn``)."""


class NegotiationState(InputState, total=False):
    """Everything a negotiation session remembers between turns (checkpointed per thread)."""

    user_id: str
    """router, session: the customer, from the run context / config, never from a message."""
    turn: int
    """router, session: turns started in this session."""
    route: Route | None
    """router, per turn: the action the router decided (after grounding)."""
    requested_percent: float | None
    """router, per turn: the percent the customer explicitly asked for."""
    features: dict[str, Any] | None
    """retrieval, session: ``CustomerFeatures`` as plain data (last lookup)."""
    cap: dict[str, Any] | None
    """retrieval, session: ``graph.policy.CapDecision`` as plain data (last lookup)."""
    proposal: Proposal | None
    """pricing, then offer, per turn: the priced offer of this turn."""
    offers: Annotated[list[OfferData], operator.add]
    """offer, session (appended): offers issued in this session."""
    standing_offer: OfferData | None
    """retrieval/offer/accept, session: the customer's live offer (any session)."""
    pricing_rounds: int
    """pricing, session: pricing rounds spent in this session."""
    audit: Annotated[list[AuditRecord], current_turn_records]
    """router/pricing, per turn (appended within the turn): one record per SGR call; the
    whole trail is in the append-only ``audit_log`` table."""
    error: str | None
    """any node, per turn: what went wrong this turn (``None`` when nothing did)."""
    status: TurnStatus | None
    """router/retrieval/pricing/offer/accept, per turn: how this turn ended for the offer."""
