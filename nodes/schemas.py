"""The schemas are the program: what the router and pricing may answer, built per turn.

The model reasons inside these Pydantic models; the server enforces their JSON schema token by
token and the code validates every reply against **the same model** (``graph.sgr``): each
per-turn constraint — the actions allowed now, the quote taken from the customer's own words,
the percent grid of this pricing round — is a field type (``Literal`` / ``Annotated`` bounds)
built with ``create_model``, never an edit of the generated JSON.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

ActionName = Literal["negotiate", "accept_offer", "respond"]
REASON_CHARS = 40  # each reasoning field of the pricing cascade

# --- router (SGR Routing: analyse, then one action; the tag first) --------------------------


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Negotiate(_Action):
    """Discount, deal, promo code, price match, counter-offer, threat to leave."""

    action: Literal["negotiate"]
    quote: str = Field(
        ..., min_length=1, max_length=60, description="the customer's exact words asking for it"
    )
    # whole percents: a JSON float may run on ("10.000000…") until max_tokens
    requested_percent: int | None = Field(
        ..., ge=0, le=100, description="percent the customer explicitly asks for, else null"
    )


class AcceptOffer(_Action):
    """The customer accepts the offer on the table."""

    action: Literal["accept_offer"]


class Respond(_Action):
    """Anything else: answer directly."""

    action: Literal["respond"]
    reply: str = Field(..., min_length=1, max_length=200)


class RouterDecision(BaseModel):
    """Think first (short), then act. The tag of each action is required and comes first."""

    model_config = ConfigDict(extra="forbid")

    analysis: str = Field(..., max_length=80, description="what the customer wants, briefly")
    decision: Annotated[Negotiate | AcceptOffer | Respond, Field(discriminator="action")]


ACTIONS: dict[str, type[_Action]] = {
    "negotiate": Negotiate,
    "accept_offer": AcceptOffer,
    "respond": Respond,
}


def quoting(clauses: tuple[str, ...]) -> type[Negotiate]:
    """``Negotiate`` whose ``quote`` is one of ``clauses`` (the customer's own words)."""
    return _quoting(clauses)


@lru_cache(maxsize=256)
def _quoting(clauses: tuple[str, ...]) -> type[Negotiate]:
    return create_model(
        "Negotiate",
        __base__=Negotiate,
        __doc__=Negotiate.__doc__,
        quote=(
            Literal[clauses],
            Field(..., description="the customer's exact words asking for it"),
        ),
    )


def decision_model(
    actions: tuple[str, ...] | list[str], clauses: tuple[str, ...] = ()
) -> type[RouterDecision]:
    """``RouterDecision`` whose ``decision`` is the union of ``actions`` only; with
    ``clauses``, a ``negotiate`` can only quote one of them (cached)."""
    return _decision_model(tuple(actions), tuple(clauses))


@lru_cache(maxsize=256)
def _decision_model(actions: tuple[str, ...], clauses: tuple[str, ...]) -> type[RouterDecision]:
    members = tuple(
        quoting(clauses) if a == "negotiate" and clauses else ACTIONS[a] for a in actions
    )
    kind: Any = (
        members[0]
        if len(members) == 1
        else Annotated[Union[members], Field(discriminator="action")]  # noqa: UP007
    )
    return create_model("RouterDecision", __base__=RouterDecision, decision=(kind, ...))


# --- pricing (SGR Cascade: reasoning fields in the order the model must think) --------------


class PricingDecision(BaseModel):
    """The cascade, in the order the model must think."""

    model_config = ConfigDict(extra="forbid")

    # a short clause each: a 135M model fills every string to its bound (graph/budget.py),
    # and on the local CPU model the pricing call is most of a turn: 40 characters, not 60,
    # is ~80 tokens (~2.5 s) less per negotiate turn
    churn_analysis: str = Field(..., max_length=REASON_CHARS, description="how likely to leave")
    financial_analysis: str = Field(
        ..., max_length=REASON_CHARS, description="value of this customer"
    )
    margin_math: str = Field(..., max_length=REASON_CHARS, description="what the margin allows")
    negotiation_position: str = Field(
        ..., max_length=REASON_CHARS, description="offers so far, the customer's ask"
    )
    discount_percent: float = Field(..., ge=0, le=100)
    customer_message: str = Field(..., min_length=1, max_length=200)


def percent_grid(low: float, high: float) -> tuple[float, ...]:
    """The 0.5-grid values in ``[low, high]`` (whole ones as ``int``: ``10``, not ``10.0``)."""
    steps = round((high - low) * 2)
    values = (low + i / 2 for i in range(steps + 1))
    return tuple(int(v) if v == int(v) else v for v in values)


@lru_cache(maxsize=1024)  # bounds sit on a 0.5 grid: a bounded number of classes
def grid_pricing_model(low: float, high: float) -> type[PricingDecision]:
    """``PricingDecision`` whose ``discount_percent`` is one of the 0.5-grid values in
    ``[low, high]``: an enum is short and on the grid, where a free JSON number may run on
    ("1.0000000…") until ``max_tokens``."""
    grid = percent_grid(low, high)
    return create_model(
        "PricingDecision",
        __base__=PricingDecision,
        __doc__=PricingDecision.__doc__,
        discount_percent=(Literal[grid], Field(...)),
    )


@lru_cache(maxsize=1024)
def bounded_pricing_model(high: float, low: float = 0.0) -> type[PricingDecision]:
    """``PricingDecision`` whose ``discount_percent`` lies in ``[low, high]`` (any value)."""
    return create_model(
        "PricingDecision",
        __base__=PricingDecision,
        __doc__=PricingDecision.__doc__,
        discount_percent=(float, Field(..., ge=low, le=high)),
    )
