"""Scripted models for the reliability benchmarks: answers chosen from the requested schema.

``negotiation_reply(schema, rng)`` is what a well-behaved model would send: the router asks
for a discount (or, now and then, accepts), pricing names a modest percent. It backs both the
in-process fake chat model (``Negotiating``) and the HTTP responder of ``graph/ops/fake_openai.py``.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from langchain_core.messages import BaseMessage

from graph.ops.fakes import choices, fake_llm, schema_of
from graph.settings import Settings
from graph.sgr import StructuredLLM


def negotiation_reply(
    schema: dict[str, Any], rng: random.Random, accept_share: float = 0.2
) -> dict[str, Any]:
    """A schema-valid router or pricing reply (the router accepts ``accept_share`` of the
    time when it may, else asks for a discount, quoting the customer's words)."""
    props = schema.get("properties") or {}
    if "decision" in props:
        actions = set(schema.get("$defs") or {})
        if "AcceptOffer" in actions and rng.random() < accept_share:
            decision: dict[str, Any] = {"action": "accept_offer"}
        elif "Negotiate" in actions or not actions:
            decision = {
                "action": "negotiate",
                "quote": quote_for(schema),
                "requested_percent": None,
            }
        else:
            decision = {"action": "respond", "reply": "Happy to help with your order."}
        return {"analysis": "wants a discount", "decision": decision}
    field = props.get("discount_percent") or {}
    grid = [v for v in choices(field) if v >= 1] or choices(field)
    return {
        "churn_analysis": "may leave",
        "financial_analysis": "good customer",
        "margin_math": "room in the margin",
        "negotiation_position": "modest offer",
        "discount_percent": rng.choice(grid) if grid else rng.randint(2, _ceiling(field, 10)),
        "customer_message": "Here is what I can do for you.",
    }


def quote_for(schema: dict[str, Any]) -> str:
    """The customer's clause that asks for a discount (the schema lists the clauses)."""
    quote = ((schema.get("$defs") or {}).get("Negotiate") or {}).get("properties", {}).get("quote")
    clauses = choices(quote or {})
    cued = [c for c in clauses if "discount" in c.lower()]
    return (cued or clauses or ["discount"])[0]


def _ceiling(field: dict[str, Any], default: int) -> int:
    """The highest whole percent a number field's schema allows (``default`` at most)."""
    top = field.get("maximum", field.get("exclusiveMaximum"))
    return max(1, min(default, int(top))) if top is not None else default


class Negotiating:
    """A responder (``graph.ops.fakes``) answering :func:`negotiation_reply`, seeded."""

    def __init__(self, seed: int = 0, accept_share: float = 0.2) -> None:
        self.rng = random.Random(seed)
        self.accept_share = accept_share
        self.lock = threading.Lock()

    def __call__(self, schema: dict[str, Any], messages: list[BaseMessage]) -> Any:
        with self.lock:
            return negotiation_reply(schema, self.rng, self.accept_share)


def schema_llm(settings: Settings, *, latency_s: float = 0.0, seed: int = 0) -> StructuredLLM:
    """The shared fake chat model answering like a negotiating buyer's agent (the
    ``Services.llm_factory`` of a bench)."""
    return fake_llm(Negotiating(seed), latency_s=latency_s, model_name="schema-scripted")


def http_responder(latency_s: float, seed: int = 0, accept_share: float = 0.2) -> Any:
    """A ``FakeOpenAIServer(responder=...)`` answering like ``Negotiating``, slowly."""
    rng = random.Random(seed)
    lock = threading.Lock()

    def respond(body: dict[str, Any]) -> dict[str, Any]:
        time.sleep(latency_s)
        with lock:
            return negotiation_reply(schema_of(body), rng, accept_share)

    return respond
