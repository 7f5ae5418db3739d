"""Money rules as pure functions: the discount cap, the clamp, the approval test.

The model proposes; these functions decide. Nothing here calls a model or a database.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from graph.settings import Settings
from stores.models import CustomerFeatures, discount_amount


class CapDecision(BaseModel):
    """How the cap for one customer was reached, step by step (kept for the audit trail)."""

    model_config = ConfigDict(frozen=True)

    share: float
    churn_band: str
    ltv_bonus: bool
    inventory_factor: float
    margin_percent_cap: float
    cap_percent: float
    amount_cap_applied: bool
    low_churn_ceiling_applied: bool
    max_amount: float


def floor_half(value: float) -> float:
    """Round down to the nearest 0.5 without binary-float surprises (7.5 stays 7.5).

    Float noise is dropped first (9 decimals): ``100 * 0.29 * 0.5`` is 14.499999999999998
    in binary floating point but 14.5 % in money terms, and must stay 14.5.
    """
    doubled = (Decimal(str(round(value, 9))) * 2).to_integral_value(rounding=ROUND_FLOOR)
    return float(doubled / 2)


def churn_share(churn: float, s: Settings) -> tuple[float, str]:
    """Base share of margin by churn band: > high, [low, high], < low."""
    if churn > s.churn_high:
        return s.share_high_churn, "high"
    if churn >= s.churn_low:
        return s.share_mid_churn, "mid"
    return s.share_low_churn, "low"


def inventory_factor(inventory: str, s: Settings) -> float:
    """Scarce stock earns less discount; stock about to sell out earns none."""
    return {"Low": s.low_inventory_factor, "Critical": s.critical_inventory_factor}.get(
        inventory, 1.0
    )


def compute_cap(f: CustomerFeatures, s: Settings) -> CapDecision:
    """The highest discount percent this customer may get on this cart."""
    share, band = churn_share(f.churn_probability, s)
    bonus = f.lifetime_value >= s.ltv_bonus_threshold
    if bonus:
        share = min(share + s.ltv_bonus_share, s.max_share)
    factor = inventory_factor(f.inventory, s)
    share *= factor
    percent = floor_half(100 * f.margin * share)
    margin_cap = percent
    ceiling = band == "low" and percent > s.low_churn_max_percent
    if ceiling:
        percent = s.low_churn_max_percent
    amount_cap = False
    if f.cart_value > 0 and f.cart_value * percent / 100 > s.max_discount_amount:
        percent = floor_half(s.max_discount_amount * 100 / f.cart_value)
        amount_cap = True
    return CapDecision(
        share=round(share, 6),
        churn_band=band,
        ltv_bonus=bonus,
        inventory_factor=factor,
        margin_percent_cap=margin_cap,
        cap_percent=max(percent, 0.0),
        amount_cap_applied=amount_cap,
        low_churn_ceiling_applied=ceiling,
        max_amount=discount_amount(f.cart_value, max(percent, 0.0)),
    )


def floor_percent(standing: Mapping[str, Any] | None) -> float:
    """The least a new offer may give: the customer's standing offer (0 without one)."""
    return float(standing["discount_percent"]) if standing else 0.0


def clamp_offer(model_percent: float, standing: float, cap: float) -> float:
    """``clamp(model_percent, standing, cap)`` on a 0.5 grid.

    Never above the cap, never below an offer already made. Should the cap have fallen below
    the standing offer since it was made (stock ran low), the standing offer is honoured.
    """
    if math.isnan(model_percent):
        model_percent = standing
    value = min(max(floor_half(model_percent), standing), cap)
    return max(value, standing, 0.0)


def approval_reasons(percent: float, amount: float, s: Settings) -> list[str]:
    """Why an offer needs a manager's approval (empty: it does not)."""
    reasons = []
    if percent > s.approval_percent:
        reasons.append(f"{percent:g}% is above the {s.approval_percent:g}% approval threshold")
    if amount > s.approval_amount:
        reasons.append(f"{amount:.2f} is above the {s.approval_amount:.2f} approval amount")
    return reasons


def max_unapproved_percent(cart_value: float, cap: float, s: Settings) -> float:
    """The highest percent that needs no approval on this cart (within the cap)."""
    percent = min(cap, s.approval_percent)
    if cart_value > 0:
        percent = min(percent, floor_half(s.approval_amount * 100 / cart_value))
    return max(percent, 0.0)


# --- concession schedule (time-based, after Faratin, Sierra & Jennings 1998) -------------

# Faratin's polynomial family: F(t) = k + (1 - k) * t ** (1 / e). e < 1 holds out and
# concedes late (Boulware), e > 1 concedes early (Conceder), e = 1 is linear.
CURVE_EXPONENT: dict[str, float] = {"boulware": 0.5, "linear": 1.0, "conceder": 2.0}


def concession_share(round_no: int, max_rounds: int, open_share: float, curve: str) -> float:
    """Share of the cap a round may reach: ``open_share`` in round 1, 1.0 in the last.

    ``round_no`` counts from 1. With a single round the opening share is also the last word.
    """
    if max_rounds <= 1 or round_no <= 1:
        return open_share
    t = min(round_no - 1, max_rounds - 1) / (max_rounds - 1)
    return open_share + (1 - open_share) * t ** (1 / CURVE_EXPONENT[curve])


def round_ceiling(
    round_no: int, max_rounds: int, cap: float, *, open_share: float, curve: str
) -> float:
    """The highest percent round ``round_no`` may offer, on the 0.5 grid.

    Only the last round (``round_no >= max_rounds``, more than one round) reaches the cap;
    every earlier one stays strictly below it.
    """
    if cap <= 0:
        return 0.0
    last = round_no >= max_rounds
    if last and max_rounds > 1:
        return float(cap)
    ceiling = min(floor_half(cap * concession_share(round_no, max_rounds, open_share, curve)), cap)
    if not last and ceiling >= cap:  # float noise or open_share 1: still below the cap
        ceiling = max(cap - 0.5, 0.0)
    return ceiling


def round_bound(
    ceiling: float, ask: float | None, *, standing: float = 0.0, last_round: bool = False
) -> float:
    """The most this round may offer, on the 0.5 grid: the least of

    * the round's ``ceiling`` (the time curve; the cap in the last round);
    * in the last round, halfway from the standing offer to that ceiling: best and final
      splits the room that is left instead of handing over all of it (a Boulware curve
      otherwise saves its whole remaining concession for the deadline);
    * the customer's ``ask`` (never more than asked), and before the last round only half
      the way from the standing offer to it (meet in the middle).
    """
    bound = ceiling
    if last_round and 0 < standing < ceiling:
        bound = standing + (ceiling - standing) / 2
    if ask is not None and ask > 0:
        target = ask if last_round or ask <= standing else standing + (ask - standing) / 2
        bound = min(bound, target)
    return floor_half(bound)


def scheduled_offer(
    model_percent: float | None, standing: float, bound: float, min_step: float
) -> float:
    """The percent a round offers, or ``standing`` when the offer holds.

    ``model_percent`` (``None``: take the bound) is clamped to ``[standing, bound]``; a
    counter-offer rises by at least ``min_step`` above the standing offer, or the standing
    offer holds. Never above ``bound``.
    """
    if bound <= standing:
        return standing
    pick = bound if model_percent is None or math.isnan(model_percent) else model_percent
    value = min(max(floor_half(pick), standing), bound)
    if value - standing < min_step:
        step_up = -floor_half(-(standing + min_step))  # the 0.5 grid point at or above
        value = step_up if step_up <= bound else standing
    return value
