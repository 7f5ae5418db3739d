"""The money rules of graph.policy, table-driven: every branch and every boundary."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from graph.policy import (
    CURVE_EXPONENT,
    approval_reasons,
    clamp_offer,
    compute_cap,
    floor_half,
    max_unapproved_percent,
    round_bound,
    round_ceiling,
    scheduled_offer,
)
from graph.settings import Settings
from stores.features import FeatureStore
from stores.models import CustomerFeatures
from stores.seed import HAND_USERS

DEFAULTS = Settings()


def feats(
    *,
    churn: float = 0.5,
    ltv: float = 1000.0,
    inventory: str = "Normal",
    margin: float = 0.40,
    cart: float = 100.0,
) -> CustomerFeatures:
    """Features of a neutral customer: mid churn, no LTV bonus, Normal stock, small cart."""
    return CustomerFeatures(
        user_id="u",
        cart_value=cart,
        margin=margin,
        inventory=inventory,  # type: ignore[arg-type]
        lifetime_value=ltv,
        churn_probability=churn,
        avg_days_between_orders=20.0,
        updated_at=datetime(2025, 1, 1, tzinfo=UTC),
    )


# --- churn bands ----------------------------------------------------------------------

CHURN_BANDS = [
    # churn, expected share, band, expected percent (margin 0.40, cart 100, no bonus)
    pytest.param(0.71, 0.50, "high", 20.0, id="just-above-0.7-high"),
    pytest.param(0.99, 0.50, "high", 20.0, id="very-high"),
    pytest.param(0.70, 0.25, "mid", 10.0, id="exactly-0.7-is-mid"),
    pytest.param(0.50, 0.25, "mid", 10.0, id="inside-mid"),
    pytest.param(0.30, 0.25, "mid", 10.0, id="exactly-0.3-is-mid"),
    pytest.param(0.2999, 0.10, "low", 4.0, id="just-below-0.3-low"),
    pytest.param(0.0, 0.10, "low", 4.0, id="zero-churn-low"),
]


@pytest.mark.parametrize(("churn", "share", "band", "percent"), CHURN_BANDS)
def test_churn_band_sets_the_share(churn: float, share: float, band: str, percent: float) -> None:
    d = compute_cap(feats(churn=churn), DEFAULTS)
    assert d.churn_band == band
    assert d.share == pytest.approx(share)
    assert d.cap_percent == percent
    assert d.ltv_bonus is False
    assert d.inventory_factor == 1.0


# --- lifetime-value bonus --------------------------------------------------------------

LTV_BONUS = [
    # churn, ltv, bonus?, share, cap (margin 0.40)
    pytest.param(0.5, 2000.0, True, 0.35, 14.0, id="mid-ltv-exactly-2000-bonus"),
    pytest.param(0.5, 1999.99, False, 0.25, 10.0, id="mid-ltv-1999.99-no-bonus"),
    pytest.param(0.5, 50000.0, True, 0.35, 14.0, id="mid-huge-ltv-same-bonus"),
    pytest.param(0.9, 5000.0, True, 0.50, 20.0, id="high-plus-bonus-capped-at-max-share"),
    pytest.param(0.9, 1999.99, False, 0.50, 20.0, id="high-no-bonus"),
    pytest.param(0.1, 2600.0, True, 0.20, 5.0, id="low-plus-bonus-then-5pct-ceiling"),
    pytest.param(0.1, 1999.99, False, 0.10, 4.0, id="low-no-bonus"),
]


@pytest.mark.parametrize(("churn", "ltv", "bonus", "share", "cap"), LTV_BONUS)
def test_ltv_bonus(churn: float, ltv: float, bonus: bool, share: float, cap: float) -> None:
    d = compute_cap(feats(churn=churn, ltv=ltv), DEFAULTS)
    assert d.ltv_bonus is bonus
    assert d.share == pytest.approx(share)
    assert d.share <= DEFAULTS.max_share
    assert d.cap_percent == cap


# --- inventory --------------------------------------------------------------------------

INVENTORY = [
    # inventory, factor, cap (high churn: share 0.5, margin 0.40 -> 20 % before the factor)
    pytest.param("High", 1.0, 20.0, id="high-x1"),
    pytest.param("Normal", 1.0, 20.0, id="normal-x1"),
    pytest.param("Low", 0.5, 10.0, id="low-halves"),
    pytest.param("Critical", 0.0, 0.0, id="critical-zero"),
]


@pytest.mark.parametrize(("inventory", "factor", "cap"), INVENTORY)
def test_inventory_factor(inventory: str, factor: float, cap: float) -> None:
    d = compute_cap(feats(churn=0.9, inventory=inventory), DEFAULTS)
    assert d.inventory_factor == factor
    assert d.share == pytest.approx(0.5 * factor)
    assert d.cap_percent == cap
    assert d.max_amount == pytest.approx(100.0 * cap / 100)


def test_critical_stock_gives_nothing_even_to_the_best_customer() -> None:
    d = compute_cap(feats(churn=0.99, ltv=99999.0, inventory="Critical", margin=1.0), DEFAULTS)
    assert d.cap_percent == 0.0
    assert d.max_amount == 0.0
    assert d.margin_percent_cap == 0.0


# --- rounding down to the 0.5 grid -------------------------------------------------------

ROUNDING = [
    # churn, margin, expected percent  (mid share 0.25 or high share 0.5, cart 100)
    pytest.param(0.5, 0.33, 8.0, id="8.25-down-to-8.0"),
    pytest.param(0.5, 0.30, 7.5, id="7.5-stays-7.5"),
    pytest.param(0.5, 0.38, 9.5, id="9.5-stays"),
    pytest.param(0.5, 0.39, 9.5, id="9.75-down-to-9.5"),
    pytest.param(0.5, 0.41, 10.0, id="10.25-down-to-10"),
    pytest.param(0.9, 0.29, 14.5, id="14.5-float-noise-stays-14.5"),
    pytest.param(0.9, 0.57, 28.5, id="28.5-float-noise-stays-28.5"),
    pytest.param(0.5, 0.58, 14.5, id="mid-14.5-float-noise"),
    pytest.param(0.9, 0.15, 7.5, id="7.5000000001-down-to-7.5"),
    pytest.param(0.5, 0.01, 0.0, id="0.25-down-to-0"),
]


@pytest.mark.parametrize(("churn", "margin", "percent"), ROUNDING)
def test_cap_is_rounded_down_to_half_percent(churn: float, margin: float, percent: float) -> None:
    d = compute_cap(feats(churn=churn, margin=margin), DEFAULTS)
    assert d.cap_percent == percent
    assert (d.cap_percent * 2) == int(d.cap_percent * 2)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(7.5, 7.5, id="on-grid"),
        pytest.param(7.49, 7.0, id="just-below"),
        pytest.param(7.99, 7.5, id="just-below-int"),
        pytest.param(8.0, 8.0, id="integer"),
        pytest.param(0.0, 0.0, id="zero"),
        pytest.param(0.1 + 0.2 + 7.2, 7.5, id="sum-with-noise-above"),
        pytest.param(100 * 0.29 * 0.5, 14.5, id="product-with-noise-below"),
        pytest.param(-0.25, -0.5, id="negative-floors-away"),
    ],
)
def test_floor_half(value: float, expected: float) -> None:
    assert floor_half(value) == expected


# --- low-churn ceiling -------------------------------------------------------------------

LOW_CEILING = [
    # churn, margin, cap, ceiling applied?
    pytest.param(0.12, 0.65, 5.0, True, id="6.5-capped-to-5"),
    pytest.param(0.12, 0.90, 5.0, True, id="9-capped-to-5"),
    pytest.param(0.12, 0.50, 5.0, False, id="exactly-5-not-applied"),
    pytest.param(0.12, 0.40, 4.0, False, id="4-below-ceiling"),
    pytest.param(0.30, 0.90, 22.5, False, id="mid-band-has-no-ceiling"),
]


@pytest.mark.parametrize(("churn", "margin", "cap", "applied"), LOW_CEILING)
def test_low_churn_ceiling(churn: float, margin: float, cap: float, applied: bool) -> None:
    d = compute_cap(feats(churn=churn, margin=margin), DEFAULTS)
    assert d.cap_percent == cap
    assert d.low_churn_ceiling_applied is applied


# --- absolute amount cap -----------------------------------------------------------------

AMOUNT_CAP = [
    # churn, ltv, margin, cart, cap, amount cap applied?, max amount
    pytest.param(0.92, 6400.0, 0.45, 1500.0, 10.0, True, 150.0, id="22.5pct-of-1500-to-10pct"),
    pytest.param(0.9, 100.0, 0.40, 750.0, 20.0, False, 150.0, id="exactly-150-not-applied"),
    pytest.param(0.9, 100.0, 0.40, 760.0, 19.5, True, 148.2, id="152-floored-to-19.5pct"),
    pytest.param(0.9, 100.0, 0.40, 10000.0, 1.5, True, 150.0, id="huge-cart-1.5pct"),
    pytest.param(0.9, 100.0, 0.40, 0.0, 20.0, False, 0.0, id="empty-cart-no-amount-cap"),
]


@pytest.mark.parametrize(("churn", "ltv", "margin", "cart", "cap", "applied", "amount"), AMOUNT_CAP)
def test_amount_cap(
    churn: float,
    ltv: float,
    margin: float,
    cart: float,
    cap: float,
    applied: bool,
    amount: float,
) -> None:
    d = compute_cap(feats(churn=churn, ltv=ltv, margin=margin, cart=cart), DEFAULTS)
    assert d.cap_percent == cap
    assert d.amount_cap_applied is applied
    assert d.max_amount == pytest.approx(amount)
    assert d.max_amount <= DEFAULTS.max_discount_amount


# --- the settings knobs change the result ------------------------------------------------

KNOBS = [
    # overrides, features, expected cap
    pytest.param({}, {"churn": 0.9, "cart": 500.0}, 20.0, id="defaults"),
    pytest.param(
        {"max_discount_amount": 50}, {"churn": 0.9, "cart": 500.0}, 10.0, id="amount-cap-50"
    ),
    pytest.param({"churn_high": 0.95}, {"churn": 0.9}, 10.0, id="raised-high-band-threshold"),
    pytest.param({"churn_low": 0.6}, {"churn": 0.5}, 4.0, id="raised-low-band-threshold"),
    pytest.param({"share_high_churn": 0.3}, {"churn": 0.9}, 12.0, id="smaller-high-share"),
    pytest.param({"share_mid_churn": 0.2}, {"churn": 0.5}, 8.0, id="smaller-mid-share"),
    pytest.param(
        {"share_low_churn": 0.05}, {"churn": 0.1, "margin": 0.9}, 4.5, id="smaller-low-share"
    ),
    pytest.param(
        {"ltv_bonus_threshold": 500}, {"churn": 0.5, "ltv": 600.0}, 14.0, id="lower-ltv-threshold"
    ),
    pytest.param(
        {"ltv_bonus_share": 0.2}, {"churn": 0.5, "ltv": 3000.0}, 18.0, id="bigger-ltv-bonus"
    ),
    pytest.param({"max_share": 0.6}, {"churn": 0.9, "ltv": 3000.0}, 24.0, id="raised-max-share"),
    pytest.param(
        {"low_inventory_factor": 0.25}, {"churn": 0.9, "inventory": "Low"}, 5.0, id="low-x0.25"
    ),
    pytest.param(
        {"critical_inventory_factor": 0.5},
        {"churn": 0.9, "inventory": "Critical"},
        10.0,
        id="critical-x0.5",
    ),
    pytest.param(
        {"low_churn_max_percent": 3.0}, {"churn": 0.1, "margin": 0.9}, 3.0, id="ceiling-3"
    ),
]


@pytest.mark.parametrize(("overrides", "features", "cap"), KNOBS)
def test_settings_knobs(overrides: dict[str, Any], features: dict[str, Any], cap: float) -> None:
    assert compute_cap(feats(**features), Settings(**overrides)).cap_percent == cap


def test_cap_decision_is_frozen_and_records_the_margin_cap() -> None:
    d = compute_cap(feats(churn=0.92, ltv=6400.0, margin=0.45, cart=1500.0), DEFAULTS)
    assert d.margin_percent_cap == 22.5  # before the amount cap
    with pytest.raises(ValidationError):
        d.cap_percent = 50.0  # type: ignore[misc]


# --- clamp_offer -------------------------------------------------------------------------

CLAMP = [
    # model percent, standing, cap, expected
    pytest.param(25.0, 0.0, 20.0, 20.0, id="above-cap-to-cap"),
    pytest.param(20.0, 0.0, 20.0, 20.0, id="at-cap"),
    pytest.param(12.0, 0.0, 20.0, 12.0, id="inside"),
    pytest.param(3.0, 5.0, 20.0, 5.0, id="below-standing-to-standing"),
    pytest.param(-4.0, 0.0, 20.0, 0.0, id="negative-to-zero"),
    pytest.param(float("nan"), 5.0, 20.0, 5.0, id="nan-to-standing"),
    pytest.param(float("nan"), 0.0, 20.0, 0.0, id="nan-no-standing"),
    pytest.param(float("inf"), 0.0, 20.0, 20.0, id="inf-to-cap"),
    pytest.param(12.0, 8.0, 5.0, 8.0, id="standing-above-fallen-cap-honoured"),
    pytest.param(2.0, 8.0, 0.0, 8.0, id="standing-honoured-when-cap-zero"),
    pytest.param(7.74, 0.0, 20.0, 7.5, id="grid-down"),
    pytest.param(7.99, 0.0, 20.0, 7.5, id="grid-down-near-int"),
    pytest.param(7.5, 0.0, 20.0, 7.5, id="on-grid"),
    pytest.param(19.9, 0.0, 20.0, 19.5, id="grid-below-cap"),
    pytest.param(10.0, 0.0, 0.0, 0.0, id="zero-cap"),
]


@pytest.mark.parametrize(("model", "standing", "cap", "expected"), CLAMP)
def test_clamp_offer(model: float, standing: float, cap: float, expected: float) -> None:
    got = clamp_offer(model, standing, cap)
    assert got == expected
    assert not math.isnan(got)


# --- approvals ---------------------------------------------------------------------------

APPROVAL = [
    # percent, amount, overrides, expected reason patterns
    pytest.param(15.0, 100.0, {}, [], id="both-at-threshold-no-approval"),
    pytest.param(15.5, 10.0, {}, [r"15\.5% is above the 15% approval threshold"], id="percent"),
    pytest.param(10.0, 100.01, {}, [r"100\.01 is above the 100\.00 approval amount"], id="amount"),
    pytest.param(20.0, 120.0, {}, [r"20% is above", r"120\.00 is above"], id="both"),
    pytest.param(15.0, 120.0, {"approval_amount": 150.0}, [], id="raised-amount-knob"),
    pytest.param(12.0, 10.0, {"approval_percent": 10.0}, [r"12% is above the 10%"], id="pct-knob"),
]


@pytest.mark.parametrize(("percent", "amount", "overrides", "patterns"), APPROVAL)
def test_approval_reasons(
    percent: float, amount: float, overrides: dict[str, Any], patterns: list[str]
) -> None:
    reasons = approval_reasons(percent, amount, Settings(**overrides))
    assert len(reasons) == len(patterns)
    for reason, pattern in zip(reasons, patterns, strict=True):
        assert re.search(pattern, reason), reason


UNAPPROVED = [
    # cart, cap, overrides, expected
    pytest.param(100.0, 20.0, {}, 15.0, id="percent-threshold-binds"),
    pytest.param(100.0, 10.0, {}, 10.0, id="cap-binds"),
    pytest.param(800.0, 15.0, {}, 12.5, id="amount-binds-100-of-800"),
    pytest.param(760.0, 20.0, {}, 13.0, id="amount-binds-floored-13.15"),
    pytest.param(0.0, 20.0, {}, 15.0, id="empty-cart"),
    pytest.param(100.0, 0.0, {}, 0.0, id="zero-cap"),
    pytest.param(800.0, 15.0, {"approval_amount": 200.0}, 15.0, id="raised-amount-knob"),
]


@pytest.mark.parametrize(("cart", "cap", "overrides", "expected"), UNAPPROVED)
def test_max_unapproved_percent(
    cart: float, cap: float, overrides: dict[str, Any], expected: float
) -> None:
    s = Settings(**overrides)
    got = max_unapproved_percent(cart, cap, s)
    assert got == expected
    assert approval_reasons(got, round(cart * got / 100, 2), s) == []


# --- the ten seeded users get the caps of the seed docstring table -----------------------

SEEDED = {
    "user_100": (20.0, "high", True, False, False),
    "user_101": (8.0, "mid", False, False, False),
    "user_102": (14.0, "mid", True, False, False),
    "user_103": (5.0, "low", False, False, True),
    "user_104": (10.0, "high", True, True, False),
    "user_105": (5.0, "mid", False, False, False),
    "user_106": (0.0, "high", False, False, False),
    "user_107": (4.0, "low", True, False, False),
    "user_108": (3.0, "low", False, False, False),
    "user_109": (15.0, "high", True, False, False),
}


def _docstring_rows() -> dict[str, str]:
    """The rows of the users table in the stores.seed docstring, by user id."""
    import stores.seed

    rows = {}
    for line in (stores.seed.__doc__ or "").splitlines():
        m = re.match(r"(user_\d+)\s", line)
        if m:
            rows[m.group(1)] = line
    return rows


def test_docstring_table_claims_these_caps() -> None:
    rows = _docstring_rows()
    assert list(rows) == list(SEEDED) == [u[0] for u in HAND_USERS]
    for user, (cap, *_rest) in SEEDED.items():
        # the claimed cap appears as a percent of its own (5 matches "5.0%" but not "6.5%")
        assert re.search(rf"(?<![\d.]){cap:g}(?:\.0)?%", rows[user]), (user, rows[user])


@pytest.mark.parametrize("user", list(SEEDED))
def test_seeded_user_cap_via_real_stores(settings: Settings, user: str) -> None:
    cap, band, bonus, amount_cap, ceiling = SEEDED[user]
    store = FeatureStore.open(settings.hot_db, settings.cold_db)
    try:
        found = store.lookup(user)
    finally:
        store.close()
    assert isinstance(found, CustomerFeatures), found
    d = compute_cap(found, settings)
    assert d.cap_percent == cap
    assert d.churn_band == band
    assert d.ltv_bonus is bonus
    assert d.amount_cap_applied is amount_cap
    assert d.low_churn_ceiling_applied is ceiling
    assert d.max_amount == pytest.approx(round(found.cart_value * cap / 100, 2))


# --- concession schedule --------------------------------------------------------------


@pytest.mark.parametrize(
    ("curve", "rounds", "cap", "expected"),
    [
        # cap 20, open share 0.4: round 1 opens at 8, only the last round reaches 20
        ("linear", 3, 20.0, [8.0, 14.0, 20.0]),
        ("boulware", 3, 20.0, [8.0, 11.0, 20.0]),  # 8 + 12 * 0.5**2
        ("conceder", 3, 20.0, [8.0, 16.0, 20.0]),  # 8 + 12 * 0.5**0.5 = 16.48 -> 16
        ("linear", 5, 20.0, [8.0, 11.0, 14.0, 17.0, 20.0]),
        ("boulware", 5, 20.0, [8.0, 8.5, 11.0, 14.5, 20.0]),
        ("conceder", 5, 20.0, [8.0, 14.0, 16.0, 18.0, 20.0]),
        ("linear", 2, 5.0, [2.0, 5.0]),
        ("linear", 3, 7.5, [3.0, 5.0, 7.5]),  # 0.4 * 7.5 = 3.0; 5.25 -> 5.0
        ("linear", 3, 0.0, [0.0, 0.0, 0.0]),  # critical stock: nothing, ever
        ("conceder", 3, 1.0, [0.0, 0.5, 1.0]),  # below the grid: round 2 stays under the cap
        ("linear", 1, 20.0, [8.0]),  # one round: the opening share is also the last word
    ],
)
def test_round_ceiling_table(curve: str, rounds: int, cap: float, expected: list[float]) -> None:
    got = [round_ceiling(r, rounds, cap, open_share=0.4, curve=curve) for r in range(1, rounds + 1)]
    assert got == expected
    assert got == sorted(got)  # never falls from one round to the next
    assert all(c < cap for c in got[:-1]) or cap == 0  # only the last round reaches the cap


@pytest.mark.parametrize("curve", ["linear", "boulware", "conceder"])
@pytest.mark.parametrize("share", [0.2, 0.4, 0.6, 0.99])
def test_opening_is_at_most_open_share_of_the_cap_on_the_grid(curve: str, share: float) -> None:
    for cap in (0.5, 3.0, 7.5, 14.5, 20.0, 33.0):
        opening = round_ceiling(1, 3, cap, open_share=share, curve=curve)
        assert opening <= share * cap
        assert opening * 2 == int(opening * 2)  # on the 0.5 grid


def test_only_the_last_round_reaches_the_cap_whatever_the_float_noise() -> None:
    # hypothesis found it: share 0.9999999999999999 made round 2 of 3 reach a 0.5 cap
    ceilings = [
        round_ceiling(r, 3, 0.5, open_share=0.9999999999999999, curve="linear") for r in (1, 2, 3)
    ]
    assert ceilings == [0.0, 0.0, 0.5]
    assert round_ceiling(1, 3, 20.0, open_share=1.0, curve="linear") == 19.5


def test_curves_order_boulware_below_linear_below_conceder() -> None:
    mid = [round_ceiling(3, 5, 20.0, open_share=0.4, curve=c) for c in CURVE_EXPONENT]
    assert dict(zip(CURVE_EXPONENT, mid, strict=True)) == {
        "boulware": 11.0,
        "linear": 14.0,
        "conceder": 16.0,
    }


@pytest.mark.parametrize(
    ("ceiling", "ask", "standing", "last", "expected"),
    [
        (8.0, None, 0.0, False, 8.0),  # no ask: the ceiling
        (8.0, 5.0, 0.0, False, 2.5),  # an ask below the ceiling: halfway to it first
        (8.0, 5.0, 3.0, False, 4.0),  # halfway from the standing offer to the ask
        (8.0, 5.0, 3.0, True, 5.0),  # the last round may meet the ask itself
        (8.0, 8.0, 0.0, True, 8.0),  # an ask at the ceiling, last round
        (8.0, 25.0, 0.0, False, 8.0),  # ask far above the ceiling: the ceiling
        (8.0, 25.0, 6.0, False, 8.0),  # halfway (15.5) is above the ceiling: the ceiling
        (20.0, None, 11.0, True, 15.5),  # best and final splits the room left to the cap
        (20.0, 40.0, 11.0, True, 15.5),  # an ask above the cap changes nothing
        (20.0, 14.0, 11.0, True, 14.0),  # an ask inside the room: never more than asked
        (20.0, None, 0.0, True, 20.0),  # nothing standing: the last round's ceiling
        (8.0, 5.3, 0.0, True, 5.0),  # the ask on the 0.5 grid, rounded down
        (8.0, 0.0, 0.0, False, 8.0),  # "0%" is no ask
        (8.0, 2.0, 3.0, False, 2.0),  # asks less than stands: below it (the offer holds)
    ],
)
def test_round_bound_meets_in_the_middle_never_more_than_asked(
    ceiling: float, ask: float | None, standing: float, last: bool, expected: float
) -> None:
    assert round_bound(ceiling, ask, standing=standing, last_round=last) == expected


@pytest.mark.parametrize(
    ("model", "standing", "bound", "step", "expected"),
    [
        (None, 0.0, 8.0, 1.0, 8.0),  # no usable model reply: the schedule's bound
        (5.0, 0.0, 8.0, 1.0, 5.0),  # the model may ask less than the bound
        (12.0, 0.0, 8.0, 1.0, 8.0),  # never above the bound
        (0.0, 0.0, 8.0, 1.0, 1.0),  # an opening offer is a visible step too
        (8.5, 8.0, 14.0, 1.0, 9.0),  # a counter rises by at least the step
        (9.0, 8.0, 14.0, 1.0, 9.0),  # exactly one step
        (3.0, 8.0, 14.0, 1.0, 9.0),  # below the standing offer: up to one step
        (14.0, 8.0, 8.5, 1.0, 8.0),  # the bound allows less than a step: the offer holds
        (14.0, 8.0, 8.0, 1.0, 8.0),  # bound at the standing offer: holds
        (14.0, 10.0, 8.0, 1.0, 10.0),  # bound below the standing offer: never taken back
        (8.2, 8.0, 14.0, 0.7, 9.0),  # a step off the grid rounds up to the grid (8.7 -> 9)
        (8.0, 8.0, 8.5, 0.5, 8.5),  # half-point steps
        (float("nan"), 2.0, 6.0, 1.0, 6.0),  # NaN is no pick: the bound
    ],
)
def test_scheduled_offer_visible_steps(
    model: float | None, standing: float, bound: float, step: float, expected: float
) -> None:
    got = scheduled_offer(model, standing, bound, step)
    assert got == expected
    assert got == standing or got - standing >= step
    assert got <= max(bound, standing)


@given(
    cap=st.integers(0, 100).map(lambda x: x / 2),
    rounds=st.integers(1, 6),
    share=st.floats(0.05, 1.0),
    curve=st.sampled_from(list(CURVE_EXPONENT)),
    asks=st.lists(st.one_of(st.none(), st.floats(0, 60)), min_size=6, max_size=6),
    picks=st.lists(st.one_of(st.none(), st.floats(0, 60)), min_size=6, max_size=6),
)
def test_schedule_invariants(cap, rounds, share, curve, asks, picks) -> None:
    standing = 0.0
    for r in range(1, rounds + 1):
        ceiling = round_ceiling(r, rounds, cap, open_share=share, curve=curve)
        assert ceiling <= cap and (ceiling < cap or r == rounds or cap == 0)
        ask = asks[r - 1]
        bound = round_bound(ceiling, ask, standing=standing, last_round=r == rounds)
        offer = scheduled_offer(picks[r - 1], standing, bound, 1.0)
        assert offer == standing or (offer - standing >= 1.0 and offer <= bound)
        if ask is not None and ask > 0:
            assert offer <= max(ask, standing)  # never more than asked
        if r == rounds and standing > 0:  # best and final leaves room below the cap
            assert offer <= max(standing + (cap - standing) / 2, standing)
        standing = offer
    assert standing <= cap


@pytest.mark.parametrize(
    ("objective", "env", "share", "curve"),
    [
        ("margin", {}, 0.4, "boulware"),
        ("conversion", {}, 0.6, "conceder"),
        ("conversion", {"open_share": 0.3}, 0.3, "conceder"),  # an explicit knob wins
        ("margin", {"concession_curve": "linear"}, 0.4, "linear"),
    ],
)
def test_objective_picks_defaults(objective: str, env: dict, share: float, curve: str) -> None:
    s = Settings(objective=objective, **env)
    assert (s.open_share, s.concession_curve) == (share, curve)
    assert s.with_data_dir("/tmp/x").open_share == share  # survives a copy


def test_a_throwaway_data_dir_never_uses_the_deployments_database(tmp_path) -> None:
    """The demo and the simulator seed their own data: never the shop's Postgres."""
    s = Settings(database_url="postgresql://shop@db/shop", data_dir=tmp_path / "a")
    other = s.with_data_dir(tmp_path / "b")
    assert (
        other.database_url is None and other.checkpoint_db == tmp_path / "b" / "checkpoints.sqlite"
    )
