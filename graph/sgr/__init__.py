"""Structured outputs: ask vLLM to enforce a JSON schema, and never trust that it did.

* ``dialects``: which request field carries the schema (chosen deliberately, ``auto`` reads
  the server's ``/version`` once) and the probe that proves the server enforces it;
* ``retries``: bounded retries of transient failures, every failure typed;
* ``client``: :class:`StructuredLLM`, one validated object per call (``await llm.call(...)``).
"""

from graph.sgr.client import StructuredLLM
from graph.sgr.dialects import (
    PROBE_PROMPT,
    ConstraintProbe,
    ProbeResult,
    ResolvedDialect,
    constraint_body,
    detect_dialect,
    json_schema_of,
    parse_version,
)
from graph.sgr.errors import (
    ConstraintNotEnforcedError,
    LLMUnavailableError,
    SGRCall,
    StructuredOutputError,
)
from graph.sgr.retries import RetryPolicy, retry_after_seconds

__all__ = [
    "PROBE_PROMPT",
    "ConstraintNotEnforcedError",
    "ConstraintProbe",
    "LLMUnavailableError",
    "ProbeResult",
    "ResolvedDialect",
    "RetryPolicy",
    "SGRCall",
    "StructuredLLM",
    "StructuredOutputError",
    "constraint_body",
    "detect_dialect",
    "json_schema_of",
    "parse_version",
    "retry_after_seconds",
]
