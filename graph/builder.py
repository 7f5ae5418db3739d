"""The negotiation graph: ``builder`` (uncompiled) and ``graph`` (compiled, no checkpointer).

Every node is async and returns ``Command[Literal[...]]``: its routes are in its signature,
so the drawn graph shows every real path. The node that decides the answer ends the turn
with it (``nodes.messages.end_turn``): one assistant message per turn.

``langgraph dev`` supplies its own persistence, so ``graph`` is compiled without one; the
session runner compiles ``builder`` with the deployment's saver (SQLite or Postgres); tests
compile it with an in-memory saver.
"""

from __future__ import annotations

from langgraph.graph import START, StateGraph

from graph.services import Services
from graph.state import InputState, NegotiationContext, NegotiationState
from nodes.accept import make_accept
from nodes.offer import make_offer
from nodes.pricing import make_pricing
from nodes.retrieval import make_retrieval
from nodes.router import make_router


def make_builder(services: Services | None = None) -> StateGraph:
    """A fresh graph builder whose nodes use ``services`` (the LLM and stores)."""
    services = services or Services()
    b = StateGraph(NegotiationState, context_schema=NegotiationContext, input_schema=InputState)
    b.add_node("router", make_router(services))
    b.add_node("retrieval", make_retrieval(services))
    b.add_node("pricing", make_pricing(services))
    b.add_node("offer", make_offer(services))
    b.add_node("accept", make_accept(services))
    b.add_edge(START, "router")
    return b


builder = make_builder()
graph = builder.compile(name="sgr-negotiator")
