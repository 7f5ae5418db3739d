"""The conversation as the nodes read it, and the one way a node ends a turn."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.graph import END
from langgraph.types import Command

from graph.validation import strip_controls


def last_human_text(messages: Sequence[AnyMessage]) -> str:
    """The text of the newest customer message ('' if none)."""
    for m in reversed(messages):
        if isinstance(m, HumanMessage):
            return m.content if isinstance(m.content, str) else str(m.content)
    return ""


def cleaned_human_message(messages: Sequence[AnyMessage]) -> HumanMessage | None:
    """The newest customer message without control characters, same id; ``None`` if clean.

    Runs that bypass the session runner (Studio, the SDK) store the message as sent.
    """
    for m in reversed(messages):
        if isinstance(m, HumanMessage):
            text = m.content if isinstance(m.content, str) else str(m.content)
            clean = strip_controls(text)
            return None if clean == text else HumanMessage(content=clean.strip(), id=m.id)
    return None


def end_turn(reply: str, **update: Any) -> Command[Literal["__end__"]]:
    """End the turn with ``reply``: the one assistant message a turn adds (after any message
    in ``update``, e.g. the customer's cleaned one), with the rest of the state ``update``.

    The one output convention: the node that decides the answer ends the turn with it.
    """
    messages = [*update.pop("messages", []), AIMessage(content=reply)]
    return Command(goto=END, update={**update, "messages": messages})
