"""What every fake chat model of the benchmarks and the simulator shares.

They all answer the JSON schema a request asks the server to enforce: :func:`schema_of`
reads it from ``extra_body`` (any dialect) and :func:`json_result` wraps the answer as a
chat result with a ``stop`` finish and token usage.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult


def schema_of(extra_body: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON schema a request asks to enforce (``structured_outputs``, ``guided_json`` or
    ``response_format``), the very object sent; ``{}`` when there is none."""
    body = extra_body or {}
    so = body.get("structured_outputs")
    if isinstance(so, dict) and isinstance(so.get("json"), dict):
        return so["json"]
    if isinstance(body.get("guided_json"), dict):
        return body["guided_json"]
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and isinstance(fmt.get("json_schema"), dict):
        return fmt["json_schema"].get("schema") or {}
    return {}


def json_result(reply: Any, *, input_tokens: int = 50, output_tokens: int = 20) -> ChatResult:
    """``reply`` as JSON in one assistant message (``finish_reason: stop``, usage set)."""
    content = reply if isinstance(reply, str) else json.dumps(reply, ensure_ascii=False)
    msg = AIMessage(
        content=content,
        response_metadata={"finish_reason": "stop"},
        usage_metadata={
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        },
    )
    return ChatResult(generations=[ChatGeneration(message=msg)])
