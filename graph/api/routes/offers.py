"""Offer codes: whether the caller may redeem one now."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from graph.api.deps import NegotiatorDep, ShopperDep
from graph.api.models import ErrorOut, OfferCheck, StandingOffer

router = APIRouter(prefix="/v1/offers", tags=["offers"])


@router.get(
    "/{code}",
    response_model=OfferCheck,
    responses={401: {"model": ErrorOut}},
    summary="Whether the caller may redeem this code now",
)
async def check_offer(code: str, neg: NegotiatorDep, who: ShopperDep) -> OfferCheck:
    """Another customer's code reads as unknown: nothing about it is shown."""
    check = await asyncio.to_thread(neg.services.ledger().validate, code[:64], who.user_id)
    offer = check.offer.model_dump(mode="json") if check.offer is not None else None
    return OfferCheck(
        code=check.offer.code if check.offer is not None else code[:64],
        valid=check.valid,
        # another customer's code is indistinguishable from one that does not exist
        reason="unknown_code" if check.reason == "wrong_user" else check.reason,
        offer=StandingOffer(**offer) if offer else None,
    )
