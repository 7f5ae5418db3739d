"""The shopper's own cart and standing offer (what the widget opens with)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from graph.api.deps import NegotiatorDep, ShopperDep
from graph.api.models import CartOut, ErrorOut, StandingOffer
from stores.models import UnknownUser

router = APIRouter(prefix="/v1", tags=["shopper"])


@router.get(
    "/me",
    response_model=CartOut,
    responses={401: {"model": ErrorOut}, 404: {"model": ErrorOut}},
    summary="The caller's cart and the code they hold, if any",
)
async def me(neg: NegotiatorDep, who: ShopperDep) -> CartOut:
    from graph.session import UnknownSessionError

    services = neg.services

    def read() -> tuple[object, object]:
        return services.features().lookup(who.user_id), services.ledger().standing_offer(
            who.user_id
        )

    found, standing = await asyncio.to_thread(read)
    if isinstance(found, UnknownUser):
        raise UnknownSessionError(f"no cart for {who.user_id}")
    offer = standing.model_dump(mode="json") if standing is not None else None  # type: ignore[attr-defined]
    return CartOut(
        user_id=who.user_id,
        cart_value=found.cart_value,  # type: ignore[attr-defined]
        offer=StandingOffer(**offer) if offer else None,
    )
