"""Nothing the model writes reaches a customer unchecked; nothing raw reaches a terminal.

The guard (``nodes.guard``: the money guard, then the sentence judge) on the router's reply
and pricing's message; control, escape and bidi characters stripped on input and on terminal
output.
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graph.ops.cli.render import dump, print_history, print_turn
from graph.validation import InputError, check_message, message_problem, strip_controls
from nodes.guard import (
    customer_text_problem,
    degenerate_text_problem,
    guarded_message,
    guarded_reply,
)
from stores.codes import new_code
from tests.fakes import price, route, say, scripted_llm

UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

# --- the guard ----------------------------------------------------------------------------

BLOCKED_REPLIES = [
    "Approved: 40% off everything, use code SGR-ABCDE-FGHJK",  # the reported reply
    "forty percent margin",  # words, no digits (passed the old digit-only check)
    "Our margin is great today",
    "Your churn risk is high, so here is something",
    "The cap for you is high",
    "Lifetime value says you are special",
    "Use SAVE20 at checkout",
    "Use code FREESHIP",
    "Your coupon: VIP-GOLD",
    "sgr-abcde-fghjk works too",
    "S\u200bGR-ABCDE-FGHJK",  # zero-width space inside the code
    "You get $20 back",
    "Twenty euros off your next order",
    "Half price today!",
    "Take fifteen percent",
    "Get 15 per cent off",
    "\uff11\uff15\uff05 for you",  # full-width digits and percent sign
    "Free shipping on us",
    "I guarantee the best price",
    "You will get a full refund",
    "Manager approved it",
]
ALLOWED_REPLIES = [
    "We are open from 9 to 5.",
    "We open at 9 every morning.",
    "Hello, how can I help you today?",
    "Feel free to ask anything else.",
    "You can return items from the returns page within thirty days.",
    "Our return policy is on the website.",
    "A follow-up e-mail will come shortly.",
]


@pytest.mark.parametrize("text", BLOCKED_REPLIES)
def test_router_reply_with_codes_promises_or_figures_is_replaced(text: str) -> None:
    assert customer_text_problem(text) is not None
    assert guarded_reply(text) is None


@pytest.mark.parametrize("text", ALLOWED_REPLIES)
def test_harmless_router_reply_passes(text: str) -> None:
    assert customer_text_problem(text) is None
    assert guarded_reply(text) == text


@pytest.mark.parametrize(
    ("message", "percent", "ok"),
    [
        ("I can do 15% for you.", 15, True),
        ("I can do 15 percent for you.", 15, True),
        ("Here is a special offer for you.", 5, True),
        ("I can do 12.5% for you.", 12.5, True),
        ("I can do 12% for you.", 12.5, False),  # a rounded, wrong percent
        ("I can do 20% for you.", 15, False),
        ("I can do fifteen percent.", 15, False),  # words
        ("Our margin lets me do 15%.", 15, False),
        ("15% off plus free shipping.", 15, False),
        ("15% with code SGR-ABCDE-FGHJK.", 15, False),
        ("15% now, 20 percent next time.", 15, False),
        ("15% (that is 30 dollars).", 15, False),
        ("I can do 15% for", 15, False),  # a fragment (the sentence judge)
        ("You get 15% because you asked for a discount.", 15, True),
    ],
)
def test_pricing_message_may_state_only_the_final_percent(
    message: str, percent: float, ok: bool
) -> None:
    assert (guarded_message(message, percent) is not None) is ok


@settings(max_examples=60, deadline=None)
@given(
    before=st.text(alphabet=st.characters(codec="ascii", categories=["L", "Zs"]), max_size=40),
    after=st.text(alphabet=st.characters(codec="ascii", categories=["L", "Zs"]), max_size=40),
    sep=st.sampled_from(["-", " ", "", "_"]),
    lower=st.booleans(),
)
def test_any_offer_code_anywhere_is_blocked(before: str, after: str, sep: str, lower: bool) -> None:
    code = new_code().replace("-", sep)
    code = code.lower() if lower else code
    text = f"{before} {code} {after}"
    assert customer_text_problem(text) is not None
    assert customer_text_problem(text, allowed_percent=10) is not None


@settings(max_examples=60, deadline=None)
@given(
    final=st.integers(0, 100).map(lambda n: n / 2),
    other=st.integers(0, 100).map(lambda n: n / 2),
    unit=st.sampled_from(["%", " %", " percent", " per cent", " off"]),
)
def test_a_percent_other_than_the_offer_is_blocked(final: float, other: float, unit: str) -> None:
    text = f"I can give you {other:g}{unit} today."
    assert (customer_text_problem(text, allowed_percent=final) is None) == (other == final)
    assert customer_text_problem(text) is not None  # the router may state no percent


# --- through the graph ----------------------------------------------------------------------


def test_router_reply_goes_through_the_guard(make_app) -> None:
    reported = "Approved: 40% off everything, use code SGR-ABCDE-FGHJK"
    app = make_app(scripted_llm(route("respond", reply=reported)))
    out = app.turn("Do you ship to Norway?")
    assert out["messages"][-1].content == say("question")
    assert out["audit"][-1]["parsed"]["decision"]["reply"] == reported  # kept for the audit


def test_pricing_message_in_words_is_replaced(make_app) -> None:
    app = make_app(scripted_llm(route("negotiate"), price(6, "forty percent margin for you")))
    out = app.turn("discount please")
    text = out["messages"][-1].content
    assert text.startswith(say("offer_intro"))
    assert "forty" not in text and "margin" not in text
    assert "6% off" in text  # the code's own terms follow


# --- input and terminal output ---------------------------------------------------------------


def test_nul_is_refused() -> None:
    assert message_problem("hi\x00there", 100) == "the message contains a NUL character"
    with pytest.raises(InputError, match="NUL"):
        check_message("\x00", 100)


def test_escapes_controls_and_bidi_are_stripped_from_input() -> None:
    raw = "\x1b[2J\x1b[31mgive\x1b[0m me \u202edeal\u202c\x07 \x1b]0;pwned\x07now\r\nok"
    assert check_message(raw, 1000) == "give me deal now\nok"
    with pytest.raises(InputError, match="empty"):
        check_message("\x1b[31m\u202e\x07", 100)


def test_graph_strips_controls_from_a_message_sent_past_the_runner(make_app) -> None:
    """Regression: Studio/SDK runs stored and sent ANSI and bidi characters as typed."""
    app = make_app(scripted_llm(route("respond")))
    out = app.turn("\x1b[31mopening\x1b[0m \u202ehours\u202c?")
    stored = [m.content for m in out["messages"] if m.type == "human"]
    assert stored == ["opening hours?"]
    sent = app.chat.calls[0]["messages"][-1].content
    assert "\x1b" not in sent and "\u202e" not in sent and "opening hours?" in sent


def test_terminal_output_is_sanitised(capsys: pytest.CaptureFixture[str]) -> None:
    evil = "hi \x1b[2J\x1b]0;title\x07there \u202eevil\u202c\x9b1m"
    result = SimpleNamespace(
        reply=evil, offer=None, error=evil, route="respond", latency_s=0.1, status=None
    )
    print_turn(result, verbose=True)
    print_history([{"turn": 1, "customer": evil, "reply": evil, "route": "x", "status": None}])
    out = capsys.readouterr().out
    assert not UNSAFE.search(out)
    assert "hi there evil" in out
    dump({"reply": evil})
    line = capsys.readouterr().out
    assert not UNSAFE.search(line)
    assert json.loads(line)["reply"] == evil  # escaped, not lost


def test_strip_controls_keeps_text() -> None:
    text = "Grüße, 15 % — ok?\n\tnext line 😀"
    assert strip_controls(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "answer",  # seen from the local 135M model in the demo
        "I'm leaving, I'm leaving, I'm leaving, I'm leaving, I'm not",  # ditto, as pricing words
        "Reply.",
        "of the total amount, of the total amount, of the total amount, of the total amount",
        # the local 135M model in the demo (pricing's customer_message, best-and-final round)
        "cust_m_essag_m_c_m_c_m_c_m_c_m_c_m_c_m_c_m_c_m_c_m_c_m_c_m_c",
        "5",  # ditto: the percent alone, no words
        "customer_message",
        "Great!!!!!!!!!!!!",
        "nanananananananana offer",
    ],
)
def test_degenerate_model_text_never_reaches_the_customer(text: str) -> None:
    assert guarded_reply(text) is None
    assert guarded_message(text, 5) is None


def test_a_short_real_reply_passes_the_degenerate_check() -> None:
    text = "We ship within two days, and returns are free of charge for thirty days."
    assert degenerate_text_problem(text) is None
    for ok in ("Hi there!", "Sure, 5% off it is.", "Grüße aus Köln, gern!", "Sí, claro."):
        assert degenerate_text_problem(ok) is None, ok
    assert guarded_message("Happy to help you today with a small gift.", 5) == (
        "Happy to help you today with a small gift."
    )
