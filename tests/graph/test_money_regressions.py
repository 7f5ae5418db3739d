"""Issue 8 money defects, each replayed through the graph (scripted model, in-memory saver).

user_100: cap 20 %, offers above 15 % need a manager. Every test ends by checking the
ledger invariants (``OfferLedger.violations``).
"""

from __future__ import annotations

import asyncio

from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from graph.builder import make_builder
from graph.state import NegotiationContext
from tests.fakes import price, route, say, scripted_llm


def _pending(app, session: str = "s1") -> dict:
    snap = app.state(session)
    return snap.tasks[0].interrupts[0].value


def _redeemable(app, user: str = "user_100") -> list:
    return [o for o in app.services.ledger().list(user) if o.status in {"proposed", "accepted"}]


def _fifteen_then_pending(app) -> str:
    """s1: a 15 % code (no approval needed), then a 19 % proposal waiting for a manager."""
    first = app.turn("discount?")
    code = first["offers"][-1]["code"]
    assert first["offers"][-1]["discount_percent"] == 15
    assert "__interrupt__" in app.turn("a bigger discount, or I leave")
    return code


def test_rejected_approval_leaves_the_standing_code_redeemable(make_app) -> None:
    """Defect 1a: the pending 19 % superseded the 15 % code at once; 'stands' was false."""
    llm = scripted_llm(route("negotiate"), price(15), route("negotiate"), price(19))
    llm.chat.responder.replies.append(route("accept_offer"))
    app = make_app(llm)
    code = _fifteen_then_pending(app)
    ledger = app.services.ledger()
    assert ledger.get(code).status == "proposed"  # the pending proposal supersedes nothing
    assert ledger.validate(code, "user_100").valid
    out = app.resume({"decision": "reject", "approver": "bob"})
    assert code in out["messages"][-1].content and "stands" in out["messages"][-1].content
    assert ledger.validate(code, "user_100").valid  # the reply is true
    accepted = app.turn("I accept")
    assert accepted["status"] == "accepted" and code in accepted["messages"][-1].content
    assert ledger.get(code).status == "accepted"
    assert ledger.violations() == []


def test_second_session_while_approval_waits_gets_no_lower_offer(make_app) -> None:
    """Defect 1b: a second session got 5 %, replacing the 15 % already given."""
    llm = scripted_llm(route("negotiate"), price(15), route("negotiate"), price(19))
    llm.chat.responder.replies += [route("negotiate"), price(5)]
    app = make_app(llm)
    code = _fifteen_then_pending(app)
    out = app.turn("any discount?", session="s2")
    reply = out["messages"][-1].content
    assert "manager is reviewing" in reply and code in reply
    assert [(o.code, o.discount_percent) for o in _redeemable(app)] == [(code, 15)]
    # s1's manager still decides; the approved 19 % then replaces the 15 %
    done = app.resume({"decision": "approve"})
    assert done["offers"][-1]["discount_percent"] == 19
    assert [o.discount_percent for o in _redeemable(app)] == [19]
    assert app.services.ledger().violations() == []


def test_new_message_on_a_waiting_thread_keeps_the_standing_offer(make_app) -> None:
    """Defect 1c: a new message on a waiting thread (Studio) got a lower offer."""
    llm = scripted_llm(route("negotiate"), price(15), route("negotiate"), price(19))
    llm.chat.responder.replies += [route("negotiate"), price(5)]
    app = make_app(llm)
    code = _fifteen_then_pending(app)
    pending_code = _pending(app)["code"]
    out = app.turn("hello? any better discount?")
    assert code in out["messages"][-1].content
    ledger = app.services.ledger()
    assert [(o.code, o.discount_percent) for o in _redeemable(app)] == [(code, 15)]
    # the dropped approval request lapses instead of blocking the customer
    assert ledger.get(pending_code).status == "expired"
    assert ledger.violations() == []


def test_racing_session_cannot_replace_a_higher_offer(settings, make_app) -> None:
    """Defect 2: the floor read in retrieval was stale by the time the offer was written."""
    app = make_app(scripted_llm(route("negotiate"), price(12)))
    graph = make_builder(app.services).compile(
        checkpointer=InMemorySaver(), interrupt_before=["offer"]
    )
    config = {"configurable": {"thread_id": "s1"}}
    ctx = NegotiationContext(user_id="user_100")
    asyncio.run(
        graph.ainvoke({"messages": [HumanMessage(content="discount?")]}, config, context=ctx)
    )
    assert asyncio.run(graph.aget_state(config)).next == ("offer",)  # priced at 12 % with no floor
    ledger = app.services.ledger()
    other = ledger.propose(  # meanwhile another session of the customer issues 15 %
        session_id="s2",
        turn=1,
        user_id="user_100",
        discount_percent=15,
        cap_percent=20,
        cart_value=240,
        ttl_hours=48,
    )
    out = asyncio.run(graph.ainvoke(None, config, context=ctx))
    reply = out["messages"][-1].content
    assert other.code in reply and "15%" in reply
    assert [(o.code, o.discount_percent) for o in _redeemable(app)] == [(other.code, 15)]
    assert ledger.by_session_turn("s1", 1) is None
    assert out["standing_offer"]["code"] == other.code
    assert ledger.violations() == []


