"""Who a run is for: the session (thread id) and the customer, resolved in one place.

The customer comes from the run context (``context={"user_id": ...}``) or, for clients that
cannot send a context, ``configurable.user_id``; never from message text or model output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime


@dataclass(frozen=True)
class RunIdentity:
    """The session (LangGraph thread) and the customer a node runs for."""

    session_id: str
    user_id: str


def context_user(context: Any) -> str:
    """The ``user_id`` of a run context (the dataclass, or a dict from Studio / the SDK)."""
    if isinstance(context, dict):
        return str(context.get("user_id") or "").strip()
    return str(getattr(context, "user_id", "") or "").strip()


def run_identity(runtime: Runtime[Any] | None, config: RunnableConfig) -> RunIdentity:
    """The run's session and customer: the context first, then ``configurable.user_id``."""
    configurable = config.get("configurable") or {}
    user = context_user(runtime.context if runtime is not None else None)
    if not user:
        user = str(configurable.get("user_id") or "").strip()
    return RunIdentity(session_id=str(configurable.get("thread_id") or ""), user_id=user)
