"""Shared fixtures: seeded stores in a temp dir, a graph compiled afresh per test."""

from __future__ import annotations

import asyncio
import os
import sys
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
from stores.backend import reset_backends
from stores.features import reset_feature_stores
from stores.ledger import reset_ledgers
from stores.seed import generate
from tests.pg import BACKENDS, PostgresServer, PostgresUnavailable, unavailable

os.environ.setdefault("LANGSMITH_TRACING", "false")
os.environ.setdefault("SGR_PROBE_CACHE_S", "0")  # each test probes its own fake server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test on the Postgres server ``postgres`` (``-m 'not postgres'`` skips them).

    ``backend_url`` tests get the mark from their ``BACKENDS`` parameter.
    """
    for item in items:
        if {"pg_server", "pg_url"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def _pg_server_or_error() -> Iterator[PostgresServer | str]:
    server = PostgresServer()
    try:
        server.start()
    except PostgresUnavailable as exc:
        server.stop()
        yield str(exc)
        return
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_server(_pg_server_or_error: PostgresServer | str) -> PostgresServer:
    """The test session's PostgreSQL server (started on first use; see ``tests/pg.py``)."""
    if isinstance(_pg_server_or_error, str):
        unavailable(_pg_server_or_error)
    assert isinstance(_pg_server_or_error, PostgresServer)
    return _pg_server_or_error


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> Iterator[str]:
    """The URL of a fresh, empty database on ``pg_server`` (dropped after the test, its
    connections still open ended)."""
    url = pg_server.create_database()
    try:
        yield url
    finally:
        backends = sys.modules.get("stores.backend")  # close cached pools on it first
        if backends is not None:
            backends.reset_backends()
        pg_server.drop_database(url)


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest) -> str | None:
    """Runs the test on both backends: ``None`` (SQLite files), then the URL of a fresh
    Postgres database (that parameter is marked ``postgres``)."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("pg_url")


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
    reset_backends()
    reset_feature_stores(s.data_dir)
    reset_ledgers(s.data_dir)


@pytest.fixture(params=BACKENDS)
def any_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """``settings`` on each backend in turn: SQLite files, then a fresh Postgres database
    (seeded the same way; checkpoints, ledger, leases and stores all in it)."""
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    s = Settings(
        data_dir=tmp_path / "data",
        llm_base_url="http://127.0.0.1:9/v1",
        pricing_strategy="model",
        database_url=url,
    )
    generate(s.data_dir, users=10, seed=42, database_url=url)
    yield s
    reset_backends()
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
