"""A message sent again with its idempotency key gets the recorded answer, not a second turn
(the retry of a request whose worker died after storing the message). Both backends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from graph.services import Services
from graph.session import (
    Negotiator,
    SessionOwnerError,
    idempotent_message_id,
    open_negotiator,
)
from graph.settings import Settings
from graph.sgr import StructuredLLM
from graph.state import NegotiationContext
from graph.validation import InputError
from tests.fakes import price, route, scripted_llm


def _with_negotiator(settings: Settings, llm: StructuredLLM, body: Any) -> Any:
    services = Services.with_llm(llm, settings)

    async def run() -> Any:
        async with open_negotiator(services) as neg:
            return await body(neg)

    return asyncio.run(run())


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return {**a, "latency_s": 0} == {**b, "latency_s": 0}


def test_a_resent_message_is_answered_from_the_record(any_settings: Settings) -> None:
    llm = scripted_llm(route("negotiate"), price(12))

    async def body(neg: Negotiator) -> Any:
        first = await neg.run_turn("s-idem", "user_100", "Any discount?", key="k-1")
        again = await neg.run_turn("s-idem", "user_100", "Any discount?", key="k-1")
        return first, again, await neg.history("s-idem")

    first, again, history = _with_negotiator(any_settings, llm, body)
    assert first.offer and first.offer["code"] and not first.replayed
    assert again.replayed and _same(again.as_json(), first.as_json())
    assert len(history) == 1  # one turn, not two
    assert len(llm.chat.calls) == 2  # router + pricing once
    offers = Services(settings=any_settings).ledger().list("user_100")
    assert [o.code for o in offers] == [first.offer["code"]]


def test_a_new_key_is_a_new_turn(any_settings: Settings) -> None:
    llm = scripted_llm(route("negotiate"), price(12), route("negotiate"), price(14))

    async def body(neg: Negotiator) -> Any:
        await neg.run_turn("s-keys", "user_100", "Any discount?", key="k-1")
        second = await neg.run_turn("s-keys", "user_100", "Any discount?", key="k-2")
        return second, await neg.history("s-keys")

    second, history = _with_negotiator(any_settings, llm, body)
    assert not second.replayed and second.turn == 2 and len(history) == 2


def test_a_retry_overtaken_by_the_next_message_gets_its_own_turn(any_settings: Settings) -> None:
    """A double submit: the retry of the first message arrives after the second one ran."""
    llm = scripted_llm(route("negotiate"), price(12), route("negotiate"), price(14))

    async def body(neg: Negotiator) -> Any:
        first = await neg.run_turn("s-late", "user_100", "Any discount?", key="k-a")
        await neg.run_turn("s-late", "user_100", "A better one?", key="k-b")
        late = await neg.run_turn("s-late", "user_100", "Any discount?", key="k-a")
        return first, late, await neg.history("s-late")

    first, late, history = _with_negotiator(any_settings, llm, body)
    assert late.replayed and late.turn == 1
    assert _same(late.as_json(), first.as_json())  # the offer card of turn 1, its reply
    assert len(history) == 2 and len(llm.chat.calls) == 4


def test_a_key_with_another_message_or_customer_is_refused(any_settings: Settings) -> None:
    llm = scripted_llm(route("respond", reply="Happy to help."), route("respond", reply="Sure."))

    async def body(neg: Negotiator) -> Any:
        await neg.run_turn("s-reuse", "user_100", "hello", key="k-1")
        with pytest.raises(InputError, match="another message"):
            await neg.run_turn("s-reuse", "user_100", "something else", key="k-1")
        with pytest.raises(SessionOwnerError):  # another customer learns nothing
            await neg.run_turn("s-reuse", "user_101", "hello", key="k-1")
        with pytest.raises(InputError, match="malformed idempotency key"):
            await neg.run_turn("s-reuse", "user_100", "hi", key="bad key!")
        await neg.run_turn("s-reuse", "user_100", "and now?", key="k-2")
        return await neg.history("s-reuse")

    assert len(_with_negotiator(any_settings, llm, body)) == 2


def test_a_cut_turn_is_finished_once_and_its_answer_replayed(any_settings: Settings) -> None:
    """The worker died after the message was stored (here: the run stops after the
    router): the retry with the same key finishes that turn and answers with it."""
    llm = scripted_llm(route("negotiate"), price(12))

    async def body(neg: Negotiator) -> Any:
        config = {"configurable": {"thread_id": "s-cut"}}
        message = HumanMessage(content="Any discount?", id=idempotent_message_id("k-cut"))
        async for _ in neg.app.astream(
            {"messages": [message]},
            config,
            context=NegotiationContext(user_id="user_100"),
            stream_mode="updates",
            durability="sync",
        ):
            break  # cut after the first node
        assert (await neg.app.aget_state(config)).next  # unfinished
        retry = await neg.run_turn("s-cut", "user_100", "Any discount?", key="k-cut")
        return retry, await neg.history("s-cut")

    retry, history = _with_negotiator(any_settings, llm, body)
    assert retry.replayed and retry.offer and retry.offer["code"]
    assert len(history) == 1 and history[0]["offer_code"] == retry.offer["code"]
    assert len(llm.chat.calls) == 2
