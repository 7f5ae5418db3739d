"""Pricing node (SGR Cascade pattern): reason step by step, propose a percent; code decides.

The schema sent for a customer carries ``maximum: <cap>`` so the server enforces the bound
while decoding; :func:`graph.policy.clamp_offer` clamps anyway. Nothing is written here: the
priced proposal goes to the ``offer`` node, which owns every side effect.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, ConfigDict, Field, create_model

from graph.policy import approval_reasons, clamp_offer
from graph.services import Services
from graph.state import NegotiationState, Proposal
from nodes.shared import (
    floor_percent,
    hold_reply,
    last_human_text,
    safe_customer_message,
    sgr_step,
)
from prompts import render
from stores.models import discount_amount

log = logging.getLogger(__name__)


class PricingDecision(BaseModel):
    """The cascade, in the order the model must think."""

    model_config = ConfigDict(extra="forbid")

    churn_analysis: str = Field(..., max_length=120, description="how likely to leave, why")
    financial_analysis: str = Field(..., max_length=120, description="value of this customer")
    margin_math: str = Field(..., max_length=120, description="what the margin allows")
    negotiation_position: str = Field(
        ..., max_length=120, description="offers made so far and the customer's ask"
    )
    discount_percent: float = Field(..., ge=0, le=100)
    customer_message: str = Field(..., min_length=1, max_length=300)


@lru_cache(maxsize=512)  # caps sit on a 0.5 grid: a few hundred classes at most
def bounded_pricing_model(cap_percent: float) -> type[PricingDecision]:
    """``PricingDecision`` whose ``discount_percent`` is bounded by this customer's cap."""
    return create_model(
        "PricingDecision",
        __base__=PricingDecision,
        discount_percent=(float, Field(..., ge=0, le=cap_percent)),
    )


def _offers_text(state: NegotiationState) -> str:
    offers = [f"{o['discount_percent']:g}%" for o in state.get("offers") or []]
    standing = state.get("standing_offer")
    if standing and not offers:
        offers = [f"{standing['discount_percent']:g}% (earlier session)"]
    return ", ".join(offers) or "none"


def make_pricing(services: Services):
    """The pricing node bound to ``services``."""
    s = services.settings

    def pricing(state: NegotiationState) -> dict[str, Any]:
        f, cap = state["features"] or {}, state["cap"] or {}
        cap_pct = float(cap["cap_percent"])
        standing = state.get("standing_offer")
        floor = floor_percent(standing)
        rounds = state.get("pricing_rounds", 0)
        turn = state.get("turn", 0)

        if rounds >= s.max_rounds:
            reply = (
                f"My offer of {floor:g}% with code {standing['code']} is final."
                if standing
                else "I'm not able to offer a discount on this order."
            )
            return {"reply": reply, "route": "respond", "status": "final"}
        if cap_pct <= floor:
            return {"reply": hold_reply(standing), "pricing_rounds": rounds + 1}

        model = bounded_pricing_model(cap_pct)
        ask = state.get("requested_percent")
        prompt = [
            SystemMessage(
                content=render(
                    "pricing",
                    churn=f["churn_probability"],
                    ltv=f["lifetime_value"],
                    cadence=f["avg_days_between_orders"],
                    cart=f["cart_value"],
                    margin_pct=100 * f["margin"],
                    inventory=f["inventory"],
                    cap=cap_pct,
                    floor=floor,
                    offers=_offers_text(state),
                    ask=f"{ask:g}%" if ask is not None else "not stated",
                    round=rounds + 1,
                    max_rounds=s.max_rounds,
                )
            ),
            HumanMessage(content=last_human_text(state["messages"])),
        ]
        step = sgr_step(
            services,
            model,
            prompt,
            node="pricing",
            turn=turn,
            policy={"cap_percent": cap_pct},
            defer_record=True,
        )
        decision = step.decision
        if decision is None:
            return step.fallback()

        final = clamp_offer(decision.discount_percent, floor, cap_pct)
        amount = discount_amount(f["cart_value"], final)
        policy = {
            "cap_percent": cap_pct,
            "cap": cap,
            "model_percent": decision.discount_percent,
            "standing_percent": floor,
            "final_percent": final,
            "clamped": final != decision.discount_percent,
        }
        rec = step.commit(services, policy=policy)
        base: dict[str, Any] = {"pricing_rounds": rounds + 1, "audit": [rec]}
        if final <= floor:
            return {**base, "reply": hold_reply(standing)}
        proposal: Proposal = {
            "discount_percent": final,
            "cap_percent": cap_pct,
            "cart_value": f["cart_value"],
            "amount": amount,
            "message": safe_customer_message(decision.customer_message, final),
            "reasoning": decision.model_dump(exclude={"customer_message"}),
            "approval_reasons": approval_reasons(final, amount, s),
        }
        return {**base, "proposal": proposal}

    return pricing


def route_after_pricing(state: NegotiationState) -> str:
    """Conditional edge: a proposal is issued by the offer node; anything else is a reply."""
    return "offer" if state.get("proposal") else "respond"
