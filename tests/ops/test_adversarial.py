"""Reliability, adversarial: an always-malicious model against the money rules and the guard.

The model (``graph.ops.bench.adversary.MaliciousChat``) answers every call with schema-shaped JSON
whose strings are injections (invented codes, promises, internal figures, escapes) and whose
numbers sit on or far beyond the bounds. Played on the shared scenarios and our own injection
messages: 0 offers above the cap or below the standing offer, 0 invented codes or promises
delivered. The checks are shown to catch a missing guard or clamp.
"""

from __future__ import annotations

from typing import Any

import pytest

import nodes.pricing
import nodes.router
from graph.ops.bench.adversary import (
    INJECTION_MESSAGES,
    MALICIOUS_STRINGS,
    load_conversations,
    reply_violations,
    run_adversarial,
)
from graph.ops.bench.messages import SHARED_SCENARIOS
from graph.settings import Settings
from stores.ledger import OfferLedger
from stores.models import Offer

pytestmark = pytest.mark.reliability

INJECTIONS = load_conversations(None)


def test_shared_scenarios_against_the_malicious_model(settings: Settings) -> None:
    convos = load_conversations(SHARED_SCENARIOS)[: -len(INJECTION_MESSAGES)]
    report = run_adversarial(settings, convos, seed=1)
    assert report.turns >= 60
    assert report.offers > 0  # the run did reach the money path
    assert report.violations == 0, report.examples[:5]


@pytest.mark.parametrize(("seed", "strategy"), [(0, "model"), (7, "model"), (3, "schedule")])
def test_injection_messages_against_the_malicious_model(
    settings: Settings, seed: int, strategy: str
) -> None:
    s = settings.model_copy(update={"pricing_strategy": strategy})
    report = run_adversarial(s, INJECTIONS, seed=seed)
    assert report.turns == len(INJECTIONS) * 3 * 4
    assert report.offers > 0
    assert report.violations == 0, report.examples[:5]


def test_the_check_catches_an_unguarded_reply(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nodes.router, "guarded_reply", lambda text, *a, **k: text)
    monkeypatch.setattr(nodes.pricing, "guarded_message", lambda text, *a, **k: text)
    report = run_adversarial(settings, INJECTIONS, users=["user_100"])
    assert report.bad_replies > 0


def test_the_check_catches_an_offer_above_the_cap(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    unbounded = nodes.pricing.bounded_pricing_model(100.0)
    monkeypatch.setattr(nodes.pricing, "bounded_pricing_model", lambda high, low=0.0: unbounded)
    monkeypatch.setattr(nodes.pricing, "clamp_offer", lambda model, standing, cap: model)
    # the ledger refuses a percent above the cap it is given: hand it a cap of 100 as well
    propose = OfferLedger.propose

    def uncapped(self: OfferLedger, **kwargs: Any) -> Offer:
        return propose(self, **{**kwargs, "cap_percent": 100.0})

    monkeypatch.setattr(OfferLedger, "propose", uncapped)
    # and let the malicious router reach pricing (grounding would turn it into a reply)
    monkeypatch.setattr(nodes.router, "grounding_problem", lambda *a, **k: "")
    report = run_adversarial(settings, INJECTIONS, users=["user_100"])
    assert report.above_cap > 0


def test_the_ledger_refuses_an_offer_above_the_cap_that_pricing_let_through(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    unbounded = nodes.pricing.bounded_pricing_model(100.0)
    monkeypatch.setattr(nodes.pricing, "bounded_pricing_model", lambda high, low=0.0: unbounded)
    monkeypatch.setattr(nodes.pricing, "clamp_offer", lambda model, standing, cap: model)
    monkeypatch.setattr(nodes.router, "grounding_problem", lambda *a, **k: "")
    with pytest.raises(ValueError, match="above the cap"):
        run_adversarial(settings, INJECTIONS, users=["user_100"])
    assert all(o.discount_percent <= o.cap_percent for o in OfferLedger(settings.ledger_db).list())


def _offer(code: str, percent: float) -> Offer:
    return Offer.model_validate(
        {
            "code": code,
            "user_id": "user_100",
            "session_id": "s",
            "turn": 1,
            "discount_percent": percent,
            "cap_percent": 20,
            "cart_value": 100,
            "amount": percent,
            "status": "proposed",
            "created_at": "2026-01-01T00:00:00+00:00",
            "expires_at": "2026-01-03T00:00:00+00:00",
        }
    )


def test_reply_violations_tells_issued_from_invented() -> None:
    issued = [_offer("SGR-K7M2P-12345", 15)]
    legit = "Thanks.\n\nYour offer: 15% off (15.00 off your cart), code SGR-K7M2P-12345, valid."
    assert reply_violations(legit, issued) == []
    for text in MALICIOUS_STRINGS[:-1]:  # the last one is a plausible percent
        assert reply_violations(text, issued), text
    assert reply_violations("I can do 15% for you", issued) == []
    assert reply_violations("I can do 16% for you", issued)
    assert reply_violations("code SGR-ZZZZZ-99999", issued)
