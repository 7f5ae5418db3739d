"""Accept node: the customer takes the standing offer; the ledger records it."""

from __future__ import annotations

import logging
from typing import Any

from langchain_core.messages import AIMessage

from graph.services import Services
from graph.state import NegotiationState
from nodes.shared import pending_reply
from stores.ledger import OfferError

log = logging.getLogger(__name__)


def make_accept(services: Services):
    """The accept node bound to ``services``."""

    def accept(state: NegotiationState) -> dict[str, Any]:
        user = state.get("user_id") or ""
        ledger = services.ledger()
        offer = ledger.standing_offer(user)
        if offer is None:
            last = (state.get("offers") or [None])[-1] or state.get("standing_offer")
            if last:
                check = ledger.validate(last["code"], user)
                if not check.valid:
                    text = (
                        f"Sorry, your {last['discount_percent']:g}% offer is no longer valid "
                        f"({check.reason}). Ask me again and I'll see what I can do."
                    )
                    return {
                        "messages": [AIMessage(content=text)],
                        "standing_offer": None,
                        "status": "expired" if "expired" in check.reason else "invalid",
                    }
            if ledger.user_pending_offer(user) is not None:
                return {"messages": [AIMessage(content=pending_reply(None))]}
            text = "There's no offer to accept yet. Would you like me to look for a discount?"
            return {"messages": [AIMessage(content=text)]}
        if offer.status == "accepted":
            text = (
                f"Your {offer.discount_percent:g}% discount (code {offer.code}) is already applied."
            )
            return {"messages": [AIMessage(content=text)], "status": "accepted"}
        try:
            done = ledger.accept(offer.code, user)
        except OfferError as e:
            log.warning("accept refused for %s: %s", user, e)
            text = f"Sorry, that offer can't be accepted: {e}."
            return {"messages": [AIMessage(content=text)], "error": str(e)}
        data = done.model_dump(mode="json")
        text = (
            f"Done! {done.discount_percent:g}% off is applied to your cart "
            f"({done.amount:.2f} off). Your code is {done.code}."
        )
        return {"messages": [AIMessage(content=text)], "standing_offer": data, "status": "accepted"}

    return accept
