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


def closed_reply(max_turns: int) -> str:
    """The reply of a session that reached ``SGR_MAX_TURNS``."""
    return (
        f"This conversation has reached its limit of {max_turns} messages. "
        "Please start a new conversation; any offer you hold is unchanged."
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
    key: tuple[str, int, int] | None = None  # (node, turn, seq) of a record not yet stored

    def commit(self, services: Services, **extra: Any) -> AuditRecord:
        """The decision's record with ``extra`` (e.g. the final policy), stored in the audit
        table; for a step made with ``defer_record=True``."""
        rec: AuditRecord = {**(self.record or {}), **extra}  # type: ignore[typeddict-item]
        if self.key is not None:
            node, turn, seq = self.key
            record_audit(services, rec, node=node, turn=turn, seq=seq)
            self.key = None
        return rec

    def fallback(self) -> dict[str, Any]:
        """The state update of a turn that could not get a valid decision."""
        return {"reply": FALLBACK_REPLY, "error": self.error, "audit": self.audit}


def _run_identity() -> tuple[str, str] | None:
    """``(session, customer)`` of the graph run calling this, ``None`` outside a run."""
    from langgraph.config import get_config
    from langgraph.runtime import get_runtime

    try:
        config = get_config()
    except RuntimeError:
        return None
    configurable = config.get("configurable") or {}
    session = str(configurable.get("thread_id") or "")
    if not session:
        return None
    user = str(configurable.get("user_id") or "")
    try:
        ctx = get_runtime().context
    except (RuntimeError, LookupError):
        ctx = None
    if isinstance(ctx, dict):
        user = str(ctx.get("user_id") or user)
    elif getattr(ctx, "user_id", ""):
        user = str(ctx.user_id)
    return session, user


def record_audit(services: Services, rec: AuditRecord, *, node: str, turn: int, seq: int) -> None:
    """Append ``rec`` to the append-only audit table, keyed (session, turn, node, seq).

    A node that re-runs (resume, crash recovery) writes the same key: the first row stays.
    """
    who = _run_identity()
    if who is None:  # a node called outside a graph run (unit tests)
        return
    session, user = who
    services.audit_log().append(
        session_id=session, user_id=user, turn=turn, node=node, seq=seq, record=dict(rec)
    )


def sgr_step(
    services: Services,
    model: type[M],
    prompt: list[BaseMessage],
    *,
    node: str,
    turn: int,
    schema: dict[str, Any] | None = None,
    policy: dict[str, Any] | None = None,
    seq: int = 0,
    defer_record: bool = False,
) -> SGRStep[M]:
    """Call the structured LLM; a typed failure becomes a fallback, never an exception.

    Every call, failed ones included, leaves one audit record: in the turn's state and in
    the append-only audit table (``seq`` tells apart two calls of one node in one turn).
    With ``defer_record`` a successful call's record is stored by ``SGRStep.commit`` (the
    caller adds what it decided from it, e.g. pricing's clamped percent).
    """
    extra: dict[str, Any] = {"turn": turn}
    if policy is not None:
        extra["policy"] = policy
    try:
        decision, call = services.llm().call(model, prompt, node=node, schema=schema)
    except StructuredOutputError as e:
        log.warning("%s fell back: %s", node, e)
        rec: AuditRecord = {**e.call.as_dict(), **extra}  # type: ignore[typeddict-item]
        record_audit(services, rec, node=node, turn=turn, seq=seq)
        return SGRStep(None, rec, str(e), [rec])
    except LLMUnavailableError as e:
        log.error("%s: %s", node, e)
        rec = {  # type: ignore[typeddict-item]
            "node": node,
            "schema": model.__name__,
            "parsed": None,
            "raw": [],
            "errors": [f"LLM unavailable: {e}"],
            "repairs": 0,
            **extra,
        }
        record_audit(services, rec, node=node, turn=turn, seq=seq)
        return SGRStep(None, rec, str(e), [rec])
    rec = {**call.as_dict(), **extra}  # type: ignore[typeddict-item]
    if defer_record:
        return SGRStep(decision, rec, None, [rec], key=(node, turn, seq))
    record_audit(services, rec, node=node, turn=turn, seq=seq)
    return SGRStep(decision, rec, None, [rec])
