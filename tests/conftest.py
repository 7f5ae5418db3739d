"""Shared fixtures: seeded stores in a temp dir, a graph compiled afresh per test."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from graph.builder import make_builder
from graph.services import Services
from graph.settings import Settings
from graph.sgr import StructuredLLM
from graph.state import NegotiationContext
from stores.features import reset_feature_stores
from stores.ledger import reset_ledgers
from stores.seed import generate

os.environ.setdefault("LANGSMITH_TRACING", "false")


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    """Settings on a freshly seeded data dir (the ten default users).

    ``pricing_strategy="model"``: node tests script the model's percent and check what the code
    does with it; the concession schedule has its own tests (``make_app(llm,
    pricing_strategy="schedule")``).
    """
    s = Settings(
        data_dir=tmp_path / "data", llm_base_url="http://127.0.0.1:9/v1", pricing_strategy="model"
    )
    generate(s.data_dir, users=10, seed=42)
    yield s
    reset_feature_stores(s.data_dir)
    reset_ledgers(s.data_dir)


class App:
    """A compiled graph with an in-memory saver and a helper to run turns."""

    def __init__(self, settings: Settings, llm: StructuredLLM) -> None:
        self.llm = llm
        self.services = Services.with_llm(llm, settings)
        self.graph = make_builder(self.services).compile(checkpointer=InMemorySaver())

    def turn(self, text: str, *, user: str = "user_100", session: str = "s1") -> dict[str, Any]:
        """One turn through the whole graph (``ainvoke`` in an event loop of its own)."""
        return asyncio.run(
            self.graph.ainvoke(
                {"messages": [HumanMessage(content=text)]},
                {"configurable": {"thread_id": session}},
                context=NegotiationContext(user_id=user),
            )
        )

    def resume(self, value: Any, *, user: str = "user_100", session: str = "s1") -> dict[str, Any]:
        """Resume an interrupted turn with ``value``."""
        from langgraph.types import Command

        return asyncio.run(
            self.graph.ainvoke(
                Command(resume=value),
                {"configurable": {"thread_id": session}},
                context=NegotiationContext(user_id=user),
            )
        )

    def state(self, session: str = "s1") -> Any:
        """The session's state snapshot."""
        return asyncio.run(self.graph.aget_state({"configurable": {"thread_id": session}}))

    @property
    def chat(self) -> Any:
        return self.llm.chat


@pytest.fixture
def make_app(settings: Settings):
    """``make_app(llm)`` -> an ``App`` on the seeded settings."""

    def factory(llm: StructuredLLM, **overrides: Any) -> App:
        s = settings.model_copy(update=overrides) if overrides else settings
        return App(s, llm)

    return factory
