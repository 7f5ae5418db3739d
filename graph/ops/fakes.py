"""The one fake chat model of the tests, the benchmarks and the simulator.

``FakeChat`` is a LangChain chat model that answers each call with ``responder(schema,
messages)``: the JSON schema the request asks the server to enforce (read from
``extra_body`` in any dialect) and the prompt. What differs between its users is only the
responder: a script of replies (tests), a schema filler hearing the customer (simulator), a
negotiating buyer or a fixed reply after a latency (benchmarks), a malicious model
(adversarial bench). It records every call and works sync and async (``ainvoke`` sleeps
without blocking the event loop).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from graph.sgr import StructuredLLM

Responder = Callable[[dict[str, Any], list[BaseMessage]], Any]
"""``(schema, messages) -> reply``: a dict/list (sent as JSON), a string, a ``(content,
finish_reason)`` pair, or an exception instance (raised, as a failing client would)."""


def schema_of(extra_body: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON schema a request asks to enforce (``structured_outputs``, ``guided_json`` or
    ``response_format``), the very object sent; ``{}`` when there is none."""
    body = extra_body or {}
    so = body.get("structured_outputs")
    if isinstance(so, dict) and isinstance(so.get("json"), dict):
        return so["json"]
    if isinstance(body.get("guided_json"), dict):
        return body["guided_json"]
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and isinstance(fmt.get("json_schema"), dict):
        return fmt["json_schema"].get("schema") or {}
    return {}


def choices(field: dict[str, Any]) -> list[Any]:
    """The values a schema field allows when it is an enumeration (``enum``, or a single
    ``const``: what a one-value ``Literal`` becomes); ``[]`` otherwise."""
    if "enum" in field:
        return list(field["enum"])
    return [field["const"]] if "const" in field else []


def json_result(
    reply: Any, *, finish: str = "stop", input_tokens: int = 50, output_tokens: int = 20
) -> ChatResult:
    """``reply`` (JSON unless a string) in one assistant message, with token usage."""
    content = reply if isinstance(reply, str) else json.dumps(reply, ensure_ascii=False)
    msg = AIMessage(
        content=content,
        response_metadata={"finish_reason": finish},
        usage_metadata={
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        },
    )
    return ChatResult(generations=[ChatGeneration(message=msg)])


class FakeChat(BaseChatModel):
    """Answers every call with ``responder(schema, messages)`` after ``latency_s``."""

    responder: Any
    latency_s: float = 0.0
    calls: list[dict[str, Any]] = Field(default_factory=list)
    lock: Any = Field(default_factory=threading.Lock, exclude=True)

    @property
    def _llm_type(self) -> str:
        return "fake"

    def _answer(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> ChatResult:
        schema = schema_of(kwargs.get("extra_body"))
        with self.lock:
            self.calls.append({"messages": list(messages), "kwargs": kwargs, "schema": schema})
            reply = self.responder(schema, list(messages))
        if isinstance(reply, BaseException):
            raise reply
        content, finish = reply if isinstance(reply, tuple) else (reply, "stop")
        prompt_chars = sum(len(str(m.content)) for m in messages)
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        return json_result(
            text,
            finish=finish,
            input_tokens=max(1, prompt_chars // 4),
            output_tokens=len(text) // 4,
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.latency_s:
            time.sleep(self.latency_s)
        return self._answer(messages, kwargs)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        return self._answer(messages, kwargs)


def fake_llm(
    responder: Responder,
    *,
    latency_s: float = 0.0,
    dialect: str = "structured_outputs",
    model_name: str = "fake",
    verify: bool = False,
) -> StructuredLLM:
    """A ``StructuredLLM`` over a fresh :class:`FakeChat`."""
    chat = FakeChat(responder=responder, latency_s=latency_s)
    return StructuredLLM(chat, dialect, model_name=model_name, verify=verify)  # type: ignore[arg-type]


class Script:
    """A responder answering from a list, in order (``AssertionError`` when it runs out); a
    reply that is itself a responder is called with the request."""

    def __init__(self, replies: Iterable[Any]) -> None:
        self.replies = list(replies)

    def __call__(self, schema: dict[str, Any], messages: list[BaseMessage]) -> Any:
        if not self.replies:
            raise AssertionError("the scripted chat model ran out of replies")
        reply = self.replies.pop(0)
        return reply(schema, messages) if callable(reply) else reply


def scripted_llm(*replies: Any, dialect: str = "structured_outputs") -> StructuredLLM:
    """A ``StructuredLLM`` answering ``replies`` in order."""
    return fake_llm(Script(replies), dialect=dialect, model_name="scripted")
