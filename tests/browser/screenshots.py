"""Screenshots of the three pages, each at 1280x800 and at 360 px wide, in a realistic state:
an offer card on the widget, one pending approval in the inbox, a dashboard with a week of
offers (``uv run python -m tests.browser.screenshots [OUT_DIR]``).

The real app and graph on freshly seeded demo data with the deterministic fake model (which
writes the pricing node's reasoning as a small model would for the pending customer, instead
of echoing their words); the offers' dates are moved back into the past week afterwards, so
the per-day charts have more than one day to show.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from graph.ops.fakes import fake_llm
from graph.ops.sim.fake_model import SchemaFiller
from graph.settings import Settings
from stores.seed import generate
from tests.browser.harness import LiveServer, browser_settings, chromium_unavailable, launch
from tests.browser.harness import sign_in as sign_in_page

OUT = Path(__file__).parent / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}

# (session, user, messages, days ago, the manager's decision if one is asked for)
HISTORY = [
    ("h-1", "user_102", ["Is there any discount on this?", "I accept"], 6, None),
    ("h-2", "user_105", ["Could you do a better price?"], 6, None),
    ("h-3", "user_104", ["That's expensive, any coupon?"], 5, "reject"),
    ("h-4", "user_107", ["Any promo code for me?", "Yes please, I accept"], 4, None),
    ("h-5", "user_108", ["Can you lower the price?", "I accept"], 2, None),
    ("h-6", "user_109", ["Give me a better price or I cancel"], 1, 12),
    ("h-7", "user_106", ["Any discount or I go elsewhere"], 0, None),
]


REASONING = {  # what the pending approval (user_100) shows; 60 characters at most each
    "churn_analysis": "High risk (0.85): says they will leave over the price",
    "financial_analysis": "LTV 3,500.00 on a 240.00 cart: worth keeping",
    "margin_math": "40% margin = 96.00; 20% off = 48.00, half of it",
    "negotiation_position": "First ask, a firm threat to leave: offer the cap",
}


class ReasonedFiller(SchemaFiller):
    """The schema filler, with written-out pricing reasoning."""

    def __call__(self, schema: dict[str, Any], messages: list[Any]) -> Any:
        value = super().__call__(schema, messages)
        if isinstance(value, dict) and "churn_analysis" in value:
            value = {**value, **{k: v for k, v in REASONING.items() if k in value}}
        return value


def _backdate(ledger: Path, session: str, days: int) -> None:
    conn = sqlite3.connect(ledger)
    try:
        rows = conn.execute(
            "SELECT code, created_at, expires_at, decided_at FROM offers WHERE session_id = ?",
            (session,),
        ).fetchall()
        for code, *times in rows:
            moved = [
                (datetime.fromisoformat(t) - timedelta(days=days)).isoformat(
                    timespec="microseconds"
                )
                if t
                else None
                for t in times
            ]
            conn.execute(
                "UPDATE offers SET created_at = ?, expires_at = ?, decided_at = ? WHERE code = ?",
                (*moved, code),
            )
        conn.commit()
    finally:
        conn.close()


def scene(server: LiveServer) -> None:
    """A week of negotiations (some approved by a manager, one rejected), one pending."""
    for session, user, messages, days, decision in HISTORY:
        for message in messages:
            if server.turn(session, message, user=user)["status"] == "approval_pending":
                if decision == "reject":
                    server.decide(session, "reject")
                else:
                    assert server.decide(session, "approve", decision).status_code == 200
        _backdate(server.settings.ledger_db, session, days)
    server.turn("pending-1", "Give me a discount or I leave, it's too expensive", user="user_100")


def main(out: Path = OUT) -> list[Path]:
    reason = chromium_unavailable()
    if reason:
        raise SystemExit(reason)
    from playwright.sync_api import expect, sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Settings(
            data_dir=Path(tmp) / "data",
            llm_base_url="http://127.0.0.1:9/v1",
            pricing_strategy="model",
            shop_name="Northwind Outfitters",
        )
        generate(base.data_dir, users=10, seed=42)
        server = LiveServer(
            fake_llm(ReasonedFiller(), model_name="fake-schema"), browser_settings(base)
        ).start()
        try:
            scene(server)
            with sync_playwright() as p:
                browser = launch(p)
                for size, viewport, shopper in (
                    ("desktop", DESKTOP, "user_101"),
                    ("360", PHONE, "user_103"),
                ):
                    ctx = browser.new_context(viewport=viewport, device_scale_factor=1)
                    page = ctx.new_page()
                    page.goto(server.widget_url(shopper))
                    box = page.get_by_role("textbox", name="Message")
                    expect(box).to_be_enabled()
                    box.fill("Hi! Is there any discount on my cart today?")
                    box.press("Enter")
                    expect(page.get_by_role("button", name="Accept")).to_be_visible()
                    page.locator("#message").blur()
                    saved.append(out / f"widget-{size}.png")
                    page.screenshot(path=saved[-1])

                    sign_in_page(page, server, "/manager")
                    expect(page.get_by_test_id("approval")).to_have_count(1)
                    saved.append(out / f"manager-{size}.png")
                    page.screenshot(path=saved[-1], full_page=True)

                    page.goto(server.url + "/analyst")
                    expect(page.locator("svg[data-chart]").first).to_be_visible()
                    saved.append(out / f"analyst-{size}.png")
                    page.screenshot(path=saved[-1], full_page=True)
                    ctx.close()
                browser.close()
        finally:
            server.stop()
    return saved


if __name__ == "__main__":
    for path in main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT):
        print(path)
