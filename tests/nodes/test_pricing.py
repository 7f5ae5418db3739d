"""The pricing node alone: the round's schema, the code's clamp, the proposal or a reply."""

from __future__ import annotations

from graph.sgr import json_schema_of
from nodes.pricing import make_pricing
from nodes.schemas import grid_pricing_model
from tests.fakes import price, say, scripted_llm
from tests.nodes.conftest import config, features_of, reply_of, run, runtime, said


def _price(services, llm, text: str = "Can I get a discount?", user: str = "user_100", **state):
    svc = services(llm, pricing_strategy="schedule")
    node = make_pricing(svc)
    full = {"messages": said(text), "user_id": user, "turn": 1, **features_of(svc, user), **state}
    return run(node(full, runtime(user), config()))


def test_round_one_proposes_within_the_schedule(services) -> None:
    llm = scripted_llm(price(8, "Here is something for you today."))
    cmd = _price(services, llm)
    assert cmd.goto == "offer"
    p = cmd.update["proposal"]
    assert p["discount_percent"] == 8 and p["cap_percent"] == 20 and p["amount"] == 19.2
    assert p["message"] == "Here is something for you today."
    assert p["approval_reasons"] == [] and cmd.update["pricing_rounds"] == 1
    # the schema the server enforced is the model the reply was validated against
    assert llm.chat.calls[0]["schema"] == json_schema_of(grid_pricing_model(0.0, 8.0))


def test_a_percent_above_the_round_never_validates(services) -> None:
    # 12 is not on round one's grid (0..8): repaired, then the schedule prices the round
    cmd = _price(services, scripted_llm(price(12), price(12)))
    assert cmd.goto == "offer" and cmd.update["proposal"]["discount_percent"] == 8
    assert cmd.update["proposal"]["message"] == say("offer_intro")
    assert cmd.update["audit"][-1]["policy"]["template"] is True


def test_words_leaking_internal_figures_are_replaced(services) -> None:
    cmd = _price(services, scripted_llm(price(8, "Your churn risk earns you 8%.")))
    assert cmd.update["proposal"]["message"] == say("offer_intro")


def test_spent_rounds_end_with_the_final_word(services) -> None:
    llm = scripted_llm()
    standing = {"code": "SGR-AAAAA-BBBBB", "discount_percent": 11.0}
    cmd = _price(services, llm, pricing_rounds=3, standing_offer=standing)
    assert cmd.goto == "__end__" and cmd.update["status"] == "final"
    assert reply_of(cmd) == say("final_offer", percent="11", code="SGR-AAAAA-BBBBB")
    assert llm.chat.calls == []


def test_no_room_above_the_standing_offer_holds_it(services) -> None:
    standing = {"code": "SGR-AAAAA-BBBBB", "discount_percent": 20.0}
    cmd = _price(services, scripted_llm(), standing_offer=standing)
    assert cmd.goto == "__end__"
    assert "can't go beyond 20%" in reply_of(cmd)


def test_model_strategy_falls_back_when_the_model_fails(services) -> None:
    svc = services(scripted_llm("{}", "{}"), pricing_strategy="model")
    state = {
        "messages": said("discount?"),
        "user_id": "user_100",
        "turn": 1,
        **features_of(svc, "user_100"),
    }
    cmd = run(make_pricing(svc)(state, runtime(), config()))
    assert cmd.goto == "__end__" and cmd.update["status"] == "fallback"
