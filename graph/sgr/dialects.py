"""Which request field carries the schema, and the probe proving the server enforces it.

vLLM >= 0.12 reads ``structured_outputs`` and silently ignores ``guided_json``; older vLLM
reads ``guided_json`` (+ ``guided_decoding_backend``); any OpenAI-compatible server reads a
``json_schema`` ``response_format``. A wrong guess fails open, so the dialect is chosen
deliberately and a probe whose only valid answer no free model writes checks it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import httpx
from pydantic import BaseModel

from graph.sgr.errors import LLMUnavailableError

log = logging.getLogger(__name__)

ResolvedDialect = Literal["structured_outputs", "guided_json", "response_format"]
MIN_STRUCTURED_OUTPUTS_VERSION = (0, 12)

PROBE_TOKEN = "xq-zebra-7"
PROBE_PROMPT = "Say hello to the customer in one short sentence."
PROBE_MAX_TOKENS = 64  # the probe's own budget: a small SGR max_tokens must not fail it


class ConstraintProbe(BaseModel):
    """The probe schema: an enum value a model would never write unprompted."""

    answer: Literal["xq-zebra-7"]


@dataclass(frozen=True)
class ProbeResult:
    """Whether the server enforced the probe schema."""

    enforced: bool
    dialect: str
    raw: str
    latency_ms: float


@lru_cache(maxsize=1024)
def json_schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """``model.model_json_schema()``, generated once per model class (it costs ~3 ms).

    Callers must not mutate the returned dict: it is shared.
    """
    return model.model_json_schema()


def parse_version(text: str) -> tuple[int, ...]:
    """``"0.32.0"`` or ``"0.10.1rc1+cpu"`` -> ``(0, 32, 0)`` / ``(0, 10, 1)``."""
    parts = re.findall(r"\d+", text.split("+")[0])[:3]
    return tuple(int(p) for p in parts)


def detect_dialect(server_root: str, *, timeout: float = 5.0) -> ResolvedDialect:
    """Pick the constraint dialect from ``GET <root>/version``.

    vLLM >= 0.12 -> ``structured_outputs``; older vLLM -> ``guided_json``; no usable
    ``/version`` (not vLLM) -> ``response_format``. Unreachable -> ``LLMUnavailableError``.
    """
    try:
        r = httpx.get(f"{server_root.rstrip('/')}/version", timeout=timeout)
    except httpx.HTTPError as e:
        raise LLMUnavailableError(f"LLM endpoint {server_root} is unreachable: {e}") from e
    try:
        version = parse_version(str(r.json()["version"])) if r.status_code == 200 else ()
    except (ValueError, KeyError, TypeError):
        version = ()
    if not version:
        log.info("no vLLM /version at %s: using response_format", server_root)
        return "response_format"
    dialect: ResolvedDialect = (
        "structured_outputs" if version[:2] >= MIN_STRUCTURED_OUTPUTS_VERSION else "guided_json"
    )
    log.info("vLLM %s at %s: using %s", ".".join(map(str, version)), server_root, dialect)
    return dialect


def constraint_body(
    dialect: ResolvedDialect, schema: dict[str, Any], name: str, *, send_backend: bool = True
) -> dict[str, Any]:
    """The request-body fields that ask the server to enforce ``schema``."""
    if dialect == "structured_outputs":  # no free whitespace between fields: see graph/budget
        return {"structured_outputs": {"json": schema, "disable_any_whitespace": True}}
    if dialect == "guided_json":
        body: dict[str, Any] = {"guided_json": schema}
        if send_backend:
            body["guided_decoding_backend"] = "xgrammar"
        return body
    return {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "strict": True},
        }
    }


def is_backend_rejection(message: str) -> bool:
    """Whether a 400 says the server does not know ``guided_decoding_backend``."""
    text = message.lower()
    return "backend" in text and ("guided" in text or "structured" in text or "match" in text)


def looks_unconstrained(raw: str, finish: str) -> bool:
    """A JSON-schema decoder always starts an object: prose means nothing was enforced."""
    return finish != "length" and not raw.lstrip().startswith(("{", "```"))


def strip_fences(text: str) -> str:
    """The reply without a Markdown code fence around it."""
    text = text.strip()
    if text.startswith("```"):
        text = re.sub(r"^```(?:json)?\s*|\s*```$", "", text)
    return text


def schema_tokens_estimate(schema: dict[str, Any]) -> int:
    """Rough token count of a schema pasted into a prompt (≈ 4 characters a token)."""
    import json

    return len(json.dumps(schema)) // 4
