"""``discount-manager doctor``: is the endpoint there, and does it really enforce schemas?"""

from __future__ import annotations

import asyncio

from graph.progress import Progress
from graph.services import build_structured_llm
from graph.settings import Settings
from graph.sgr import LLMUnavailableError, StructuredOutputError


def run_doctor(s: Settings, out: Progress) -> int:
    """Print endpoint, model, dialect and a constrained probe; 0 only if it was enforced."""
    out(f"endpoint:  {s.llm_base_url}")
    out(f"dialect setting: {s.structured_output}")
    try:
        llm = build_structured_llm(s.model_copy(update={"verify_constraint": False}))
        out(f"model:     {llm.model_name}")
        out(f"dialect:   {llm.dialect}")
        result = asyncio.run(llm.probe())
    except (LLMUnavailableError, StructuredOutputError) as e:
        out(f"FAIL: {e}")
        return 3
    out(f"probe:     {result.raw!r} ({result.latency_ms:.0f} ms)")
    if not result.enforced:
        out(
            f"FAIL: constraint not enforced with {llm.dialect}: the server answered outside the "
            "schema. Use SGR_STRUCTURED_OUTPUT=auto (or structured_outputs on vLLM >= 0.12)."
        )
        return 1
    out("OK: the server enforces the schema")
    return 0
