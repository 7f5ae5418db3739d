"""Offer node and manager approval with interrupt(): approve, approve lower, reject, crash."""

from __future__ import annotations

from graph.services import Services
from graph.session import open_negotiator
from tests.fakes import price, route, scripted_llm


def _pending(app, session: str = "s1") -> dict:
    snap = app.state(session)
    return snap.tasks[0].interrupts[0].value


def test_small_offer_needs_no_approval(make_app) -> None:
    app = make_app(scripted_llm(route("negotiate"), price(12)))
    out = app.turn("discount?")  # user_100, cart 240: 12% = 28.80
    assert "__interrupt__" not in out
    assert out["status"] == "proposed"
    assert app.services.ledger().get(out["offers"][-1]["code"]).decided_by is None


def test_offer_above_threshold_pauses_with_the_reasoning(make_app) -> None:
    app = make_app(scripted_llm(route("negotiate"), price(19)))
    out = app.turn("discount?")
    assert out["__interrupt__"]
    req = _pending(app)
    assert req["proposed_percent"] == 19 and req["cap_percent"] == 20
    assert req["user_id"] == "user_100" and req["cart_value"] == 240
    assert "approval threshold" in req["reasons"][0]
    assert req["reasoning"]["churn_analysis"] == "likely to leave"
    assert req["no_approval_percent"] == 15
    pending = app.services.ledger().get(req["code"])
    assert pending.status == "approval_pending"
    assert app.services.ledger().standing_offer("user_100") is None  # not usable yet


def test_approve_issues_the_proposed_offer(make_app) -> None:
    app = make_app(scripted_llm(route("negotiate"), price(19)))
    app.turn("discount?")
    out = app.resume({"decision": "approve", "approver": "ann"})
    offer = out["offers"][-1]
    assert offer["discount_percent"] == 19 and offer["status"] == "proposed"
    assert offer["decided_by"] == "ann"
    assert "19% off" in out["messages"][-1].content
    assert len(app.chat.calls) == 2  # resuming did not call the model again


def test_approve_lower_percent(make_app) -> None:
    app = make_app(scripted_llm(route("negotiate"), price(19)))
    app.turn("discount?")
    out = app.resume({"decision": "approve", "percent": 16.7})
    assert out["offers"][-1]["discount_percent"] == 16.5


def test_invalid_resume_values_re_ask_and_never_wedge(make_app) -> None:
    """Defect 5: through the graph API (as Studio/SDK resume), without any pre-check."""
    app = make_app(scripted_llm(route("negotiate"), price(19)))
    app.turn("discount?")
    code = _pending(app)["code"]
    bad_values = [
        ({"decision": "approve", "percent": 20}, "within 0..19"),
        ("garbage", "approve or reject"),
        ({"decision": "approve", "percent": "x"}, "must be a number"),
        (42, "approve or reject"),
    ]
    for bad, error in bad_values:
        out = app.resume(bad)
        assert "__interrupt__" in out
        req = _pending(app)
        assert req["code"] == code and error in req["error"]
    assert app.services.ledger().get(code).status == "approval_pending"
    out = app.resume({"decision": "reject", "approver": "bob"})
    assert "__interrupt__" not in out
    assert app.services.ledger().get(code).status == "rejected"
    assert out["offers"][-1]["discount_percent"] == 15
    assert app.services.ledger().violations() == []


def test_invalid_then_valid_approval_issues_the_offer(make_app) -> None:
    app = make_app(scripted_llm(route("negotiate"), price(19)))
    app.turn("discount?")
    app.resume({"decision": "approve", "percent": 25})
    assert "within 0..19" in _pending(app)["error"]
    out = app.resume({"decision": "approve", "percent": 17, "approver": "ann"})
    offer = out["offers"][-1]
    assert (offer["discount_percent"], offer["status"], offer["decided_by"]) == (
        17,
        "proposed",
        "ann",
    )
    assert offer["code"] in out["messages"][-1].content


