"""A manager's approval decision: parsed and checked before it reaches the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graph.policy import floor_half


class ApprovalDecisionError(ValueError):
    """A resume value that is not a valid approval decision."""


@dataclass(frozen=True)
class ApprovalDecision:
    """``approved``; ``percent`` (``None``: as proposed); who decided."""

    approved: bool
    percent: float | None
    approver: str


def parse_decision(value: Any, proposed: float) -> ApprovalDecision:
    """The decision in a resume value.

    Accepts ``{"decision": "approve"|"reject", "percent": x, "approver": name}`` or the bare
    strings ``"approve"`` / ``"reject"``. An approved percent may only lower the proposal.
    """
    if isinstance(value, str):
        value = {"decision": value}
    if not isinstance(value, dict) or value.get("decision") not in ("approve", "reject"):
        raise ApprovalDecisionError(f"resume with decision approve or reject, not {value!r}")
    approver = str(value.get("approver") or "manager")[:64]
    percent = value.get("percent")
    if percent is not None:
        try:
            percent = floor_half(float(percent))
        except (TypeError, ValueError) as e:
            raise ApprovalDecisionError(f"percent must be a number, not {percent!r}") from e
        if not 0 <= percent <= proposed:
            raise ApprovalDecisionError(f"approved percent must be within 0..{proposed:g}")
    return ApprovalDecision(value["decision"] == "approve", percent, approver)
