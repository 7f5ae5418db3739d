"""The respond node alone: the only node that appends the reply to the conversation."""

from __future__ import annotations

from langchain_core.messages import AIMessage

from nodes.respond import make_respond
from tests.fakes import say, scripted_llm
from tests.nodes.conftest import run, said


def test_the_prepared_reply_is_sent(services) -> None:
    node = make_respond(services(scripted_llm()))
    out = run(node({"messages": said("hi"), "reply": "We open at nine."}))
    assert out == {"messages": [AIMessage(content="We open at nine.", id=out["messages"][0].id)]}


def test_no_reply_sends_the_fallback(services) -> None:
    node = make_respond(services(scripted_llm()))
    out = run(node({"messages": said("hi"), "reply": None}))
    assert out["messages"][0].content == say("fallback")
