"""Retrieval node: the session's customer from the hot and cold stores, and the policy cap.

The customer id comes from the state (set from the run context by the router), never from
message text or model output. A customer who already accepted a redeemable code, or whose
proposal waits for a manager, is answered here without pricing (the ledger would refuse a new
offer anyway, see ``stores.ledger``).
"""

from __future__ import annotations

import logging
from typing import Any

from graph.policy import compute_cap
from graph.services import Services
from graph.state import NegotiationState
from nodes.shared import accepted_reply, pending_reply
from stores.models import UnknownUser

log = logging.getLogger(__name__)


def make_retrieval(services: Services):
    """The retrieval node bound to ``services``."""

    def retrieval(state: NegotiationState) -> dict[str, Any]:
        user_id = state.get("user_id") or ""
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
        data = standing.model_dump(mode="json") if standing else None
        update: dict[str, Any] = {
            "features": result.model_dump(mode="json"),
            "cap": cap.model_dump(mode="json"),
            "standing_offer": data,
        }
        if standing is not None and standing.status == "accepted":
            return {
                **update,
                "route": "respond",
                "status": "accepted",
                "reply": accepted_reply(data),
            }  # type: ignore[arg-type]
        if ledger.user_pending_offer(user_id) is not None:
            return {**update, "route": "respond", "reply": pending_reply(data)}  # type: ignore[arg-type]
        return update

    return retrieval


def route_after_retrieval(state: NegotiationState) -> str:
    """Conditional edge: priced only when the customer was found and nothing was answered."""
    ready = state.get("features") and not state.get("error") and not state.get("reply")
    return "pricing" if ready else "respond"
