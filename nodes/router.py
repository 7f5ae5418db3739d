"""Router node (SGR Routing pattern): analyse the message, then pick one action."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime
from langgraph.types import Overwrite
from pydantic import BaseModel, ConfigDict, Field

from graph.services import Services
from graph.state import NegotiationContext, NegotiationState
from graph.validation import message_problem
from nodes.shared import closed_reply, last_human_text, safe_reply, sgr_step
from prompts import render

log = logging.getLogger(__name__)


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Negotiate(_Action):
    """Discount, deal, promo code, price match, counter-offer, threat to leave."""

    action: Literal["negotiate"]
    requested_percent: float | None = Field(
        ..., ge=0, le=100, description="percent the customer explicitly asks for, else null"
    )


class AcceptOffer(_Action):
    """The customer accepts the offer on the table."""

    action: Literal["accept_offer"]


class Respond(_Action):
    """Anything else: answer directly."""

    action: Literal["respond"]
    reply: str = Field(..., min_length=1, max_length=300)


class RouterDecision(BaseModel):
    """Think first (short), then act. The tag of each action is required and comes first."""

    model_config = ConfigDict(extra="forbid")

    analysis: str = Field(..., max_length=160, description="what the customer wants, briefly")
    decision: Annotated[Negotiate | AcceptOffer | Respond, Field(discriminator="action")]


def session_user(state: NegotiationState, runtime: Runtime, config: RunnableConfig) -> str:
    """The customer of this run: the run context first, then ``configurable.user_id``."""
    ctx = runtime.context
    user = ctx.user_id if isinstance(ctx, NegotiationContext) else ""
    if not user and isinstance(ctx, dict):
        user = str(ctx.get("user_id") or "")
    if not user:
        user = str((config.get("configurable") or {}).get("user_id") or "")
    return user.strip()


def _offer_line(state: NegotiationState) -> str:
    offer = state.get("standing_offer")
    if offer:
        return f"An offer of {offer['discount_percent']:g}% is on the table for this customer."
    return "No offer has been made to this customer yet."


def make_router(services: Services):
    """The router node bound to ``services``."""

    def router(
        state: NegotiationState, runtime: Runtime[NegotiationContext], config: RunnableConfig
    ) -> dict[str, Any]:
        turn = state.get("turn", 0) + 1
        reset: dict[str, Any] = {
            "turn": turn,
            "route": "respond",
            "reply": None,
            "error": None,
            "status": None,
            "proposal": None,
            "requested_percent": None,
            "audit": Overwrite([]),  # the checkpoint keeps this turn's records only
        }
        user = session_user(state, runtime, config)
        known = state.get("user_id")
        if not user:
            err = "no customer identity in this session (set context.user_id)"
            return {**reset, "reply": "I can't see who you are; please sign in.", "error": err}
        if known and known != user:
            err = f"session belongs to {known}; refusing to continue it as {user}"
            return {**reset, "reply": "This conversation belongs to another account.", "error": err}
        reset["user_id"] = user
        if turn > services.settings.max_turns:  # bounded growth: no LLM call, a clear reply
            limit = services.settings.max_turns
            return {**reset, "reply": closed_reply(limit), "status": "closed"}

        text = last_human_text(state["messages"])
        problem = message_problem(text, services.settings.max_message_chars)
        if problem:
            return {
                **reset,
                "reply": f"Sorry, {problem}. Please write your question.",
                "error": problem,
            }

        # The standing offer is the only context the router gets: earlier replies carry codes
        # and dates that sent the small model into loops.
        prompt = [
            SystemMessage(content=render("router", offer_line=_offer_line(state))),
            HumanMessage(content=render("router_turn", message=text)),
        ]
        step = sgr_step(services, RouterDecision, prompt, node="router", turn=turn)
        if step.decision is None:
            return {**reset, **step.fallback()}

        action = step.decision.decision
        update = {**reset, "route": action.action, "audit": step.audit}
        if isinstance(action, Respond):
            update["reply"] = safe_reply(action.reply)  # the guard: no codes, promises, figures
        elif isinstance(action, Negotiate):
            update["requested_percent"] = action.requested_percent
        return update

    return router


def route_after_router(state: NegotiationState) -> str:
    """Conditional edge: negotiate -> retrieval, accept_offer -> accept, else respond."""
    if state.get("error"):
        return "respond"
    return {"negotiate": "retrieval", "accept_offer": "accept"}.get(
        state.get("route") or "", "respond"
    )
