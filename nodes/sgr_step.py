"""One SGR call inside a node: a validated decision, or what to fall back to — never a raise.

Every call, failed ones included, leaves one audit record: in the turn's state and in the
append-only audit table, keyed ``(session, turn, node, seq)`` so that a node re-run (resume,
crash recovery) writes nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from langchain_core.messages import BaseMessage
from pydantic import BaseModel

from graph.services import Services
from graph.sgr import LLMUnavailableError, StructuredOutputError
from graph.state import AuditRecord
from nodes.identity import RunIdentity

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


@dataclass
class SGRStep(Generic[M]):
    """The outcome of one SGR call inside a node: a decision, or the error that stopped it."""

    decision: M | None
    record: AuditRecord
    error: str | None = None
    stored: bool = True  # False: ``commit`` stores the record (with what the node decided)

    @property
    def audit(self) -> list[AuditRecord]:
        """The record as the state's ``audit`` update."""
        return [self.record]


async def record_audit(
    services: Services, who: RunIdentity, rec: AuditRecord, *, node: str, turn: int, seq: int
) -> None:
    """Append ``rec`` to the audit table; a key already stored keeps its first row."""
    if not who.session_id:  # a node called outside a graph run (no thread)
        return

    def append() -> None:
        services.audit_log().append(
            session_id=who.session_id,
            user_id=who.user_id,
            turn=turn,
            node=node,
            seq=seq,
            record=dict(rec),
        )

    await asyncio.to_thread(append)


async def sgr_step(
    services: Services,
    who: RunIdentity,
    model: type[M],
    prompt: list[BaseMessage],
    *,
    node: str,
    turn: int,
    policy: dict[str, Any] | None = None,
    seq: int = 0,
    defer_record: bool = False,
    max_tokens: int | None = None,
) -> SGRStep[M]:
    """Call the structured LLM; a typed failure becomes an ``SGRStep`` with ``error``.

    With ``defer_record`` a successful call's record is stored by :func:`commit` (the caller
    adds what it decided from it, e.g. pricing's clamped percent).
    """
    extra: dict[str, Any] = {"turn": turn}
    if policy is not None:
        extra["policy"] = policy
    try:
        llm = await services.allm()
        decision, call = await llm.call(model, prompt, node=node, max_tokens=max_tokens)
    except StructuredOutputError as e:
        log.warning("%s fell back: %s", node, e)
        rec: AuditRecord = {**e.call.as_dict(), **extra}  # type: ignore[typeddict-item]
        await record_audit(services, who, rec, node=node, turn=turn, seq=seq)
        return SGRStep(None, rec, str(e))
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
        await record_audit(services, who, rec, node=node, turn=turn, seq=seq)
        return SGRStep(None, rec, str(e))
    rec = {**call.as_dict(), **extra}  # type: ignore[typeddict-item]
    if defer_record:
        return SGRStep(decision, rec, None, stored=False)
    await record_audit(services, who, rec, node=node, turn=turn, seq=seq)
    return SGRStep(decision, rec, None)


async def commit(
    services: Services,
    who: RunIdentity,
    step: SGRStep[Any],
    *,
    node: str,
    turn: int,
    seq: int = 0,
    **extra: Any,
) -> AuditRecord:
    """The step's record with ``extra`` (e.g. the final policy), stored if it was deferred."""
    rec: AuditRecord = {**step.record, **extra}  # type: ignore[typeddict-item]
    if not step.stored:
        await record_audit(services, who, rec, node=node, turn=turn, seq=seq)
        step.stored = True
    step.record = rec
    return rec
