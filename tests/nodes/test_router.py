"""The router node alone: a hand-built state in, a ``Command`` out (route and update)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from graph.sgr import json_schema_of
from nodes.router import make_router
from nodes.schemas import decision_model
from tests.fakes import route, say, scripted_llm
from tests.nodes.conftest import config, reply_of, run, runtime, said


def _offer(percent: float = 8.0, status: str = "proposed", hours: float = 24) -> dict:
    expires = (datetime.now(UTC) + timedelta(hours=hours)).isoformat()
    return {
        "code": "SGR-AAAAA-BBBBB",
        "discount_percent": percent,
        "status": status,
        "expires_at": expires,
    }


def _route(services, llm, *texts: str, user: str = "user_100", **state):
    node = make_router(services(llm))
    return run(node({"messages": said(*texts), **state}, runtime(user), config()))


def test_a_question_is_answered_by_the_model_in_its_own_words(services) -> None:
    llm = scripted_llm(route("respond", reply="We ship within two working days."))
    cmd = _route(services, llm, "How long does shipping take?")
    assert cmd.goto == "__end__"
    assert reply_of(cmd) == "We ship within two working days."
    assert cmd.update["route"] == "respond" and cmd.update["user_id"] == "user_100"
    assert cmd.update["turn"] == 1


def test_a_grounded_ask_goes_to_retrieval_with_the_stated_percent(services) -> None:
    llm = scripted_llm(route("negotiate", requested_percent=15))
    cmd = _route(services, llm, "Could you do 15% off?")
    assert cmd.goto == "retrieval"
    assert cmd.update["route"] == "negotiate" and cmd.update["requested_percent"] == 15


def test_an_ungrounded_negotiate_gets_a_hand_off_not_an_invitation(services) -> None:
    llm = scripted_llm(route("negotiate", quote="Is there a warranty on the coffee machine"))
    cmd = _route(services, llm, "Is there a warranty on the coffee machine?")
    assert cmd.goto == "__end__" and reply_of(cmd) == say("question")
    assert "discount" not in reply_of(cmd).lower()
    assert "no concession cue" in cmd.update["audit"][-1]["policy"]["grounding"]


def test_a_request_that_only_quotes_a_discount_is_not_an_ask(services) -> None:
    text = "Translate to French: 'You get 50% off, code SAVE50'"
    llm = scripted_llm(route("negotiate"))
    cmd = _route(services, llm, text)
    assert cmd.goto == "__end__"
    assert "quotes a discount" in cmd.update["audit"][-1]["policy"]["grounding"]


def test_an_acceptance_of_the_standing_offer_goes_to_accept(services) -> None:
    llm = scripted_llm(route("accept_offer"))
    cmd = _route(services, llm, "Deal!", standing_offer=_offer(), offers=[_offer()])
    assert cmd.goto == "accept" and cmd.update["route"] == "accept_offer"


def test_accept_offer_with_a_counter_is_priced_as_a_counter(services) -> None:
    llm = scripted_llm(route("accept_offer"))
    cmd = _route(services, llm, "Not enough, I need 25%.", standing_offer=_offer())
    assert cmd.goto == "retrieval" and cmd.update["requested_percent"] == 25


def test_accept_offer_without_words_of_acceptance_asks_to_confirm(services) -> None:
    llm = scripted_llm(route("accept_offer"))
    cmd = _route(services, llm, "Where is my parcel?", standing_offer=_offer())
    assert cmd.goto == "__end__"
    assert reply_of(cmd) == say("confirm_accept", percent="8")


def test_fragments_and_echoes_of_the_model_get_the_shops_words(services) -> None:
    for reply, text in (
        ("anything else", "Do these sneakers run small?"),
        ("Do these sneakers run small?", "Do these sneakers run small?"),
        ("A: No, I'm not able to provide you with a price.", "Do these sneakers run small?"),
    ):
        cmd = _route(services, scripted_llm(route("respond", reply=reply)), text)
        assert reply_of(cmd) == say("question"), reply


def test_thanks_and_goodbye_get_a_closing_line(services) -> None:
    llm = scripted_llm(route("respond", reply="thanks"))
    cmd = _route(services, llm, "thanks, that's all for now")
    assert reply_of(cmd) == say("closing")


def test_no_identity_or_another_owner_is_refused_without_the_model(services) -> None:
    llm = scripted_llm()
    cmd = _route(services, llm, "hi", user="")
    assert cmd.goto == "__end__" and "no customer identity" in cmd.update["error"]
    cmd = _route(services, llm, "hi", user="user_101", user_id="user_100")
    assert reply_of(cmd) == say("session_conflict")
    assert llm.chat.calls == []


def test_a_model_that_fails_twice_leaves_the_fallback(services) -> None:
    cmd = _route(services, scripted_llm('{"analysis": 1}', "{}"), "hi")
    assert cmd.goto == "__end__" and cmd.update["status"] == "fallback"
    assert reply_of(cmd) == say("fallback") and cmd.update["error"]


def test_the_limit_of_turns_closes_without_the_model(services) -> None:
    llm = scripted_llm()
    node = make_router(services(llm, max_turns=2))
    cmd = run(node({"messages": said("hi"), "turn": 2}, runtime(), config()))
    assert cmd.update["status"] == "closed" and "limit of 2" in reply_of(cmd)
    assert llm.chat.calls == []


def test_the_schema_sent_is_the_model_validated(services) -> None:
    llm = scripted_llm(route("respond", reply="We open at nine every day."))
    _route(services, llm, "When do you open, or is there a deal?")
    sent = llm.chat.calls[0]["schema"]
    model = decision_model(["negotiate", "respond"], ("When do you open", "is there a deal"))
    assert sent == json_schema_of(model)
    quote = sent["$defs"]["Negotiate"]["properties"]["quote"]
    assert quote["enum"] == ["When do you open", "is there a deal"]


@pytest.mark.parametrize(
    ("text", "model", "stands", "goto", "ask"),
    [
        # asks the model answered as questions: the code hears them
        ("I need a discount, otherwise I'm leaving.", route("respond", reply="Okay."), False,
         "retrieval", None),
        ("Any chance of the price they had last weekend?", route("respond"), False,
         "retrieval", None),
        ("Gib mir Rabatt, bitte!", route("respond", reply="Sehr gerne."), False, "retrieval",
         None),
        ("That's too low. Could you make it 14?", route("respond", reply="Sure thing."), True,
         "retrieval", 14),
        ("Not enough, 30% or I'm gone.", route("respond", reply="Okay then."), True,
         "retrieval", 30),
        # one-word acceptances of the standing offer, whatever the model said
        ("Deal!", route("negotiate", quote="Deal"), True, "accept", None),
        ("Perfect, apply it please.", route("respond", reply="Great."), True, "accept", None),
        # questions stay questions; an order matter with a discount word is the model's call
        ("Any deal on the blue one?", route("respond", reply="We can look into it."), True,
         "retrieval", None),
        ("My discounted kettle arrived broken, can I return it?",
         route("respond", reply="Yes, returns are free within thirty days."), False, "__end__",
         None),
        ("Write a short poem about a 40% off sale.", route("negotiate"), False, "__end__", None),
    ],
)  # fmt: skip
def test_the_code_hears_plain_asks_and_acceptances(services, text, model, stands, goto, ask):
    state = {"standing_offer": _offer(), "offers": [_offer()]} if stands else {}
    cmd = _route(services, scripted_llm(model), text, **state)
    assert cmd.goto == goto, reply_of(cmd) if cmd.goto == "__end__" else cmd.update
    if goto == "retrieval":
        assert cmd.update["requested_percent"] == ask


def test_a_dead_end_refusal_gets_the_hand_off(services) -> None:
    llm = scripted_llm(route("respond", reply="I'm sorry, I'm unable to assist you with that."))
    cmd = _route(services, llm, "Where is my order?")
    assert reply_of(cmd) == say("question") and "My orders" in reply_of(cmd)


def test_a_hello_gets_a_greeting_and_rounds_spent_get_the_final_word(services) -> None:
    llm = scripted_llm(route("respond", reply="hi"))
    assert reply_of(_route(services, llm, "Hi there!")) == say("greeting")
    spent = {"standing_offer": _offer(11.5), "pricing_rounds": 3, "offers": [_offer(11.5)]}
    cmd = _route(services, scripted_llm(route("accept_offer")), "Last try, go higher.", **spent)
    assert reply_of(cmd) == say("final_offer", percent="11.5", code="SGR-AAAAA-BBBBB")


def test_a_dead_end_above_an_offer_is_replaced() -> None:
    from nodes.guard import guarded_message

    assert guarded_message("I'm unable to assist with the price of the item.", 1) is None
