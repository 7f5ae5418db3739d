"""Retrieval node: the session's customer from the hot and cold stores, and the policy cap.

The customer id comes from the state (set from the run context by the router), never from
message text or model output.
"""

from __future__ import annotations

import logging
from typing import Any

from graph.policy import compute_cap
from graph.services import Services
from graph.state import NegotiationState
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
        standing = services.ledger().standing_offer(user_id)
        return {
            "features": result.model_dump(mode="json"),
            "cap": cap.model_dump(mode="json"),
            "standing_offer": standing.model_dump(mode="json") if standing else None,
        }

    return retrieval


def route_after_retrieval(state: NegotiationState) -> str:
    """Conditional edge: priced only when the customer was found."""
    return "pricing" if state.get("features") and not state.get("error") else "respond"
