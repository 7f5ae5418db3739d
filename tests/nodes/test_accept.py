"""The accept node alone: the ledger records the acceptance, or says why it cannot."""

from __future__ import annotations

from nodes.accept import make_accept
from tests.fakes import say, scripted_llm
from tests.nodes.conftest import reply_of, run, said


def _offer(svc, percent: float = 6, ttl: float = 24):
    return svc.ledger().propose(
        session_id="s1",
        turn=1,
        user_id="user_101",
        discount_percent=percent,
        cap_percent=8,
        cart_value=125,
        ttl_hours=ttl,
    )


def _accept(svc, **state):
    return run(make_accept(svc)({"messages": said("I accept"), "user_id": "user_101", **state}))


def test_the_standing_offer_is_accepted(services) -> None:
    svc = services(scripted_llm())
    offer = _offer(svc)
    cmd = _accept(svc)
    assert cmd.goto == "__end__" and cmd.update["status"] == "accepted"
    assert offer.code in reply_of(cmd) and "6% off is applied" in reply_of(cmd)
    assert svc.ledger().get(offer.code).status == "accepted"


def test_nothing_to_accept(services) -> None:
    cmd = _accept(services(scripted_llm()))
    assert reply_of(cmd) == say("nothing_to_accept") and "status" not in cmd.update


def test_an_expired_offer_is_not_accepted(services) -> None:
    svc = services(scripted_llm())
    offer = _offer(svc, ttl=1e-9)
    cmd = _accept(svc, offers=[offer.model_dump(mode="json")])
    assert cmd.update["status"] == "expired" and "no longer valid" in reply_of(cmd)


def test_an_accepted_offer_is_already_applied(services) -> None:
    svc = services(scripted_llm())
    offer = _offer(svc)
    _accept(svc)
    cmd = _accept(svc)
    assert reply_of(cmd) == say("already_applied", percent="6", code=offer.code)
