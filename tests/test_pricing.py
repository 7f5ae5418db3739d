"""Pricing node: the cap in the schema sent, the clamp, the standing offer, rounds."""

from __future__ import annotations

from nodes.pricing import PricingDecision, bounded_pricing_model
from nodes.shared import safe_customer_message
from tests.fakes import price, route, scripted_llm


def _pricing_schema(app, call_index: int) -> dict:
    return app.chat.calls[call_index]["kwargs"]["extra_body"]["structured_outputs"]["json"]


def test_cascade_order_and_bounds() -> None:
    schema = PricingDecision.model_json_schema()
    assert list(schema["properties"]) == [
        "churn_analysis",
        "financial_analysis",
        "margin_math",
        "negotiation_position",
        "discount_percent",
        "customer_message",
    ]
    assert all(
        p.get("maxLength") for k, p in schema["properties"].items() if p.get("type") == "string"
    )
    bounded = bounded_pricing_model(7.5).model_json_schema()
    assert bounded["properties"]["discount_percent"] == {
        "maximum": 7.5,
        "minimum": 0,
        "title": "Discount Percent",
        "type": "number",
    }
    assert list(bounded["properties"]) == list(schema["properties"])


def test_schema_sent_carries_the_customers_cap(make_app) -> None:
    app = make_app(scripted_llm(route("negotiate"), price(3)))
    app.turn("discount?", user="user_105")  # cap 5%
    prop = _pricing_schema(app, 1)["properties"]["discount_percent"]
    assert prop["maximum"] == 5.0 and prop["minimum"] == 0


def test_reply_above_cap_is_rejected_then_clamped_never_issued(make_app) -> None:
    # 40% violates maximum 20 -> one repair; the repaired 12% is issued
    app = make_app(scripted_llm(route("negotiate"), price(40), price(12)))
    out = app.turn("discount?")
    assert out["audit"][-1]["repairs"] == 1
    assert out["offers"][-1]["discount_percent"] == 12


def test_clamp_is_applied_in_code_even_if_validation_passed(make_app, monkeypatch) -> None:
    import nodes.pricing as pricing

    monkeypatch.setattr(pricing, "bounded_pricing_model", lambda high, low=0.0: PricingDecision)
    app = make_app(scripted_llm(route("negotiate"), price(12)))
    out = app.turn("discount?", user="user_105")  # cap 5
    assert out["offers"][-1]["discount_percent"] == 5.0
    assert out["audit"][-1]["policy"]["clamped"] is True


def test_never_below_the_standing_offer(make_app) -> None:
    app = make_app(scripted_llm(route("negotiate"), price(4), route("negotiate"), price(2)))
    app.turn("discount?", user="user_101")
    out = app.turn("more?", user="user_101")
    assert [o["discount_percent"] for o in out["offers"]] == [4]
    assert "can't go beyond 4%" in out["messages"][-1].content
    assert out["audit"][-1]["policy"]["final_percent"] == 4


def test_counter_offer_goes_up_and_supersedes(make_app) -> None:
    app = make_app(scripted_llm(route("negotiate"), price(4), route("negotiate"), price(7)))
    app.turn("discount?", user="user_101")
    out = app.turn("more?", user="user_101")
    assert [o["discount_percent"] for o in out["offers"]] == [4, 7]
    ledger = app.services.ledger()
    statuses = {o.discount_percent: o.status for o in ledger.list("user_101")}
    assert statuses == {4: "superseded", 7: "proposed"}


def test_rounds_limit_makes_the_standing_offer_final(make_app) -> None:
    replies = [route("negotiate"), price(2), route("negotiate"), price(3), route("negotiate")]
    app = make_app(scripted_llm(*replies), max_rounds=2)
    app.turn("discount?", user="user_101")
    app.turn("more?", user="user_101")
    out = app.turn("more!!", user="user_101")
    assert out["pricing_rounds"] == 2
    assert "3% with code" in out["messages"][-1].content and "final" in out["messages"][-1].content
    assert len(app.chat.calls) == 5  # no pricing call in round 3


def test_critical_stock_gets_no_discount_and_no_model_call(make_app) -> None:
    app = make_app(scripted_llm(route("negotiate")))
    out = app.turn("discount?", user="user_106")
    assert out["cap"]["cap_percent"] == 0
    assert "can't offer a discount" in out["messages"][-1].content
    assert len(app.chat.calls) == 1 and out.get("offers", []) == []


def test_pricing_fallback_keeps_offers_untouched(make_app) -> None:
    app = make_app(scripted_llm(route("negotiate"), price(4), route("negotiate"), "{}", "{}"))
    app.turn("discount?", user="user_101")
    out = app.turn("more?", user="user_101")
    assert out["error"] and "PricingDecision" in out["error"]
    assert [o["discount_percent"] for o in out["offers"]] == [4]
    assert out["standing_offer"]["discount_percent"] == 4
    assert app.services.ledger().standing_offer("user_101").discount_percent == 4


def test_model_text_with_internal_numbers_is_replaced() -> None:
    assert safe_customer_message("Our margin is 40%, so 8% it is", 8).startswith("Thanks")
    assert safe_customer_message("I can do 8% for you", 8) == "I can do 8% for you"
    assert safe_customer_message("Happy to help!", 8) == "Happy to help!"


def test_offer_code_is_issued_by_code_not_the_model(make_app) -> None:
    app = make_app(scripted_llm(route("negotiate"), price(5, "Use code SAVE20 now!")))
    out = app.turn("discount?", user="user_101")
    code = out["offers"][-1]["code"]
    assert code != "SAVE20" and code in out["messages"][-1].content
    assert "code" not in PricingDecision.model_json_schema()["properties"]
