"""Offer node: issue the priced proposal as a ledger record, pausing for approval if needed.

This node re-runs from its first line when an interrupt is resumed, so everything before
``interrupt()`` is idempotent (the ledger write is an upsert keyed by session and turn), and
the decision's effects come after it.
"""

from __future__ import annotations

import logging
from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import interrupt

from graph.approval import parse_decision
from graph.policy import max_unapproved_percent
from graph.services import Services
from graph.state import ApprovalRequest, NegotiationState, OfferData
from nodes.shared import floor_percent, hold_reply

log = logging.getLogger(__name__)


def offer_reply(message: str, offer: OfferData) -> str:
    """The customer-facing text: the model's words plus the code's authoritative terms."""
    expires = str(offer["expires_at"])[:16].replace("T", " ")
    terms = (
        f"Your offer: {offer['discount_percent']:g}% off ({offer['amount']:.2f} off your cart), "
        f"code {offer['code']}, valid until {expires} UTC."
    )
    return f"{message}\n\n{terms}" if message else terms


def make_offer(services: Services):
    """The offer node bound to ``services``."""
    s = services.settings

    def offer(state: NegotiationState, config: RunnableConfig) -> dict[str, Any]:
        p = dict(state["proposal"] or {})
        ledger = services.ledger()
        session = str(config["configurable"]["thread_id"])
        user, turn = state["user_id"], state.get("turn", 0)
        standing = state.get("standing_offer")
        floor = floor_percent(standing)
        write = {
            "session_id": session,
            "turn": turn,
            "user_id": user,
            "cap_percent": p["cap_percent"],
            "cart_value": p["cart_value"],
            "ttl_hours": s.offer_ttl_hours,
        }
        if not p["approval_reasons"]:
            record = ledger.propose(
                **write, discount_percent=p["discount_percent"], status="proposed"
            )
        else:
            pending = ledger.propose(
                **write, discount_percent=p["discount_percent"], status="approval_pending"
            )
            no_approval = max(max_unapproved_percent(p["cart_value"], p["cap_percent"], s), floor)
            request: ApprovalRequest = {
                "type": "approval",
                "session": session,
                "user_id": user,
                "code": pending.code,
                "cart_value": p["cart_value"],
                "cap_percent": p["cap_percent"],
                "proposed_percent": p["discount_percent"],
                "amount": p["amount"],
                "reasons": p["approval_reasons"],
                "reasoning": p["reasoning"],
                "no_approval_percent": no_approval,
            }
            value = interrupt(request)
            # Effects of the decision only from here on (the lines above re-run on resume).
            choice = parse_decision(value, p["discount_percent"])
            approved, percent, approver = choice.approved, choice.percent, choice.approver
            still_open = ledger.pending_offer(session)  # expires lazily first
            if still_open is None or still_open.code != pending.code:
                # expired (or otherwise closed) while it waited: nothing to decide any more
                closed = ledger.get(pending.code)
                status = closed.status if closed else "unknown"
                text = f"That proposal is no longer open ({status}). Ask me again for a new offer."
                return {"messages": [AIMessage(content=text)], "status": status}
            if approved:
                p["approval"] = f"approved by {approver}"
                record = ledger.decide(
                    pending.code,
                    approved=True,
                    decided_by=approver,
                    discount_percent=max(percent, floor) if percent is not None else None,
                )
            else:
                p["approval"] = f"rejected by {approver}"
                ledger.decide(pending.code, approved=False, decided_by=approver)
                if no_approval <= floor:
                    reply = hold_reply(standing)
                    return {"messages": [AIMessage(content=reply)], "status": "rejected"}
                record = ledger.propose(
                    **write, slot="fallback", discount_percent=no_approval, status="proposed"
                )
        data: OfferData = record.model_dump(mode="json")  # type: ignore[assignment]
        return {
            "messages": [AIMessage(content=offer_reply(p["message"], data))],
            "offers": [data],
            "standing_offer": data,
            "status": record.status,
            "proposal": {**p, "discount_percent": record.discount_percent, "code": record.code},
        }

    return offer
