"""Pricing node (SGR Cascade): reason step by step, propose a percent; the code decides.

``SGR_PRICING_STRATEGY=schedule`` (default): each round has a bound from the concession
schedule (:func:`graph.policy.round_ceiling`, capped by the customer's ask); the model picks
from that round's 0.5 grid (``nodes.schemas.grid_pricing_model``: enforced while decoding)
and :func:`graph.policy.scheduled_offer` clamps and enforces visible steps anyway. A reply
that cannot be used still prices the round from the schedule, with template words.
``model``: the model may pick anything up to the cap (the behaviour before the schedule).

Pricing writes only its audit record; the proposal goes to the ``offer`` node, which owns
every effect on money.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime
from langgraph.types import Command

from graph.budget import model_budget
from graph.policy import (
    approval_reasons,
    clamp_offer,
    floor_percent,
    round_bound,
    round_ceiling,
    scheduled_offer,
)
from graph.services import Services
from graph.state import NegotiationContext, NegotiationState, Proposal
from nodes.guard import guarded_message
from nodes.identity import run_identity
from nodes.messages import end_turn, last_human_text
from nodes.replies import Replies
from nodes.schemas import PricingDecision, bounded_pricing_model, grid_pricing_model
from nodes.sgr_step import commit, sgr_step
from prompts import render
from stores.models import discount_amount

log = logging.getLogger(__name__)

Route = Literal["offer", "__end__"]


def offers_text(state: NegotiationState) -> str:
    """The offers made so far, as the prompt states them."""
    offers = [f"{o['discount_percent']:g}%" for o in state.get("offers") or []]
    standing = state.get("standing_offer")
    if standing and not offers:
        offers = [f"{standing['discount_percent']:g}% (earlier session)"]
    return ", ".join(offers) or "none"


def pricing_prompt(
    state: NegotiationState, *, high: float, floor: float, round_no: int, max_rounds: int
) -> list[Any]:
    """The customer's facts (internal), the round's range, then the customer's message."""
    f = state["features"] or {}
    ask = state.get("requested_percent")
    system = render(
        "pricing",
        churn=f["churn_probability"],
        ltv=f["lifetime_value"],
        cadence=f["avg_days_between_orders"],
        cart=f["cart_value"],
        margin_pct=100 * f["margin"],
        inventory=f["inventory"],
        high=high,
        floor=floor,
        offers=offers_text(state),
        ask=f"{ask:g}%" if ask is not None else "not stated",
        round=round_no,
        max_rounds=max_rounds,
    )
    return [SystemMessage(content=system), HumanMessage(content=last_human_text(state["messages"]))]


def make_pricing(services: Services):
    """The pricing node bound to ``services``."""
    replies = Replies.of(services.settings)  # read the templates once, off the event loop
    s = services.settings

    async def pricing(
        state: NegotiationState, runtime: Runtime[NegotiationContext], config: RunnableConfig
    ) -> Command[Route]:
        f, cap = state["features"] or {}, state["cap"] or {}
        cap_pct = float(cap["cap_percent"])
        standing = state.get("standing_offer")
        floor = floor_percent(standing)
        rounds = state.get("pricing_rounds", 0)
        turn = state.get("turn", 0)

        if rounds >= s.max_rounds:
            return end_turn(replies.final(standing), status="final")
        if cap_pct <= floor:
            return end_turn(replies.hold(standing), pricing_rounds=rounds + 1)

        ask = state.get("requested_percent")
        round_no = rounds + 1
        last = round_no >= s.max_rounds
        schedule = s.pricing_strategy == "schedule"
        if schedule:
            ceiling = round_ceiling(
                round_no, s.max_rounds, cap_pct, open_share=s.open_share, curve=s.concession_curve
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
            return end_turn(replies.hold(standing), pricing_rounds=round_no)

        model: type[PricingDecision] = (
            grid_pricing_model(low, high) if schedule else bounded_pricing_model(high, low)
        )
        who = run_identity(runtime, config)
        step = await sgr_step(
            services,
            who,
            model,
            pricing_prompt(
                state, high=high, floor=floor, round_no=round_no, max_rounds=s.max_rounds
            ),
            node="pricing",
            turn=turn,
            policy=policy,
            max_tokens=model_budget(model, s.llm_max_tokens),
            defer_record=True,
        )
        decision = step.decision
        if decision is None and not schedule:
            return end_turn(
                replies.say("fallback"), error=step.error, status="fallback", audit=step.audit
            )

        model_pct = float(decision.discount_percent) if decision else None
        if schedule:
            final = scheduled_offer(model_pct, floor, high, s.min_step)
        else:
            assert model_pct is not None
            final = clamp_offer(model_pct, floor, cap_pct)
        amount = discount_amount(f["cart_value"], final)
        policy |= {
            "model_percent": model_pct,
            "final_percent": final,
            "clamped": final != model_pct,
            "template": decision is None,
            "best_and_final": schedule and last,
        }
        rec = await commit(services, who, step, node="pricing", turn=turn, policy=policy)
        base: dict[str, Any] = {"pricing_rounds": round_no, "audit": [rec]}
        if final <= floor:
            return end_turn(replies.hold(standing), **base)
        words = (
            guarded_message(
                decision.customer_message,
                final,
                last_human_text(state["messages"]),
                shop_language=s.shop_language,
            )
            if decision
            else None
        )
        words = words or replies.say("offer_intro")
        if schedule and last:
            words = f"{words} {replies.say('best_and_final')}"
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
        return Command(goto="offer", update={**base, "proposal": proposal})

    return pricing
