"""What several nodes share: reply templates, the customer's text, the floor, the SGR step.

Nodes never import one another; anything two of them need lives here.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from langchain_core.messages import AnyMessage, BaseMessage, HumanMessage
from pydantic import BaseModel

from graph.services import Services
from graph.sgr_client import LLMUnavailableError, StructuredOutputError
from graph.state import AuditRecord, OfferData

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

FALLBACK_REPLY = (
    "Sorry, I couldn't process that just now. Your current offer, if any, is unchanged; "
    "please try again in a moment."
)


def last_human_text(messages: Sequence[AnyMessage]) -> str:
    """The text of the newest customer message ('' if none)."""
    for m in reversed(messages):
        if isinstance(m, HumanMessage):
            return m.content if isinstance(m.content, str) else str(m.content)
    return ""


def floor_percent(standing: OfferData | None) -> float:
    """The least a new offer may give: the customer's standing offer (0 without one)."""
    return float(standing["discount_percent"]) if standing else 0.0


def hold_reply(standing: OfferData | None) -> str:
    """The reply when no better offer can be made: the standing one holds, or none at all."""
    if standing:
        pct = float(standing["discount_percent"])
        return f"I can't go beyond {pct:g}%; your code {standing['code']} still stands."
    return "I'm sorry, I can't offer a discount on this cart right now."


_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def safe_customer_message(message: str, percent: float) -> str:
    """The model's message if it states no number but the final percent, else a template.

    Keeps internal figures (margin, churn, cap) and wrong percents out of the reply.
    """
    allowed = {f"{percent:g}", f"{percent:.1f}", f"{percent:.0f}"}
    if all(n.replace(",", ".") in allowed for n in _NUMBER.findall(message)):
        return message.strip()
    return "Thanks for shopping with us. Here is what I can do for you."


@dataclass
class SGRStep(Generic[M]):
    """The outcome of one SGR call inside a node: a decision, or what to fall back to."""

    decision: M | None
    record: AuditRecord | None
    error: str | None = None
    audit: list[AuditRecord] = field(default_factory=list)

    def fallback(self) -> dict[str, Any]:
        """The state update of a turn that could not get a valid decision."""
        return {"reply": FALLBACK_REPLY, "error": self.error, "audit": self.audit}


def sgr_step(
    services: Services,
    model: type[M],
    prompt: list[BaseMessage],
    *,
    node: str,
    turn: int,
    schema: dict[str, Any] | None = None,
    policy: dict[str, Any] | None = None,
    max_tokens: int | None = None,
) -> SGRStep[M]:
    """Call the structured LLM; a typed failure becomes a fallback, never an exception."""
    extra: dict[str, Any] = {"turn": turn}
    if policy is not None:
        extra["policy"] = policy
    try:
        decision, call = services.llm().call(
            model, prompt, node=node, schema=schema, max_tokens=max_tokens
        )
    except StructuredOutputError as e:
        log.warning("%s fell back: %s", node, e)
        rec: AuditRecord = {**e.call.as_dict(), **extra}  # type: ignore[typeddict-item]
        return SGRStep(None, rec, str(e), [rec])
    except LLMUnavailableError as e:
        log.error("%s: %s", node, e)
        return SGRStep(None, None, str(e))
    rec = {**call.as_dict(), **extra}  # type: ignore[typeddict-item]
    return SGRStep(decision, rec, None, [rec])
