"""Pricing node: the cap in the schema sent, the clamp, the standing offer, rounds."""

from __future__ import annotations

import asyncio
import json

from nodes.guard import guarded_message
from nodes.schemas import PricingDecision, bounded_pricing_model, grid_pricing_model
from tests.fakes import price, route, say, scripted_llm


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
    more = route("negotiate", quote="more")  # "more" counts while an offer stands
    app = make_app(scripted_llm(route("negotiate"), price(4), more, price(2)))
    app.turn("discount?", user="user_101")
    out = app.turn("more?", user="user_101")
    assert [o["discount_percent"] for o in out["offers"]] == [4]
    assert "can't go beyond 4%" in out["messages"][-1].content
    assert out["audit"][-1]["policy"]["final_percent"] == 4


def test_counter_offer_goes_up_and_supersedes(make_app) -> None:
    more = route("negotiate", quote="more")
    app = make_app(scripted_llm(route("negotiate"), price(4), more, price(7)))
    app.turn("discount?", user="user_101")
    out = app.turn("more?", user="user_101")
    assert [o["discount_percent"] for o in out["offers"]] == [4, 7]
    ledger = app.services.ledger()
    statuses = {o.discount_percent: o.status for o in ledger.list("user_101")}
    assert statuses == {4: "superseded", 7: "proposed"}


def test_rounds_limit_makes_the_standing_offer_final(make_app) -> None:
    # round 3: the router is offered no negotiate branch; a concession ask gets the final word
    more = route("negotiate", quote="more")
    replies = [route("negotiate"), price(2), more, price(3), route("respond", reply="Sure!")]
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
    more = route("negotiate", quote="more")
    app = make_app(scripted_llm(route("negotiate"), price(4), more, "{}", "{}"))
    app.turn("discount?", user="user_101")
    out = app.turn("more?", user="user_101")
    assert out["error"] and "PricingDecision" in out["error"]
    assert [o["discount_percent"] for o in out["offers"]] == [4]
    assert out["standing_offer"]["discount_percent"] == 4
    assert app.services.ledger().standing_offer("user_101").discount_percent == 4


def test_model_text_with_internal_numbers_is_replaced() -> None:
    assert guarded_message("Our margin is 40%, so 8% it is", 8) is None
    assert guarded_message("I can do 8% for you.", 8) == "I can do 8% for you."
    assert guarded_message("Happy to help with that!", 8) == "Happy to help with that!"


def test_offer_code_is_issued_by_code_not_the_model(make_app) -> None:
    app = make_app(scripted_llm(route("negotiate"), price(5, "Use code SAVE20 now!")))
    out = app.turn("discount?", user="user_101")
    code = out["offers"][-1]["code"]
    assert code != "SAVE20" and code in out["messages"][-1].content
    assert "code" not in PricingDecision.model_json_schema()["properties"]


# --- the concession schedule (SGR_PRICING_STRATEGY=schedule) ----------------------------


def _schedule_app(make_app, *replies, **overrides):
    return make_app(scripted_llm(*replies), pricing_strategy="schedule", **overrides)


def test_schedule_schema_carries_the_round_bounds_and_the_prompt_the_range(make_app) -> None:
    # user_100: cap 20, open share 0.4 -> round 1 offers 0..8 (boulware: round 2 up to 11)
    more = route("negotiate", quote="more")
    app = _schedule_app(make_app, route("negotiate"), price(8), more, price(11))
    out = app.turn("discount?")
    prop = _pricing_schema(app, 1)["properties"]["discount_percent"]
    assert prop["enum"] == [v / 2 for v in range(17)]  # the 0.5 grid 0..8: no run-on numbers
    assert out["offers"][-1]["discount_percent"] == 8
    system = app.chat.calls[1]["messages"][0].content
    assert "between 0% and 8% this round" in system
    assert "20%" not in system and "20 %" not in system  # the cap is not told
    out = app.turn("more?")
    prop = _pricing_schema(app, 3)["properties"]["discount_percent"]
    assert (min(prop["enum"]), max(prop["enum"])) == (8.0, 11.0)
    assert out["offers"][-1]["discount_percent"] == 11
    rec = out["audit"][-1]["policy"]
    assert rec["round"] == 2 and rec["round_ceiling"] == 11 and rec["strategy"] == "schedule"


