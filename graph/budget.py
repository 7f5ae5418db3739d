"""Token budgets that fit a JSON schema: ``max_tokens`` derived from its string bounds.

A small model fills every string to its ``maxLength``; with no free whitespace between
fields (``disable_any_whitespace``) the longest valid reply is bounded by the schema alone.
"""

from __future__ import annotations

import logging
import math
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

log = logging.getLogger(__name__)

# One token per character: the worst case of a byte-level BPE on ASCII. English prose runs
# ~4 characters a token, but the local 135M model fills strings with runs like "N_G_N_G_…"
# or digit strings, one token a character: at 2 characters a token (the old budget) its
# pricing reply was cut at 304 tokens after 366 characters. Non-ASCII text and JSON escapes
# can still take more than one token a character; the guard and the schedule cover those.
CHARS_PER_TOKEN = 1.0
NUMBER_CHARS = 12  # "-12345.6789" and the like
SLACK_TOKENS = 16  # a stop token and the odd escape


def max_reply_chars(schema: dict[str, Any], root: dict[str, Any] | None = None) -> int:
    """The longest compact JSON text that ``schema`` admits (strings at ``maxLength``).

    Raises ``ValueError`` for an unbounded string: such a schema has no safe budget.
    """
    root = root or schema
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return max_reply_chars(root["$defs"][name], root)
    for union in ("anyOf", "oneOf"):
        if union in schema:
            return max(max_reply_chars(s, root) for s in schema[union])
    if "const" in schema:
        return len(str(schema["const"])) + 2
    if "enum" in schema:
        return max(len(str(v)) for v in schema["enum"]) + 2
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        fields = sum(len(k) + 4 + max_reply_chars(v, root) for k, v in props.items())
        return 2 + fields
    if kind == "string":
        if "maxLength" not in schema:
            raise ValueError("a string without maxLength has no token budget")
        return int(schema["maxLength"]) + 2
    if kind in ("number", "integer"):
        return NUMBER_CHARS
    if kind == "boolean":
        return 5
    if kind == "null":
        return 4
    raise ValueError(f"no token budget for schema part {schema!r}")


def schema_token_budget(schema: dict[str, Any]) -> int:
    """``max_tokens`` that lets the longest valid reply to ``schema`` finish."""
    return math.ceil(max_reply_chars(schema) / CHARS_PER_TOKEN) + SLACK_TOKENS


def model_budget(model: type[BaseModel], limit: int) -> int:
    """:func:`call_budget` of a model's schema, computed once per model class."""
    return _model_budget(model, limit)


@lru_cache(maxsize=1024)
def _model_budget(model: type[BaseModel], limit: int) -> int:
    return call_budget(model.model_json_schema(), limit)


def call_budget(schema: dict[str, Any], limit: int) -> int:
    """The schema's budget, never above ``limit`` (``SGR_LLM_MAX_TOKENS``); warns when clipped."""
    budget = schema_token_budget(schema)
    if budget > limit:
        log.warning("schema needs %d tokens but SGR_LLM_MAX_TOKENS is %d", budget, limit)
        return limit
    return budget
