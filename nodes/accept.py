"""Accept node: the customer takes the standing offer; the ledger records it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from langgraph.types import Command

from graph.services import Services
from graph.state import NegotiationState
from nodes.messages import end_turn
from nodes.replies import Replies, amount_text, percent_text
from stores.ledger import OfferError

log = logging.getLogger(__name__)

Route = Literal["__end__"]


def make_accept(services: Services):
    """The accept node bound to ``services``."""
    replies = Replies.of(services.settings)  # read the templates once, off the event loop

    def accept_now(state: NegotiationState) -> dict[str, Any]:
        """The ledger's side of an acceptance (blocking: run in a worker thread): the reply
        and the state update."""
        user = state.get("user_id") or ""
        ledger = services.ledger()
        offer = ledger.standing_offer(user)
        if offer is None:
            last = (state.get("offers") or [None])[-1] or state.get("standing_offer")
            if last:
                check = ledger.validate(last["code"], user)
                if not check.valid:
                    reply = replies.say(
                        "offer_invalid",
                        percent=percent_text(last["discount_percent"]),
                        reason=check.reason,
                    )
                    status = "expired" if "expired" in check.reason else "invalid"
                    return {"reply": reply, "standing_offer": None, "status": status}
            if ledger.user_pending_offer(user) is not None:
                return {"reply": replies.pending(None)}
            return {"reply": replies.say("nothing_to_accept")}
        if offer.status == "accepted":
            reply = replies.say(
                "already_applied", percent=percent_text(offer.discount_percent), code=offer.code
            )
            return {"reply": reply, "status": "accepted"}
        try:
            done = ledger.accept(offer.code, user)
        except OfferError as e:
            log.warning("accept refused for %s: %s", user, e)
            return {"reply": replies.say("cannot_accept"), "error": str(e)}
        reply = replies.say(
            "accepted",
            percent=percent_text(done.discount_percent),
            amount=amount_text(done.amount),
            code=done.code,
        )
        return {
            "reply": reply,
            "standing_offer": done.model_dump(mode="json"),
            "status": "accepted",
        }

    async def accept(state: NegotiationState) -> Command[Route]:
        update = await asyncio.to_thread(accept_now, state)
        return end_turn(update.pop("reply"), **update)

    return accept