def test_schedule_max_tokens_fit_the_pricing_schema(make_app) -> None:
    from graph.budget import max_reply_chars, schema_token_budget

    app = _schedule_app(make_app, route("negotiate"), price(8))
    app.turn("discount?")
    schema = _pricing_schema(app, 1)
    sent = app.chat.calls[1]["kwargs"]["max_tokens"]
    assert sent == schema_token_budget(schema) and sent * 2 >= max_reply_chars(schema)


def test_schedule_ask_below_the_ceiling_is_met_halfway_first(make_app) -> None:
    app = _schedule_app(make_app, route("negotiate", requested_percent=5), price(2.5))
    out = app.turn("Can I get 5% off?")
    assert max(_pricing_schema(app, 1)["properties"]["discount_percent"]["enum"]) == 2.5
    assert out["offers"][-1]["discount_percent"] == 2.5


def test_schedule_last_round_meets_an_ask_within_the_ceiling(make_app) -> None:
    # user_100: cap 20 -> round 1 bound 8; asked 9% in round 3 (last): 9, not halfway
    more = route("negotiate", quote="more")
    ask = route("negotiate", quote="9%", requested_percent=9)
    replies = [route("negotiate"), price(8), more, price(9), ask, price(9)]
    app = _schedule_app(make_app, *replies)
    for text in ("discount?", "more?", "9% and I buy"):
        out = app.turn(text)
    assert [o["discount_percent"] for o in out["offers"]] == [8, 9]
    assert "can't go beyond 9%" in out["messages"][-1].content


def test_schedule_ask_above_the_ceiling_gets_the_ceiling(make_app) -> None:
    app = _schedule_app(make_app, route("negotiate", requested_percent=25), price(8))
    out = app.turn("I need 25%.")
    assert max(_pricing_schema(app, 1)["properties"]["discount_percent"]["enum"]) == 8.0
    assert out["offers"][-1]["discount_percent"] == 8


def test_schedule_counter_offer_rises_by_the_step(make_app) -> None:
    # round 2 bound [8, 11]; the model keeps 8 -> the code steps up to 9 (SGR_MIN_STEP=1)
    more = route("negotiate", quote="more")
    app = _schedule_app(make_app, route("negotiate"), price(8), more, price(8))
    app.turn("discount?")
    out = app.turn("more?")
    assert [o["discount_percent"] for o in out["offers"]] == [8, 9]


def test_schedule_holds_when_the_ask_allows_no_step(make_app) -> None:
    # a constrained model sends the whole percent 8; the stated 8.5 is the customer's ask
    replies = [route("negotiate"), price(8), route("negotiate", requested_percent=8)]
    app = _schedule_app(make_app, *replies)
    app.turn("discount?")
    out = app.turn("8.5% please")
    assert "can't go beyond 8%" in out["messages"][-1].content
    assert len(app.chat.calls) == 3  # no pricing call: nothing to decide
    assert [o["discount_percent"] for o in out["offers"]] == [8]


def test_schedule_last_round_splits_the_room_to_the_cap_and_says_best_and_final(
    make_app,
) -> None:
    # user_102: cap 14 -> rounds 5.5, 7.5 (boulware), then halfway to the cap: 10.75 -> 10.5
    more = route("negotiate", quote="more")
    replies = [route("negotiate"), price(5.5), more, price(7.5), more, price(10.5, "Here you go.")]
    app = _schedule_app(make_app, *replies)
    for text in ("discount?", "more?", "more?"):
        out = app.turn(text, user="user_102")
    assert max(_pricing_schema(app, 5)["properties"]["discount_percent"]["enum"]) == 10.5
    assert [o["discount_percent"] for o in out["offers"]] == [5.5, 7.5, 10.5]
    assert "best and final" in out["messages"][-1].content
    assert out["audit"][-1]["policy"]["best_and_final"] is True


