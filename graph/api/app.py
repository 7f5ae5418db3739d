"""The ASGI app: ``create_app()`` (``uvicorn --factory graph.api.app:create_app``).

Each worker process opens the deployment's checkpoints and stores once (lifespan) and runs
every request through the same :class:`graph.session.Negotiator` as the CLI. Nothing lives in
the worker between requests: any worker serves any turn of any session.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graph.api import errors
from graph.api.routes import approvals, health, me, offers, report, sessions
from graph.services import Services
from graph.session import open_negotiator
from graph.settings import Settings

log = logging.getLogger(__name__)

API_HEADERS = {
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"no-referrer",
}


class SecurityHeaders:
    """Headers every response carries (pages add their Content-Security-Policy)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in API_HEADERS.items() if k not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Request bodies over ``limit`` bytes get ``413 {"error": ...}``: by ``Content-Length``
    before anything is read, or while a chunked body is read."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def _refuse(self, send: Send) -> None:
        body = b'{"error":"request body too large"}'
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers") or ():
            if key == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(send)
                return
        seen = 0
        started = False

        async def counting() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body") or b"")
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting, tracking)
        except _TooLarge:
            if not started:
                await self._refuse(send)


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """The service on ``settings`` (default: the environment), or on ready ``services``."""
    s = services.settings if services is not None else settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_negotiator(services or Services(settings=s)) as neg:
            app.state.negotiator = neg
            yield

    app = FastAPI(
        title="SGR Negotiator",
        summary="Discount negotiations for shoppers; approvals for managers; the report.",
        version="1.0",
        lifespan=lifespan,
    )
    app.state.settings = s
    errors.install(app)
    for module in (sessions, offers, approvals, report, me, health):
        app.include_router(module.router)
    from graph.api.pages import routes as pages

    pages.install(app, s)
    if s.allowed_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=s.allowed_origin_list,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Accept"],
            max_age=600,
        )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit, limit=s.max_body_bytes)
    return app
