"""Retrieval node: the session's customer from the hot and cold stores, and the policy cap.

The customer id comes from the state (set from the run context by the router), never from
message text or model output. A customer who already accepted a redeemable code, or whose
proposal waits for a manager, is answered here without pricing (the ledger would refuse a new
offer anyway, see ``stores.ledger``).
"""

from __future__ import annotations

import logging
from typing import Any, cast

from langchain_core.runnables import RunnableConfig

from graph.policy import compute_cap
from graph.services import Services
from graph.state import NegotiationState, OfferData
from nodes.shared import accepted_reply, pending_reply
from stores.models import UnknownUser

log = logging.getLogger(__name__)


def make_retrieval(services: Services):
    """The retrieval node bound to ``services``."""

    def retrieval(state: NegotiationState, config: RunnableConfig) -> dict[str, Any]:
        user_id = state.get("user_id") or ""
        session = str((config.get("configurable") or {}).get("thread_id") or "")
        turn = state.get("turn", 0)
        result = services.features().lookup(user_id)
        if isinstance(result, UnknownUser):
            log.warning("unknown customer %s: %s", user_id, result.reason)
            return {
                "route": "respond",
                "features": None,
                "cap": None,
                "error": f"unknown user {user_id}: {result.reason}",
                "reply": "I couldn't find your account, so I can't look at discounts right now.",
            }
        cap = compute_cap(result, services.settings)
        ledger = services.ledger()
        standing = ledger.standing_offer(user_id)
        data = cast(OfferData, standing.model_dump(mode="json")) if standing else None
        update: dict[str, Any] = {
            "features": result.model_dump(mode="json"),
            "cap": cap.model_dump(mode="json"),
            "standing_offer": data,
        }
        if data is not None and data["status"] == "accepted":
            return {
                **update,
                "route": "respond",
                "status": "accepted",
                "reply": accepted_reply(data),
            }
        pending = ledger.user_pending_offer(user_id)
        if pending is not None and pending.session_id == session and pending.turn < turn:
            # A new turn of this thread dropped the interrupt that asked for this decision:
            # nobody can approve it any more, so it lapses instead of blocking the customer.
            ledger.withdraw(pending.code)
            pending = None
        if pending is not None:
            return {**update, "route": "respond", "reply": pending_reply(data)}
        return update

    return retrieval


def route_after_retrieval(state: NegotiationState) -> str:
    """Conditional edge: priced only when the customer was found and nothing was answered."""
    ready = state.get("features") and not state.get("error") and not state.get("reply")
    return "pricing" if ready else "respond"
