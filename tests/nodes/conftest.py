"""Helpers to call one node on a hand-built state: its runtime, its config, its services."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.runtime import Runtime

from graph.policy import compute_cap
from graph.services import Services
from graph.settings import Settings
from graph.sgr import StructuredLLM
from graph.state import NegotiationContext
from stores.models import CustomerFeatures


def runtime(user: str = "user_100") -> Runtime[NegotiationContext]:
    """The runtime a graph run gives a node: the customer in the context."""
    return Runtime(context=NegotiationContext(user_id=user))


def config(session: str = "s1") -> dict[str, Any]:
    """The config a graph run gives a node: the session as the thread."""
    return {"configurable": {"thread_id": session}}


def said(*texts: str) -> list[HumanMessage]:
    """The customer's messages."""
    return [HumanMessage(content=t, id=f"h{i}") for i, t in enumerate(texts)]


def run(coro: Any) -> Any:
    """Await a node outside any graph."""
    return asyncio.run(coro)


@pytest.fixture
def services(settings: Settings):
    """``services(llm, **overrides)``: the nodes' services on the seeded data dir."""

    def factory(llm: StructuredLLM, **overrides: Any) -> Services:
        s = settings.model_copy(update=overrides) if overrides else settings
        return Services.with_llm(llm, s)

    return factory


def features_of(services: Services, user: str) -> dict[str, Any]:
    """``features`` and ``cap`` of a seeded customer, as retrieval writes them."""
    found = services.features().lookup(user)
    assert isinstance(found, CustomerFeatures)
    return {
        "features": found.model_dump(mode="json"),
        "cap": compute_cap(found, services.settings).model_dump(mode="json"),
    }


def reply_of(cmd: Any) -> str:
    """The reply a node ended the turn with (its one assistant message)."""
    return cmd.update["messages"][-1].content