def test_accepted_offer_is_final_also_in_a_new_session(make_app) -> None:
    """Defect 3: accept 10 %, ask again, get and accept 12 %: both codes validated."""
    llm = scripted_llm(route("negotiate"), price(10), route("accept_offer"))
    llm.chat.responder.replies += [route("negotiate"), price(12), route("negotiate"), price(12)]
    app = make_app(llm)
    code = app.turn("discount?")["offers"][-1]["code"]
    assert app.turn("deal")["status"] == "accepted"
    again = app.turn("can I get a 12% discount?")
    assert "already accepted" in again["messages"][-1].content
    assert code in again["messages"][-1].content
    fresh = app.turn("discount please", session="s-new")
    assert "already accepted" in fresh["messages"][-1].content
    assert code in fresh["messages"][-1].content and fresh["status"] == "accepted"
    assert [(o.code, o.status) for o in _redeemable(app)] == [(code, "accepted")]
    assert len(app.services.ledger().list("user_100")) == 1
    assert app.services.ledger().violations() == []


def test_approval_recorded_before_a_crash_is_delivered_on_rerun(make_app) -> None:
    """Defect 6: decision in the ledger, checkpoint lost: re-running said 'no longer open'."""
    app = make_app(scripted_llm(route("negotiate"), price(19)))
    app.turn("discount?")
    code = _pending(app)["code"]
    ledger = app.services.ledger()
    # the node recorded the decision, then the process died before the checkpoint
    ledger.decide(code, approved=True, decided_by="ann", discount_percent=17)
    out = app.resume({"decision": "approve", "percent": 17, "approver": "ann"})
    offer = out["offers"][-1]
    assert (offer["code"], offer["discount_percent"], offer["decided_by"]) == (code, 17, "ann")
    assert code in out["messages"][-1].content and "no longer open" not in str(out["messages"])
    assert out["proposal"]["approval"] == "approved by ann"
    assert ledger.violations() == []


def test_rejection_recorded_before_a_crash_still_gives_the_fallback(make_app) -> None:
    """Defect 6: the recorded decision wins, and the customer gets the fallback offer."""
    app = make_app(scripted_llm(route("negotiate"), price(19)))
    app.turn("discount?")
    code = _pending(app)["code"]
    ledger = app.services.ledger()
    ledger.decide(code, approved=False, decided_by="bob")
    out = app.resume({"decision": "approve"})  # a retry cannot overturn the recorded rejection
    offer = out["offers"][-1]
    assert offer["discount_percent"] == 15 and offer["slot"] == "fallback"
    assert offer["code"] in out["messages"][-1].content
    assert ledger.get(code).status == "rejected"
    assert [o.code for o in _redeemable(app)] == [offer["code"]]
    # and once more (fallback written, checkpoint lost again): the same code, not a second one
    again = ledger.propose(
        session_id="s1",
        turn=1,
        slot="fallback",
        user_id="user_100",
        discount_percent=15,
        cap_percent=20,
        cart_value=240,
        ttl_hours=48,
    )
    assert again.code == offer["code"]
    assert ledger.violations() == []


def test_resuming_never_moves_the_expiry(make_app) -> None:
    """Defect 11: every resume re-ran the upsert and pushed ``expires_at`` further."""
    app = make_app(scripted_llm(route("negotiate"), price(19)))
    app.turn("discount?")
    ledger = app.services.ledger()
    code = _pending(app)["code"]
    expires = ledger.get(code).expires_at
    app.resume({"decision": "approve", "percent": 99})  # invalid: asked again, node re-ran
    assert ledger.get(code).expires_at == expires
    app.resume({"decision": "approve"})
    assert ledger.get(code).expires_at == expires


def test_session_id_reused_for_another_customer_is_refused_politely(settings, make_app) -> None:
    """Defect 11: the ledger raised an uncaught ValueError (traceback, exit 1)."""
    first = make_app(scripted_llm(route("negotiate"), price(12)))
    first.turn("discount?")  # s1 turn 1 belongs to user_100 in the ledger
    # the checkpoints are gone (new saver), the session id is used again by someone else
    second = make_app(scripted_llm(route("negotiate"), price(5)))
    out = second.turn("discount?", user="user_101")
    assert out["messages"][-1].content == say("session_conflict")
    assert out["status"] == "invalid" and out["error"]
    assert second.services.ledger().list("user_101") == []
    assert second.services.ledger().violations() == []
