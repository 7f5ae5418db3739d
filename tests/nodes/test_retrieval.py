"""The retrieval node alone: the customer's features and cap, or a reply without pricing."""

from __future__ import annotations

from nodes.retrieval import make_retrieval
from tests.fakes import say, scripted_llm
from tests.nodes.conftest import config, reply_of, run, said


def _retrieve(services, user: str = "user_100", turn: int = 1, session: str = "s1", **kw):
    svc = services(scripted_llm())
    node = make_retrieval(svc)
    state = {"messages": said("discount?"), "user_id": user, "turn": turn}
    return svc, run(node(state, config(session))), kw


def test_a_known_customer_is_priced_with_features_and_cap(services) -> None:
    _, cmd, _ = _retrieve(services)
    assert cmd.goto == "pricing"
    assert cmd.update["features"]["cart_value"] == 240 and cmd.update["features"]["margin"] == 0.4
    assert cmd.update["cap"]["cap_percent"] == 20 and cmd.update["cap"]["churn_band"] == "high"
    assert cmd.update["standing_offer"] is None


def test_an_unknown_customer_gets_a_reply_and_an_error(services) -> None:
    _, cmd, _ = _retrieve(services, user="user_404")
    assert cmd.goto == "__end__" and "unknown user user_404" in cmd.update["error"]
    assert reply_of(cmd) == say("unknown_customer")


def test_an_accepted_code_stands_and_is_not_priced_again(services) -> None:
    svc = services(scripted_llm())
    ledger = svc.ledger()
    offer = ledger.propose(
        session_id="old",
        turn=1,
        user_id="user_100",
        discount_percent=5,
        cap_percent=20,
        cart_value=240,
        ttl_hours=24,
    )
    ledger.accept(offer.code, "user_100")
    cmd = run(
        make_retrieval(svc)({"messages": said("more?"), "user_id": "user_100", "turn": 1}, config())
    )
    assert cmd.goto == "__end__" and cmd.update["status"] == "accepted"
    assert offer.code in reply_of(cmd)


def test_a_pending_approval_elsewhere_answers_without_pricing(services) -> None:
    svc = services(scripted_llm())
    svc.ledger().propose(
        session_id="other",
        turn=1,
        user_id="user_100",
        discount_percent=19,
        cap_percent=20,
        cart_value=240,
        ttl_hours=24,
        status="approval_pending",
    )
    cmd = run(
        make_retrieval(svc)(
            {"messages": said("hi"), "user_id": "user_100", "turn": 1}, config("s1")
        )
    )
    assert cmd.goto == "__end__" and reply_of(cmd) == say("approval_pending")


def test_a_pending_approval_this_thread_dropped_lapses(services) -> None:
    svc = services(scripted_llm())
    pending = svc.ledger().propose(
        session_id="s1",
        turn=1,
        user_id="user_100",
        discount_percent=19,
        cap_percent=20,
        cart_value=240,
        ttl_hours=24,
        status="approval_pending",
    )
    cmd = run(
        make_retrieval(svc)(
            {"messages": said("hi"), "user_id": "user_100", "turn": 2}, config("s1")
        )
    )
    assert cmd.goto == "pricing"
    assert svc.ledger().get(pending.code).status == "expired"
