"""Respond node: send the reply prepared this turn (router answer, error or fallback)."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage

from graph.state import NegotiationState
from nodes.shared import FALLBACK_REPLY


def respond(state: NegotiationState) -> dict[str, Any]:
    """Append the turn's reply as the assistant message."""
    return {"messages": [AIMessage(content=state.get("reply") or FALLBACK_REPLY)]}
