"""FastAPI dependencies: the deployment's runner, and who is calling.

All ``async def``: FastAPI runs a plain ``def`` dependency in its thread pool, a hand-off per
dependency per request (a third of the service's CPU under 200 concurrent sessions).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from graph.api.auth import (
    SESSION_COOKIE,
    AuthError,
    Manager,
    Shopper,
    manager_from_cookie,
    manager_from_token,
    shopper_from_token,
)
from graph.session import Negotiator
from graph.settings import Settings


async def negotiator(request: Request) -> Negotiator:
    """The worker's session runner (opened by the app's lifespan)."""
    return request.app.state.negotiator


async def settings(request: Request) -> Settings:
    """The worker's settings."""
    return request.app.state.settings


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def shopper(request: Request, s: Annotated[Settings, Depends(settings)]) -> Shopper:
    """The customer of a shopper call: ``Authorization: Bearer <the shop's JWT>``."""
    token = _bearer(request)
    if token is None:
        raise AuthError(401, "sign in: send Authorization: Bearer <token from the shop>")
    if manager_from_token(s, token) is not None:
        raise AuthError(403, "a manager token cannot act as a shopper")
    return shopper_from_token(s, token)


async def manager(request: Request, s: Annotated[Settings, Depends(settings)]) -> Manager:
    """A manager or analyst: a bearer token from ``SGR_MANAGER_TOKENS``, or the pages'
    sign-in cookie (then unsafe methods must carry its CSRF token in ``X-CSRF-Token``)."""
    token = _bearer(request)
    if token is not None:
        found = manager_from_token(s, token)
        if found is not None:
            return found
        try:
            shopper_from_token(s, token)
        except AuthError:
            raise AuthError(401, "invalid manager token") from None
        raise AuthError(403, "manager or analyst access only")
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        found = manager_from_cookie(s, cookie)
        if found is None:
            raise AuthError(401, "your sign-in has expired: sign in again")
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            sent = request.headers.get("x-csrf-token") or ""
            if not found.csrf or not _same(sent, found.csrf):
                raise AuthError(403, "missing or wrong CSRF token")
        return found
    raise AuthError(401, "sign in: send Authorization: Bearer <manager token>")


def manager_call(request: Request, s: Settings) -> bool:
    """Whether the call presents manager credentials (a manager token or the cookie)."""
    token = _bearer(request)
    if token is not None:
        return manager_from_token(s, token) is not None
    return bool(request.cookies.get(SESSION_COOKIE))


def _same(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())


NegotiatorDep = Annotated[Negotiator, Depends(negotiator)]
SettingsDep = Annotated[Settings, Depends(settings)]
ShopperDep = Annotated[Shopper, Depends(shopper)]
ManagerDep = Annotated[Manager, Depends(manager)]
