"""The storefront chat widget in a real browser: negotiate, watch the progress, accept; the
embed snippet; customer and agent text shown as text, never as HTML."""

from __future__ import annotations

import re

import pytest

from tests.browser.harness import SHOP_ORIGIN, expect

pytestmark = pytest.mark.browser

RECORD_PROGRESS = """() => {
  window.__progress = [];
  new MutationObserver((records) => {
    for (const r of records) for (const n of r.addedNodes) window.__progress.push(n.textContent);
  }).observe(document.getElementById("progress"), {childList: true, subtree: true});
}"""


def open_widget(page, server, user="user_100"):
    page.goto(server.widget_url(user))
    expect(page.locator("#cart")).to_contain_text("Your cart:")
    expect(page.get_by_role("textbox", name="Message")).to_be_enabled()


def test_a_shopper_negotiates_sees_progress_and_accepts(serve, pages) -> None:
    server = serve(pricing_strategy="schedule")  # the schedule opens below the cap: no approval
    page = pages.new()
    open_widget(page, server)
    expect(page.locator("#cart")).to_have_text("Your cart: 240.00")
    assert "token" not in page.url  # the token left the address bar
    page.evaluate(RECORD_PROGRESS)

    expect(page.get_by_role("log")).to_have_attribute("aria-live", "polite")
    expect(page.locator("#progress")).to_have_attribute("role", "status")
    box = page.get_by_role("textbox", name="Message")
    box.fill("Can I get a discount?")
    box.press("Enter")  # the keyboard sends
    card = page.get_by_test_id("offer-card")
    expect(card).to_be_visible()
    expect(card).to_contain_text("8% off")
    expect(card).to_contain_text("19.20 off your cart")
    expect(card).to_contain_text(re.compile(r"Expires in \d+ h \d\d min"))
    code = page.locator("#offer-code").inner_text()
    assert re.fullmatch(r"SGR-[0-9A-Z]{5}-[0-9A-Z]{5}", code)
    reply = page.locator(".msg-agent").last
    expect(reply).to_contain_text(f"code {code}")
    progress = page.evaluate("window.__progress")
    assert "checking your cart…" in progress and "working out an offer…" in progress, progress
    expect(page.locator("#progress")).to_have_text("")  # cleared once the reply is in
    expect(box).to_be_focused()  # ready for the next message
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Send")).to_be_focused()

    page.get_by_role("button", name="Accept").click()
    expect(card).to_contain_text("Accepted")
    expect(page.locator("#offer-code")).to_have_text(code)
    expect(page.get_by_role("button", name="Accept")).to_be_hidden()
    expect(page.locator(".msg-customer").last).to_have_text("You: I accept")
    expect(page.locator(".msg-agent").last).to_contain_text("Done!")
    assert server.services.ledger().get(code).status == "accepted"

    # a reload of the tab keeps its conversation (the session id lives in sessionStorage)
    page.reload()
    expect(page.locator(".msg-customer")).to_have_count(2)
    expect(card).to_contain_text("Accepted")


def test_the_embed_snippet_frames_the_widget_with_the_token_in_the_fragment(serve, pages) -> None:
    server = serve(pricing_strategy="schedule")
    token = server.token("user_101")
    shop = f"""<!doctype html><html><head><title>Cart</title></head><body>
      <h1>Your cart</h1>
      <script src="{server.url}/static/embed.js" data-token="{token}" async></script>
      </body></html>"""
    # the shop is served by page.route and the agent on loopback: Chrome asks before a page
    # reaches the loopback address space (a real shop and agent are both public)
    page = pages.new(permissions=["local-network-access"])
    page.route(
        f"{SHOP_ORIGIN}/**",
        lambda route: route.fulfill(status=200, content_type="text/html", body=shop),
    )
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url))
    page.goto(f"{SHOP_ORIGIN}/cart")
    frame_el = page.locator("iframe")
    expect(frame_el).to_have_attribute("src", re.compile(r"/#token="))
    expect(frame_el).to_have_attribute("title", "Chat with us about your cart")
    frame = page.frame_locator("iframe")
    expect(frame.locator("#cart")).to_have_text("Your cart: 125.00")
    frame.get_by_role("textbox", name="Message").fill("Any discount for me?")
    frame.get_by_role("button", name="Send").click()
    expect(frame.get_by_test_id("offer-card")).to_contain_text("% off")
    assert seen and not [u for u in seen if token in u]  # never in a URL a server sees


