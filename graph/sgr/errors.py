"""The typed outcomes of a structured call, and its audit record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class LLMUnavailableError(RuntimeError):
    """The endpoint could not be reached, refused the request or sent an undecodable reply."""


@dataclass
class SGRCall:
    """Audit record of one SGR call (attempts included)."""

    node: str
    schema_name: str
    dialect: str
    model: str
    parsed: dict[str, Any] | None = None
    raw: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    repairs: int = 0
    latency_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the state, the checkpoint and the audit table."""
        return {
            "node": self.node,
            "schema": self.schema_name,
            "dialect": self.dialect,
            "model": self.model,
            "parsed": self.parsed,
            "raw": self.raw,
            "errors": self.errors,
            "repairs": self.repairs,
            "latency_ms": round(self.latency_ms, 1),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "finish_reasons": self.finish_reasons,
        }


class StructuredOutputError(RuntimeError):
    """No schema-valid reply after the repair attempt."""

    def __init__(self, message: str, *, call: SGRCall) -> None:
        super().__init__(message)
        self.call = call


class ConstraintNotEnforcedError(StructuredOutputError):
    """The server answered with text that no schema-constrained decoder could produce."""