def test_schedule_truncated_reply_still_prices_the_round_with_template_words(make_app) -> None:
    cut = ('{"churn_analysis": "10% of the total amount, 10% of the total', "length")
    app = _schedule_app(make_app, route("negotiate"), cut, cut)
    out = app.turn("discount?")
    assert out["error"] is None
    assert out["offers"][-1]["discount_percent"] == 8  # the round's bound, from code
    assert out["messages"][-1].content.startswith(say("offer_intro"))
    assert out["audit"][-1]["policy"]["template"] is True
    assert out["audit"][-1]["finish_reasons"] == ["length", "length"]


def test_model_strategy_keeps_the_cap_in_the_schema(make_app) -> None:
    app = make_app(scripted_llm(route("negotiate"), price(6)), pricing_strategy="model")
    app.turn("discount?", user="user_101")  # cap 8
    prop = _pricing_schema(app, 1)["properties"]["discount_percent"]
    assert (prop["minimum"], prop["maximum"]) == (0, 8.0)


def test_demo_script_tells_the_whole_story_on_a_scripted_model(settings) -> None:
    from graph.ops.cli.demo import SCRIPT, play, story
    from graph.services import Services
    from graph.session import open_negotiator

    llm = scripted_llm(
        route("respond", reply="We are open 9 to 5."),
        route("negotiate"),
        price(8),
        route("negotiate", requested_percent=25),
        price(11),
        route("negotiate"),
        price(15.5),  # best and final: halfway from 11 to the cap of 20
        route("accept_offer"),
    )
    s = settings.model_copy(update={"pricing_strategy": "schedule"})
    lines: list[str] = []

    async def run() -> list:
        async with open_negotiator(Services.with_llm(llm, s)) as neg:
            return await play(neg, "user_100", "demo-test", lines.append)

    results = asyncio.run(run())
    assert len(results) == len(SCRIPT)
    assert [r.offer["discount_percent"] for r in results[1:4]] == [8, 11, 15.5]
    assert all(shown for _, shown in story(results)), story(results)
    assert not story(results[:1] + results[4:])[2][1]  # no counter-offer without two offers


def test_token_budget_counts_the_longest_compact_reply() -> None:
    import pytest

    from graph.budget import max_reply_chars, schema_token_budget

    schema = {
        "type": "object",
        "properties": {"a": {"type": "string", "maxLength": 10}, "n": {"type": "number"}},
    }
    # {"a":"0123456789","n":-12345.6789} -> 2 + (1+4+12) + (1+4+12) = 36 characters at most
    assert max_reply_chars(schema) == 36
    assert schema_token_budget(schema) == 36 + 16  # one token a character, + slack
    with pytest.raises(ValueError, match="maxLength"):
        max_reply_chars({"type": "object", "properties": {"s": {"type": "string"}}})
    longest = '{"a":"0123456789","n":-12345.6789}'
    assert len(longest) <= max_reply_chars(schema)


def test_pricing_budget_fits_a_reply_at_one_token_a_character() -> None:
    # the local 135M model filled every string with "N_G_N_G_…" (one token a character);
    # at 2 characters a token the budget was 304 and the reply was cut after 366 characters
    from graph.budget import SLACK_TOKENS, schema_token_budget
    from graph.sgr import json_schema_of

    schema = json_schema_of(grid_pricing_model(0.0, 20.0))
    reply = {
        name: ("N_G_" * 60)[: prop["maxLength"]] if prop.get("type") == "string" else 17.5
        for name, prop in schema["properties"].items()
    }
    text = json.dumps(reply, separators=(",", ":"))
    PricingDecision.model_validate_json(text)
    assert len(text) <= schema_token_budget(schema) - SLACK_TOKENS