def test_the_widget_refuses_to_be_framed_by_other_sites(serve, pages) -> None:
    server = serve()
    page = pages.new(permissions=["local-network-access"])
    page.route(
        "http://localhost:9999/**",
        lambda route: route.fulfill(
            status=200,
            content_type="text/html",
            body=f'<iframe src="{server.widget_url()}"></iframe>',
        ),
    )
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text))
    page.goto("http://localhost:9999/")
    page.wait_for_timeout(500)
    frame = page.frame_locator("iframe")
    expect(frame.locator("#cart")).to_have_count(0)
    assert any("frame-ancestors" in text for text in blocked), blocked
    pages.problems.clear()  # that refusal is the point of this test


def test_html_from_the_customer_and_in_replies_is_shown_as_text(serve, pages) -> None:
    payload = "<img src=x onerror=alert(1)>"
    support = "Write to <b>help</b> <img src=y onerror=alert(2)> or call us."
    server = serve(support_text=support)  # the agent's reply quotes the shop's support text
    page = pages.new()
    page.goto(f"{server.url}/?token={server.token('user_101')}")  # the development link
    expect(page.get_by_role("textbox", name="Message")).to_be_enabled()
    assert page.url == f"{server.url}/"  # the token left the address bar
    box = page.get_by_role("textbox", name="Message")
    box.fill(payload)
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".msg-customer")).to_have_text(f"You: {payload}")
    reply = page.locator(".msg-agent").last
    expect(reply).to_contain_text(support)
    expect(page.get_by_text(payload)).to_be_visible()
    assert page.locator("img").count() == 0 and page.locator("b").count() == 0
    page.wait_for_timeout(300)
    assert pages.dialogs == []


def test_an_expired_token_asks_for_a_reload(serve, pages) -> None:
    server = serve()
    page = pages.new()
    page.goto(f"{server.url}/#token={server.token('user_100', ttl=2)}")
    box = page.get_by_role("textbox", name="Message")
    expect(box).to_be_enabled()
    page.wait_for_timeout(2500)
    box.fill("Any discount?")
    box.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("Reload the page")
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    expect(page.locator(".msg-failed")).to_contain_text("(not sent)")


def test_a_dropped_connection_is_retried_with_its_key_and_answered_once(serve, pages) -> None:
    """The shop ran the turn but the answer never reached the browser: the widget sends the
    message again with the same Idempotency-Key and shows the recorded answer, once."""
    server = serve(pricing_strategy="schedule")
    page = pages.new()
    open_widget(page, server)
    keys: list[str] = []

    def drop_the_first_answer(route) -> None:
        keys.append(route.request.headers.get("idempotency-key", ""))
        if len(keys) == 1:
            route.fetch()  # the server runs the whole turn...
            route.abort("connectionreset")  # ...and the answer is lost on the way back
        else:
            route.continue_()

    page.route("**/v1/sessions/*/turns", drop_the_first_answer)
    box = page.get_by_role("textbox", name="Message")
    box.fill("Can I get a discount?")
    box.press("Enter")
    card = page.get_by_test_id("offer-card")
    expect(card).to_contain_text("8% off")
    expect(page.locator(".msg-agent", has_text="Your offer")).to_have_count(1)
    expect(page.locator(".msg-customer")).to_have_count(1)
    expect(page.locator(".msg-failed")).to_have_count(0)
    assert len(keys) == 2 and keys[0] == keys[1] and re.fullmatch(r"[0-9a-f-]{32,36}", keys[0])
    offers = server.services.ledger().list("user_100")
    assert len(offers) == 1 and offers[0].turn == 1  # one turn ran, one code
    page.reload()
    expect(page.locator(".msg-customer")).to_have_count(1)
