"""The analyst dashboard in a real browser: the offers just made, SVG charts, the date
filter and the CSV download."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.browser.harness import expect, sign_in

pytestmark = pytest.mark.browser


def tile(page, label):
    return page.get_by_test_id("totals").locator(".tile", has_text=label).locator(".tile-value")


def test_the_dashboard_shows_the_offers_just_made_and_downloads_csv(serve, pages) -> None:
    server = serve(pricing_strategy="schedule")
    server.turn("d1", "Can I get a discount?", user="user_100")
    server.turn("d1", "I accept", user="user_100")
    server.turn("d2", "Any discount on this?", user="user_101")

    page = pages.new()
    sign_in(page, server, "/analyst")
    expect(tile(page, "Offers issued")).to_have_text("2")
    expect(tile(page, "Offers accepted")).to_have_text("1")
    expect(tile(page, "Discount given")).to_have_text("19.20")
    assert page.locator("svg[data-chart]").count() >= 4
    churn = page.locator("[data-section=churn]")
    expect(churn.locator("svg").first).to_contain_text("high")
    expect(churn.locator("table")).to_contain_text("high")
    expect(page.locator("[data-section=inventory] table")).to_contain_text("Normal")
    today = dt.datetime.now(dt.UTC).date()
    timeline = page.locator("[data-section=timeline]")
    expect(timeline.locator("table")).to_contain_text(today.isoformat())
    expect(timeline.locator("svg rect.col-issued")).to_have_count(1)

    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith("section,key,issued")
    assert any(line.startswith("day,") for line in text.splitlines())

    page.get_by_label("Since").fill((today + dt.timedelta(days=1)).isoformat())
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(f"{server.url}/analyst?since={today + dt.timedelta(days=1)}")
    expect(tile(page, "Offers issued")).to_have_text("0")
    expect(page.get_by_role("link", name="CSV")).to_have_attribute(
        "href", f"/v1/report.csv?since={today + dt.timedelta(days=1)}"
    )
    page.get_by_label("Since").fill(today.isoformat())
    page.get_by_label("Since").press("Enter")
    expect(tile(page, "Offers issued")).to_have_text("2")
    page.set_viewport_size({"width": 360, "height": 740})
    assert page.evaluate("document.documentElement.scrollWidth") <= 360  # tables scroll inside
