"""The offer node alone: the ledger issues the proposal, refuses it, or asks a manager."""

from __future__ import annotations

import asyncio

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.types import Command

from graph.state import NegotiationState
from nodes.offer import make_offer
from tests.fakes import scripted_llm
from tests.nodes.conftest import config, features_of, reply_of, run, said


def _proposal(percent: float, reasons: list[str] | None = None) -> dict:
    return {
        "discount_percent": percent,
        "cap_percent": 20.0,
        "cart_value": 240.0,
        "amount": round(240 * percent / 100, 2),
        "message": "A little something for you.",
        "reasoning": {"churn_analysis": "may leave"},
        "approval_reasons": reasons or [],
    }


def _state(svc, percent: float, reasons: list[str] | None = None) -> dict:
    return {
        "messages": said("discount?"),
        "user_id": "user_100",
        "turn": 1,
        "proposal": _proposal(percent, reasons),
        **features_of(svc, "user_100"),
    }


def test_the_ledger_issues_the_code_the_reply_states(services) -> None:
    svc = services(scripted_llm())
    cmd = run(make_offer(svc)(_state(svc, 8), config("o1")))
    assert cmd.goto == "__end__" and cmd.update["status"] == "proposed"
    code = cmd.update["proposal"]["code"]
    assert code in reply_of(cmd) and "8% off (19.20 off your cart)" in reply_of(cmd)
    row = svc.ledger().get(code)
    assert (row.session_id, row.turn, row.discount_percent) == ("o1", 1, 8)
    assert row.churn_band == "high" and row.inventory == "Normal"  # priced under


def test_re_running_the_node_issues_nothing_twice(services) -> None:
    svc = services(scripted_llm())
    first = run(make_offer(svc)(_state(svc, 8), config("o2")))
    again = run(make_offer(svc)(_state(svc, 8), config("o2")))
    assert again.update["proposal"]["code"] == first.update["proposal"]["code"]
    assert len(svc.ledger().list("user_100")) == 1


def test_a_refusal_says_what_the_customer_holds(services) -> None:
    svc = services(scripted_llm())
    ledger = svc.ledger()
    held = ledger.propose(
        session_id="old",
        turn=1,
        user_id="user_100",
        discount_percent=10,
        cap_percent=20,
        cart_value=240,
        ttl_hours=24,
    )
    cmd = run(make_offer(svc)(_state(svc, 8), config("o3")))  # not above the standing 10 %
    assert cmd.goto == "__end__" and held.code in reply_of(cmd)
    assert [o.code for o in ledger.list("user_100")] == [held.code]


def test_above_the_threshold_it_asks_a_manager_then_issues_the_decision(services) -> None:
    svc = services(scripted_llm())
    graph = StateGraph(NegotiationState)
    graph.add_node("offer", make_offer(svc))
    graph.add_edge(START, "offer")
    app = graph.compile(checkpointer=InMemorySaver())
    cfg = config("o4")
    reasons = ["19% is above the 15% approval threshold"]
    out = asyncio.run(app.ainvoke(_state(svc, 19, reasons), cfg))
    request = out["__interrupt__"][0].value
    assert request["proposed_percent"] == 19 and request["no_approval_percent"] == 15
    assert svc.ledger().get(request["code"]).status == "approval_pending"
    done = asyncio.run(
        app.ainvoke(Command(resume={"decision": "approve", "percent": 17, "approver": "ann"}), cfg)
    )
    assert done["proposal"]["discount_percent"] == 17 and "17% off" in done["messages"][-1].content
    assert (
        "19%" not in done["messages"][-1].content
    )  # the model's words named the proposed percent: dropped
    assert svc.ledger().get(request["code"]).decided_by == "ann"
