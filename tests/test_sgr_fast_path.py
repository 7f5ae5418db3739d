"""A structured call skips LangChain's callback set-up only when nothing observes it."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import BaseModel

from graph.sgr_client import StructuredLLM, _quiet
from tests.fakes import ScriptedChat


class Answer(BaseModel):
    answer: str


class _Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.starts = 0

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        self.starts += 1


class _InfoChat(ScriptedChat):
    """Puts the finish reason in ``generation_info`` (as ``ChatOpenAI`` does)."""

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any):
        result = super()._generate(messages, stop, run_manager, **kw)
        msg = result.generations[0].message
        finish = msg.response_metadata.pop("finish_reason")
        return ChatResult(
            generations=[ChatGeneration(message=msg, generation_info={"finish_reason": finish})],
            llm_output={"model_name": "m"},
        )


def test_direct_call_keeps_what_invoke_returns() -> None:
    chat = _InfoChat(replies=[('{"answer": "x"}', "length"), '{"answer": "y"}'])
    assert _quiet(chat)
    llm = StructuredLLM(chat, "structured_outputs")
    parsed, rec = llm.call(Answer, [HumanMessage(content="hi")], node="t")
    # the truncated first reply was seen as truncated: finish_reason from generation_info
    assert rec.finish_reasons == ["length", "stop"] and rec.repairs == 1
    assert parsed.answer == "y" and rec.prompt_tokens == 200
    assert "structured_outputs" in chat.calls[0]["kwargs"]["extra_body"]


def test_a_callback_handler_keeps_the_full_invoke() -> None:
    recorder = _Recorder()
    chat = ScriptedChat(replies=['{"answer": "x"}'], callbacks=[recorder])
    assert not _quiet(chat)
    StructuredLLM(chat, "structured_outputs").call(Answer, [HumanMessage(content="hi")], node="t")
    assert recorder.starts == 1


def test_a_handler_of_the_calling_run_keeps_the_full_invoke() -> None:
    from langchain_core.runnables import RunnableLambda

    recorder = _Recorder()
    chat = ScriptedChat(replies=['{"answer": "x"}'])
    llm = StructuredLLM(chat, "structured_outputs")
    seen: list[bool] = []

    def node(_: Any) -> str:
        seen.append(_quiet(chat))
        return llm.call(Answer, [HumanMessage(content="hi")], node="t")[0].answer

    assert RunnableLambda(node).invoke(None, {"callbacks": [recorder]}) == "x"
    assert seen == [False] and recorder.starts == 1
