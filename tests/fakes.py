"""A scripted chat model: records every call, answers from a list (a fake vLLM in-process)."""

from __future__ import annotations

import json
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from graph.sgr_client import StructuredLLM


class ScriptedChat(BaseChatModel):
    """Replies are JSON strings/dicts or ``(content, finish_reason)`` pairs, used in order."""

    replies: list[Any] = Field(default_factory=list)
    calls: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls.append({"messages": list(messages), "kwargs": kwargs})
        if not self.replies:
            raise AssertionError("the scripted chat model ran out of replies")
        reply = self.replies.pop(0)
        content, finish = reply if isinstance(reply, tuple) else (reply, "stop")
        if not isinstance(content, str):
            content = json.dumps(content)
        msg = AIMessage(
            content=content,
            response_metadata={"finish_reason": finish},
            usage_metadata={"input_tokens": 100, "output_tokens": 20, "total_tokens": 120},
        )
        return ChatResult(generations=[ChatGeneration(message=msg)])


def scripted_llm(*replies: Any, dialect: str = "structured_outputs") -> StructuredLLM:
    """A ``StructuredLLM`` over a ``ScriptedChat`` with the given replies."""
    return StructuredLLM(ScriptedChat(replies=list(replies)), dialect)  # type: ignore[arg-type]


def route(action: str, **extra: Any) -> dict[str, Any]:
    """A schema-valid router reply."""
    decision: dict[str, Any] = {"action": action}
    if action == "negotiate":
        ask = extra.get("requested_percent")
        # the quote must occur in the customer's message: "10%" for an ask, else "discount"
        decision["quote"] = extra.get("quote", f"{ask:g}%" if ask is not None else "discount")
        decision["requested_percent"] = ask
    if action == "respond":
        decision["reply"] = extra.get("reply", "We are open 9 to 5.")
    return {"analysis": extra.get("analysis", "customer intent"), "decision": decision}


def price(percent: float, message: str = "Here is a special offer for you.") -> dict[str, Any]:
    """A schema-valid pricing reply."""
    return {
        "churn_analysis": "likely to leave",
        "financial_analysis": "valuable customer",
        "margin_math": "margin allows some room",
        "negotiation_position": "first offer",
        "discount_percent": percent,
        "customer_message": message,
    }
