"""Router node through the graph API: each branch, invalid JSON, repair, fallback."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import AIMessage

from nodes.router import RouterDecision
from nodes.shared import FALLBACK_REPLY
from tests.fakes import price, route, scripted_llm


def test_router_schema_requires_the_discriminator_and_bounds_strings() -> None:
    schema = RouterDecision.model_json_schema()
    assert schema["required"] == ["analysis", "decision"]
    assert list(schema["properties"]) == ["analysis", "decision"]  # think first, then act
    assert schema["properties"]["analysis"]["maxLength"] == 160
    for name in ("Negotiate", "AcceptOffer", "Respond"):
        branch = schema["$defs"][name]
        assert next(iter(branch["properties"])) == "action"
        assert "action" in branch["required"]
        assert "default" not in branch["properties"]["action"]
    assert schema["$defs"]["Respond"]["properties"]["reply"]["maxLength"] == 300
    assert "user_id" not in json.dumps(schema)  # identity never comes from the model


def test_respond_branch_replies_without_touching_stores(make_app) -> None:
    app = make_app(scripted_llm(route("respond", reply="We open at 9.")))
    out = app.turn("What are your opening hours?")
    assert out["route"] == "respond"
    assert out["messages"][-1].content == "We open at 9."
    assert out.get("features") is None and out.get("offers", []) == []
    assert len(app.chat.calls) == 1


def test_negotiate_branch_goes_through_retrieval_and_pricing(make_app) -> None:
    app = make_app(scripted_llm(route("negotiate", requested_percent=25), price(8)))
    out = app.turn("That's too little, I need 25%.")
    assert out["route"] == "negotiate"
    assert out["requested_percent"] == 25
    assert out["features"]["user_id"] == "user_100"
    assert out["offers"][-1]["discount_percent"] == 8
    assert "25%" in app.chat.calls[1]["messages"][0].content  # the ask reaches pricing


def test_accept_branch_without_offer_says_so(make_app) -> None:
    app = make_app(scripted_llm(route("accept_offer")))
    out = app.turn("Alright, I accept.")
    assert out["route"] == "accept_offer"
    assert "no offer" in out["messages"][-1].content.lower()


def test_invalid_json_is_repaired_once(make_app) -> None:
    app = make_app(
        scripted_llm(
            '{"analysis": "x", "decision": {"action": "dance"}}', route("respond", reply="Hello!")
        )
    )
    out = app.turn("hi")
    assert out["messages"][-1].content == "Hello!"
    rec = out["audit"][-1]
    assert rec["repairs"] == 1 and len(rec["errors"]) == 1
    repair_prompt = app.chat.calls[1]["messages"][-1].content
    assert "invalid" in repair_prompt and "decision" in repair_prompt


def test_two_invalid_replies_fall_back_politely(make_app) -> None:
    app = make_app(scripted_llm('{"analysis": 1}', '{"decision": null}'))
    out = app.turn("hi")
    assert out["messages"][-1].content == FALLBACK_REPLY
    assert out["error"] and "RouterDecision" in out["error"]
    assert out["audit"][-1]["repairs"] == 1 and out["audit"][-1]["parsed"] is None


def test_truncated_reply_counts_as_failed_decode(make_app) -> None:
    app = make_app(scripted_llm(('{"analysis": "   ', "length"), route("respond", reply="Hi")))
    out = app.turn("hi")
    assert out["messages"][-1].content == "Hi"
    assert "finish_reason=length" in out["audit"][-1]["errors"][0]


def test_prose_reply_means_constraint_not_enforced(make_app) -> None:
    app = make_app(scripted_llm("Sure! I'd be happy to help."))
    out = app.turn("hi")
    assert out["messages"][-1].content == FALLBACK_REPLY
    assert "constraint not enforced" in out["error"]


@pytest.mark.parametrize("text", ["", "   \n\t"])
def test_empty_message_never_reaches_the_model(make_app, text: str) -> None:
    app = make_app(scripted_llm())
    out = app.turn(text)
    assert out["error"] == "the message is empty"
    assert app.chat.calls == []
    assert isinstance(out["messages"][-1], AIMessage)


def test_overlong_message_never_reaches_the_model(make_app) -> None:
    app = make_app(scripted_llm(), max_message_chars=50)
    out = app.turn("x" * 51)
    assert "limit is 50" in out["error"]
    assert app.chat.calls == []


def test_missing_identity_is_refused(make_app) -> None:
    app = make_app(scripted_llm())
    out = app.turn("discount please", user="")
    assert "no customer identity" in out["error"]
    assert app.chat.calls == []


def test_router_sees_the_standing_offer_not_customer_data(make_app) -> None:
    app = make_app(scripted_llm(route("negotiate"), price(6), route("respond", reply="ok")))
    app.turn("discount?")
    app.turn("what now?")
    system = app.chat.calls[2]["messages"][0].content
    assert "6% is on the table" in system
    assert "0.85" not in system and "margin" not in system.lower().replace("margins", "")
