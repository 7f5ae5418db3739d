"""Typed graph state. The input is narrower than the state: a turn is just new messages."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

Route = Literal["negotiate", "accept_offer", "respond"]


@dataclass
class NegotiationContext:
    """Run-scoped context: who the customer is. Set by the session, never by the model."""

    user_id: str = ""


class InputState(TypedDict):
    """What a caller sends each turn."""

    messages: Annotated[list[AnyMessage], add_messages]


class NegotiationState(InputState, total=False):
    """Everything a negotiation session remembers between turns (checkpointed per thread)."""

    user_id: str  # from the run context / config, never from a message
    turn: int  # turns started in this session
    route: Route | None
    reply: str | None  # text the respond node will send
    requested_percent: float | None  # the customer's explicit ask this turn
    features: dict[str, Any] | None  # CustomerFeatures as plain data
    cap: dict[str, Any] | None  # CapDecision as plain data
    proposal: dict[str, Any] | None  # priced, not yet issued offer of this turn
    offers: Annotated[list[dict[str, Any]], operator.add]  # offers made in this session
    standing_offer: dict[str, Any] | None  # the customer's live offer (any session)
    pricing_rounds: int
    audit: Annotated[list[dict[str, Any]], operator.add]  # one record per SGR call
    error: str | None  # what went wrong this turn (None when nothing did)
    status: str | None  # offer status of this turn: proposed, approval_pending, accepted...