def test_reject_gives_the_highest_offer_needing_no_approval(make_app) -> None:
    app = make_app(scripted_llm(route("negotiate"), price(19)))
    out0 = app.turn("discount?")
    code = _pending(app)["code"]
    out = app.resume({"decision": "reject", "approver": "bob"})
    assert out["offers"][-1]["discount_percent"] == 15
    ledger = app.services.ledger()
    assert ledger.get(code).status == "rejected" and ledger.get(code).decided_by == "bob"
    assert ledger.standing_offer("user_100").discount_percent == 15
    assert out0["turn"] == out["turn"]


def test_amount_threshold_triggers_approval(make_app) -> None:
    app = make_app(scripted_llm(route("negotiate"), price(14)))
    app.turn("discount?", user="user_109")  # cart 800: 14% = 112 > 100
    req = _pending(app)
    assert any("approval amount" in r for r in req["reasons"])
    out = app.resume("reject", user="user_109")
    assert out["offers"][-1]["discount_percent"] == 12.5  # 100 / 800


async def test_pending_approval_survives_a_new_process(any_settings) -> None:
    settings = any_settings
    llm = scripted_llm(route("negotiate"), price(19))
    async with open_negotiator(Services.with_llm(llm, settings)) as first:
        result = await first.run_turn("s-crash", "user_100", "discount or I leave")
        assert result.status == "approval_pending" and result.offer["code"] is None
    # "crash": everything above is gone; a new process with a new saver and no model
    async with open_negotiator(Services.with_llm(scripted_llm(), settings)) as second:
        assert (await second.pending_approval("s-crash"))["proposed_percent"] == 19
        done = await second.resume("s-crash", {"decision": "approve", "percent": 17})
    assert done.offer["discount_percent"] == 17 and done.offer["code"]
    assert done.status == "proposed"
    offers = second.services.ledger().list("user_100")
    assert [(o.discount_percent, o.status) for o in offers] == [(17, "proposed")]


def test_proposal_that_expired_while_pending_is_not_issued(make_app) -> None:
    app = make_app(scripted_llm(route("negotiate"), price(19)), offer_ttl_hours=1e-9)
    app.turn("discount?")
    code = _pending(app)["code"]
    out = app.resume({"decision": "approve"})
    assert "no longer open (expired)" in out["messages"][-1].content
    assert out["status"] == "expired"
    assert app.services.ledger().get(code).status == "expired"
    assert out.get("offers", []) == []


def test_reply_never_repeats_a_percent_the_ledger_did_not_issue(make_app) -> None:
    """Approved lower (or a fallback): the model's "19%" must not reach the customer."""
    app = make_app(scripted_llm(route("negotiate"), price(19, "I can give you 19% off.")))
    app.turn("discount?")
    out = app.resume({"decision": "approve", "percent": 17})
    reply = out["messages"][-1].content
    assert "17% off" in reply and "19%" not in reply


async def test_decision_recorded_before_a_crash_is_delivered_by_a_new_process(
    any_settings,
) -> None:
    """Defect 6 on either backend: the ledger holds the decision, the checkpoint not."""
    settings = any_settings
    llm = scripted_llm(route("negotiate"), price(19))
    async with open_negotiator(Services.with_llm(llm, settings)) as first:
        await first.run_turn("s-crash", "user_100", "discount or I leave")
        code = (await first.pending_approval("s-crash"))["code"]
        first.services.ledger().decide(code, approved=False, decided_by="bob")  # then: crash
    async with open_negotiator(Services.with_llm(scripted_llm(), settings)) as second:
        assert (await second.pending_approval("s-crash"))["code"] == code
        done = await second.resume("s-crash", {"decision": "reject", "approver": "bob"})
    assert done.status == "proposed" and done.offer["discount_percent"] == 15
    assert done.offer["code"] in done.reply
    ledger = second.services.ledger()
    assert ledger.get(code).status == "rejected"
    assert ledger.violations() == []
