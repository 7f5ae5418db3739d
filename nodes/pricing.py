"""Pricing node (SGR Cascade pattern): reason step by step, propose a percent; code decides.

``SGR_PRICING_STRATEGY=schedule`` (default): each round has a bound from the concession
schedule (:func:`graph.policy.round_ceiling`, capped by the customer's ask); the schema sent
carries ``minimum: <floor>`` and ``maximum: <bound>`` so the server enforces the round while
decoding, and :func:`graph.policy.scheduled_offer` clamps and enforces visible steps anyway.
A reply that cannot be used still prices the round from the schedule, with template words.
``model``: the model may pick anything up to the cap (the behaviour before the schedule).
Nothing is written here: the proposal goes to the ``offer`` node, which owns every side effect.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, ConfigDict, Field, create_model

from graph.budget import call_budget
from graph.policy import (
    approval_reasons,
    clamp_offer,
    round_bound,
    round_ceiling,
    scheduled_offer,
)
from graph.services import Services
from graph.sgr_client import json_schema_of
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

    # a short clause each: a 135M model fills every string to its bound (graph/budget.py)
    churn_analysis: str = Field(..., max_length=60, description="how likely to leave, why")
    financial_analysis: str = Field(..., max_length=60, description="value of this customer")
    margin_math: str = Field(..., max_length=60, description="what the margin allows")
    negotiation_position: str = Field(
        ..., max_length=60, description="offers made so far and the customer's ask"
    )
    discount_percent: float = Field(..., ge=0, le=100)
    customer_message: str = Field(..., min_length=1, max_length=200)


@lru_cache(maxsize=1024)  # bounds sit on a 0.5 grid: a bounded number of classes
def bounded_pricing_model(high: float, low: float = 0.0) -> type[PricingDecision]:
    """``PricingDecision`` whose ``discount_percent`` lies in ``[low, high]`` (cached)."""
    return create_model(
        "PricingDecision",
        __base__=PricingDecision,
        discount_percent=(float, Field(..., ge=low, le=high)),
    )


def grid_schema(schema: dict[str, Any], low: float, high: float) -> dict[str, Any]:
    """``schema`` with ``discount_percent`` one of the 0.5-grid values in ``[low, high]``.

    A JSON number may run on ("1.0000000…") until ``max_tokens``; an enum is short and on the
    grid. The code still validates against the open ``ge``/``le`` model and clamps.
    """
    out = json.loads(json.dumps(schema))
    steps = round((high - low) * 2)
    values = [low + i / 2 for i in range(steps + 1)]
    out["properties"]["discount_percent"]["enum"] = [int(v) if v == int(v) else v for v in values]
    return out


SCHEDULE_MESSAGE = "Thanks for your patience. Here is what I can do for you."
FINAL_NOTE = "This is my best and final offer."


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

        ask = state.get("requested_percent")
        round_no = rounds + 1
        last = round_no >= s.max_rounds
        schedule = s.pricing_strategy == "schedule"
        if schedule:
            ceiling = round_ceiling(
                round_no,
                s.max_rounds,
                cap_pct,
                open_share=s.open_share,
                curve=s.concession_curve,
            )
            high = round_bound(ceiling, ask, standing=floor, last_round=last)
            low = floor
        else:
            ceiling, high, low = cap_pct, cap_pct, 0.0
        policy: dict[str, Any] = {
            "strategy": s.pricing_strategy,
            "cap_percent": cap_pct,
            "cap": cap,
            "round": round_no,
            "round_ceiling": ceiling,
            "round_bound": high,
            "standing_percent": floor,
        }
        if schedule and scheduled_offer(None, floor, high, s.min_step) <= floor:
            return {"pricing_rounds": round_no, "reply": hold_reply(standing)}

        model = bounded_pricing_model(high, low)
        schema = json_schema_of(model)
        if schedule:
            schema = grid_schema(schema, low, high)
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
                    high=high,
                    floor=floor,
                    offers=_offers_text(state),
                    ask=f"{ask:g}%" if ask is not None else "not stated",
                    round=round_no,
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
            schema=schema,
            policy=policy,
            max_tokens=call_budget(schema, s.llm_max_tokens),
            defer_record=True,
        )
        decision = step.decision
        if decision is None and not schedule:
            return step.fallback()

        if schedule:
            model_pct = decision.discount_percent if decision else None
            final = scheduled_offer(model_pct, floor, high, s.min_step)
        else:
            model_pct = decision.discount_percent  # type: ignore[union-attr]
            final = clamp_offer(model_pct, floor, cap_pct)
        amount = discount_amount(f["cart_value"], final)
        policy |= {
            "model_percent": model_pct,
            "final_percent": final,
            "clamped": final != model_pct,
            "template": decision is None,
            "best_and_final": schedule and last,
        }
        audit = [step.commit(services, policy=policy)] if step.record else []
        base: dict[str, Any] = {"pricing_rounds": round_no, "audit": audit}
        if final <= floor:
            return {**base, "reply": hold_reply(standing)}
        words = (
            safe_customer_message(decision.customer_message, final)
            if decision
            else SCHEDULE_MESSAGE
        )
        if schedule and last:
            words = f"{words} {FINAL_NOTE}"
        proposal: Proposal = {
            "discount_percent": final,
            "cap_percent": cap_pct,
            "cart_value": f["cart_value"],
            "amount": amount,
            "message": words,
            "reasoning": (
                decision.model_dump(exclude={"customer_message"})
                if decision
                else {"schedule": f"round {round_no} of {s.max_rounds}, bound {high:g}%"}
            ),
            "approval_reasons": approval_reasons(final, amount, s),
        }
        return {**base, "proposal": proposal}

    return pricing


def route_after_pricing(state: NegotiationState) -> str:
    """Conditional edge: a proposal is issued by the offer node; anything else is a reply."""
    return "offer" if state.get("proposal") else "respond"
