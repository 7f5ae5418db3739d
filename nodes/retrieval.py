"""Retrieval node: the session's customer from the hot and cold stores, and the policy cap.

The customer id comes from the state (pinned from the run context by the router), never from
message text or model output. A customer who already accepted a redeemable code, or whose
proposal waits for a manager, is answered here without pricing (the ledger would refuse a new
offer anyway, see ``stores.ledger``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal, cast

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from graph.policy import compute_cap
from graph.services import Services
from graph.state import NegotiationState, OfferData
from nodes.messages import end_turn
from nodes.replies import Replies
from stores.models import CustomerFeatures, UnknownUser

log = logging.getLogger(__name__)

Route = Literal["pricing", "__end__"]


def make_retrieval(services: Services):
    """The retrieval node bound to ``services``."""
    replies = Replies.of(services.settings)  # read the templates once, off the event loop

    def lookup(user_id: str, session: str, turn: int) -> dict[str, Any]:
        """Everything retrieval reads, in one worker thread (the stores are blocking)."""
        found = services.features().lookup(user_id)
        if isinstance(found, UnknownUser):
            return {"unknown": found}
        ledger = services.ledger()
        standing = ledger.standing_offer(user_id)
        pending = ledger.user_pending_offer(user_id)
        if pending is not None and pending.session_id == session and pending.turn < turn:
            # A new turn of this thread dropped the interrupt that asked for this decision:
            # nobody can approve it any more, so it lapses instead of blocking the customer.
            ledger.withdraw(pending.code)
            pending = None
        return {"features": found, "standing": standing, "pending": pending}

    async def retrieval(state: NegotiationState, config: RunnableConfig) -> Command[Route]:
        user_id = state.get("user_id") or ""
        session = str((config.get("configurable") or {}).get("thread_id") or "")
        got = await asyncio.to_thread(lookup, user_id, session, state.get("turn", 0))
        if "unknown" in got:
            reason = got["unknown"].reason
            log.warning("unknown customer %s: %s", user_id, reason)
            return end_turn(
                replies.say("unknown_customer"),
                features=None,
                cap=None,
                error=f"unknown user {user_id}: {reason}",
            )
        features: CustomerFeatures = got["features"]
        standing = got["standing"]
        data = cast(OfferData, standing.model_dump(mode="json")) if standing else None
        update: dict[str, Any] = {
            "features": features.model_dump(mode="json"),
            "cap": compute_cap(features, services.settings).model_dump(mode="json"),
            "standing_offer": data,
        }
        if data is not None and data["status"] == "accepted":
            reply = replies.accepted_stands(data)
            return end_turn(reply, **update, status="accepted")
        if got["pending"] is not None:
            return end_turn(replies.pending(data), **update)
        return Command(goto="pricing", update=update)

    return retrieval
