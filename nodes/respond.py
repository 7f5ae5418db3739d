"""Respond node: every turn ends here, sending the reply its nodes prepared.

One output convention: router, retrieval, pricing, offer and accept write ``reply`` (and
route here); only this node appends to ``messages``.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage

from graph.services import Services
from graph.state import NegotiationState
from nodes.replies import Replies


def make_respond(services: Services):
    """The respond node bound to ``services`` (for the shop's fallback words)."""

    fallback = Replies.of(services.settings).say("fallback")

    async def respond(state: NegotiationState) -> dict[str, Any]:
        reply = state.get("reply") or fallback
        return {"messages": [AIMessage(content=reply)]}

    return respond
