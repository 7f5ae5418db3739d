"""The customer's side of the conversation, as the nodes read it."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import AnyMessage, HumanMessage

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
