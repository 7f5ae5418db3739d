"""Prompt tokens per LLM node on a first negotiate turn, beside the seed's prompts.

The prompts sent today are captured from a real graph run (a recording fake LLM); the seed's
are its first commit's ``prompts/router.md`` and ``prompts/pricing.md`` (copies in
``seed_prompts/``) filled with the same facts. Both are counted with one tokenizer: the
endpoint's own (vLLM ``POST /tokenize`` with the chat messages) when ``--endpoint`` is given,
otherwise an estimate of 4 characters a token (no tokenizer is installed offline).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from langchain_core.messages import BaseMessage, HumanMessage

from graph.builder import make_builder
from graph.ops.bench.perf.common import MESSAGE, bench_settings
from graph.ops.bench.perf.fake_llm import reply_for
from graph.ops.fakes import fake_llm
from graph.policy import compute_cap
from graph.services import Services
from graph.state import NegotiationContext
from stores.backend import reset_backends
from stores.models import CustomerFeatures
from stores.seed import generate

SEED_DIR = Path(__file__).parent / "seed_prompts"
USER = "user_100"


class Recording:
    """A responder (``graph.ops.fakes``) answering like the bench's fake LLM that keeps the
    messages of each schema's call."""

    def __init__(self) -> None:
        self.seen: dict[str, list[BaseMessage]] = {}

    def __call__(self, schema: dict[str, Any], messages: list[BaseMessage]) -> Any:
        self.seen[str(schema.get("title", "?"))] = list(messages)
        return reply_for(schema)


def _as_openai(messages: list[BaseMessage]) -> list[dict[str, str]]:
    role = {"system": "system", "human": "user", "ai": "assistant"}
    return [{"role": role.get(m.type, m.type), "content": str(m.content)} for m in messages]


class Counter:
    """Counts the tokens of a chat (endpoint ``/tokenize`` or a character estimate)."""

    def __init__(self, endpoint: str | None, model: str | None) -> None:
        self.endpoint = endpoint
        self.model = model
        self.name = "chars/4 estimate (no tokenizer installed)"
        if endpoint:
            self.name = f"{model} via {endpoint.removesuffix('/v1')}/tokenize"

    def __call__(self, messages: list[dict[str, str]]) -> int:
        if self.endpoint:
            r = httpx.post(
                f"{self.endpoint.removesuffix('/v1')}/tokenize",
                json={"model": self.model, "messages": messages},
                timeout=30,
            )
            r.raise_for_status()
            return int(r.json()["count"])
        return sum(len(m["content"]) for m in messages) // 4


def _seed_prompts(
    f: CustomerFeatures, cap: float, max_rounds: int
) -> dict[str, list[dict[str, str]]]:
    router = (SEED_DIR / "router.md").read_text(encoding="utf-8")
    pricing = (SEED_DIR / "pricing.md").read_text(encoding="utf-8")
    offer_line = "No offer has been made to this customer yet."
    facts = {
        "churn": f.churn_probability,
        "ltv": f.lifetime_value,
        "cadence": f.avg_days_between_orders,
        "cart": f.cart_value,
        "margin_pct": 100 * f.margin,
        "inventory": f.inventory,
        "cap": cap,
        "floor": 0.0,
        "offers": "none",
        "ask": "not stated",
        "round": 1,
        "max_rounds": max_rounds,
    }
    return {
        "router": [
            {"role": "system", "content": router.format(offer_line=offer_line)},
            {"role": "user", "content": MESSAGE},
        ],
        "pricing": [
            {"role": "system", "content": pricing.format(**facts)},
            {"role": "user", "content": MESSAGE},
        ],
    }


def run(work: Path, endpoint: str | None = None, model: str | None = None) -> dict[str, Any]:
    """Tokens per node (router, pricing) today and in the seed, with the same counter."""
    data_dir = work / "tokens"
    generate(data_dir, users=10, seed=42)
    settings = bench_settings(data_dir)
    chat = Recording()
    services = Services.with_llm(fake_llm(chat), settings)
    try:
        from langgraph.checkpoint.memory import InMemorySaver

        app = make_builder(services).compile(checkpointer=InMemorySaver())
        asyncio.run(
            app.ainvoke(
                {"messages": [HumanMessage(content=MESSAGE)]},
                {"configurable": {"thread_id": "tokens"}},
                context=NegotiationContext(user_id=USER),
            )
        )
        found = services.features().lookup(USER)
        assert isinstance(found, CustomerFeatures)
        cap = compute_cap(found, settings).cap_percent
    finally:
        reset_backends()
    now = {
        "router": _as_openai(chat.seen["RouterDecision"]),
        "pricing": _as_openai(chat.seen["PricingDecision"]),
    }
    seed = _seed_prompts(found, cap, settings.max_rounds)
    count = Counter(endpoint, model)
    nodes = {n: {"tokens": count(now[n]), "seed_tokens": count(seed[n])} for n in now}
    total = sum(v["tokens"] for v in nodes.values())
    seed_total = sum(v["seed_tokens"] for v in nodes.values())
    return {
        "tokenizer": count.name,
        "user": USER,
        "message": MESSAGE,
        "nodes": nodes,
        "total": total,
        "seed_total": seed_total,
        "ratio": round(total / seed_total, 3) if seed_total else None,
    }
