"""The manager inbox in a real browser: sign-in, live approvals, a lower percent reaching the
shopper's open page, two managers deciding the same approval."""

from __future__ import annotations

import re

import pytest

from tests.browser.harness import MANAGERS, expect, sign_in

pytestmark = pytest.mark.browser


def ask_for_approval(page, server, user="user_100", message="Give me a discount or I leave"):
    """The shopper asks; the model's percent needs a manager (``pricing_strategy=model``)."""
    page.goto(server.widget_url(user))
    box = page.get_by_role("textbox", name="Message")
    expect(box).to_be_enabled()
    box.fill(message)
    box.press("Enter")
    card = page.get_by_test_id("offer-card")
    expect(card).to_contain_text("waiting for a manager", ignore_case=True)
    expect(page.get_by_role("button", name="Send")).to_be_disabled()


def test_a_manager_approves_a_lower_percent_and_the_shopper_sees_it_live(serve, pages) -> None:
    server = serve()
    shopper = pages.new(viewport={"width": 360, "height": 740})
    ask_for_approval(shopper, server)
    shopper.evaluate("window.__same_page = true")
    assert shopper.evaluate("document.documentElement.scrollWidth") <= 360

    manager = pages.new()
    sign_in(manager, server)
    approval = manager.get_by_test_id("approval")
    expect(approval).to_have_count(1)
    for text in ("user_100", "240.00", "40%", "Policy cap", "20%", "Standing offer", "none"):
        expect(approval).to_contain_text(text)
    expect(approval).to_contain_text("above the 15% approval threshold")
    expect(approval.locator(".reasoning")).to_contain_text("Churn analysis")
    approval.get_by_label("Percent").fill("12")
    approval.get_by_role("button", name="Approve").click()
    expect(approval).to_contain_text("Approved 12%")

    card = shopper.get_by_test_id("offer-card")
    expect(card).to_contain_text("12% off")  # polled, no reload
    expect(card).to_contain_text("28.80 off your cart")
    expect(shopper.get_by_role("button", name="Accept")).to_be_visible()
    expect(shopper.locator(".msg-agent").last).to_contain_text("12% off")
    assert shopper.evaluate("window.__same_page") is True
    expect(shopper.get_by_role("button", name="Send")).to_be_enabled()
    code = shopper.locator("#offer-code").inner_text()
    assert server.services.ledger().get(code).decided_by == "alice"


def test_an_approval_arrives_in_an_open_inbox(serve, pages) -> None:
    server = serve()
    manager = pages.new()
    sign_in(manager, server)
    expect(manager.locator("#inbox-status")).to_contain_text("No approvals waiting")
    server.turn("live-1", "A discount please, or I cancel", user="user_109")
    approval = manager.get_by_test_id("approval")
    expect(approval).to_have_count(1)  # the next poll brings it in
    expect(approval).to_contain_text("user_109")
    expect(approval).to_contain_text("800.00")
    approval.get_by_role("button", name="Reject").click()
    expect(approval).to_contain_text("Rejected")
    manager.set_viewport_size({"width": 360, "height": 740})
    assert manager.evaluate("document.documentElement.scrollWidth") <= 360


def test_two_managers_decide_the_same_approval_once(serve, pages) -> None:
    server = serve()
    server.turn("race-1", "Discount or I leave", user="user_100")
    alice, bob = pages.new(), pages.new()
    sign_in(alice, server, who="alice")
    sign_in(bob, server, who="bob")
    a, b = alice.get_by_test_id("approval"), bob.get_by_test_id("approval")
    expect(a).to_have_count(1)
    expect(b).to_have_count(1)
    # bob's list stops refreshing: his click reaches the server after alice's decision
    bob.route(re.compile(r".*/v1/approvals$"), lambda route: route.abort())

    a.get_by_role("button", name="Approve").click()
    expect(a).to_contain_text("Approved 20%")
    with bob.expect_response(re.compile(r".*/v1/approvals/race-1$")) as answer:
        b.get_by_role("button", name="Approve").click()
    assert answer.value.status == 409
    expect(b).to_contain_text("Taken")
    expect(b.get_by_role("button", name="Approve")).to_be_disabled()

    offers = [o for o in server.services.ledger().list() if o.session_id == "race-1"]
    assert [o.decided_by for o in offers] == ["alice"]
    approvals = server.services.report()["approvals"]
    assert approvals["approved"] == 1 and approvals["rejected"] == 0


def test_the_staff_pages_need_a_sign_in_and_refuse_a_wrong_token(serve, pages) -> None:
    server = serve()
    page = pages.new()
    for path in ("/manager", "/analyst"):
        page.goto(server.url + path)
        expect(page.get_by_label("Token")).to_be_visible()
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        expect(page.get_by_test_id("approval")).to_have_count(0)
    assert page.evaluate("fetch('/v1/approvals').then(r => r.status)") == 401

    page.get_by_label("Token").fill("not-a-manager-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That token is not valid.")
    expect(page.get_by_label("Token")).to_be_visible()
    assert page.context.cookies() == []

    page.get_by_label("Token").fill(MANAGERS["bob"])
    page.get_by_label("Token").press("Enter")
    expect(page.get_by_role("heading", name="Discounts dashboard")).to_be_visible()
    cookie = page.context.cookies()[0]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # not readable by scripts
    page.get_by_role("link", name="Approvals").click()
    expect(page.get_by_role("heading", name="Pending approvals")).to_be_visible()
    expect(page.get_by_text("Signed in as bob")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Token")).to_be_visible()
    assert page.context.cookies() == []
