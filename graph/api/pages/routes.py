"""The pages' routes: ``/`` (the storefront chat widget), ``/manager`` (the approvals inbox),
``/analyst`` (the report dashboard), ``POST /signin`` and ``POST /signout``, and ``/static``.

The pages are HTML from autoescaping Jinja2 templates plus plain JavaScript and CSS files of
this package: no inline script or style, so the Content-Security-Policy allows only
``'self'``. The widget may be framed by the shop (``SGR_ALLOWED_ORIGINS``); the manager and
analyst pages by nobody.

Managers and analysts sign in with one of ``SGR_MANAGER_TOKENS``: ``POST /signin`` (same-origin
only: its ``Origin``, else its ``Referer``, must name this host) sets the ``HttpOnly``,
``SameSite=Strict`` sign-in cookie of :func:`graph.api.auth.session_cookie` (``Secure`` over
https). Its CSRF token is rendered into the pages (``<meta name="csrf-token">``); their
scripts send it back as ``X-CSRF-Token`` (``graph.api.deps.manager`` checks it).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from graph.api.auth import (
    SESSION_COOKIE,
    SESSION_TTL_S,
    Manager,
    manager_from_cookie,
    manager_from_token,
    session_cookie,
)
from graph.api.pages.dashboard import dashboard
from graph.api.routes.report import parse_since
from graph.settings import Settings
from graph.validation import InputError

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
TEMPLATES = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every template, whatever its name (the SVG charts included)
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
)
PAGES = {"/manager": "the manager inbox", "/analyst": "the analyst dashboard"}
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


def content_security_policy(frame_ancestors: str) -> str:
    """The pages' CSP: everything from this origin only, no inline script or style."""
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
        f"form-action 'self'; frame-ancestors {frame_ancestors}"
    )


def widget_ancestors(s: Settings) -> str:
    """Who may frame the widget: this origin and the shop's (``SGR_ALLOWED_ORIGINS``)."""
    origins = []
    for origin in s.allowed_origin_list:
        if _ORIGIN.fullmatch(origin):
            origins.append(origin)
        else:
            log.warning("SGR_ALLOWED_ORIGINS: %r is not an origin; the widget ignores it", origin)
    return " ".join(["'self'", *origins])


def _headers(frame_ancestors: str) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": content_security_policy(frame_ancestors),
        # same-origin (not the API's no-referrer): with no-referrer a browser sends
        # "Origin: null" on form posts, and the sign-in checks the Origin
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }
    if frame_ancestors == "'none'":
        headers["X-Frame-Options"] = "DENY"
    return headers


def signed_in(request: Request, s: Settings) -> Manager | None:
    """The manager of the request's sign-in cookie, if it is valid."""
    cookie = request.cookies.get(SESSION_COOKIE)
    return manager_from_cookie(s, cookie) if cookie else None


def same_origin(request: Request) -> bool:
    """Whether a form post comes from this site's own pages: its ``Origin`` (else its
    ``Referer``) names the host the request was sent to (``Host``, or ``X-Forwarded-Host``
    behind a proxy; a cross-site form cannot set either)."""
    hosts = {h.strip().lower() for h in request.headers.get("x-forwarded-host", "").split(",")}
    hosts.add((request.headers.get("host") or "").lower())
    hosts.discard("")
    source = request.headers.get("origin")
    if not source or source == "null":
        source = request.headers.get("referer")
    if not source:
        return False
    return (urlsplit(source).netloc or "").lower() in hosts


def _https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


async def _form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (the pages' only forms)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    try:
        fields = parse_qs(body, max_num_fields=8)
    except ValueError:  # more fields than any of the forms has
        return {}
    return {k: v[0] for k, v in fields.items()}


def _next_page(value: str | None) -> str:
    return value if value in PAGES else "/manager"


def install(app: FastAPI, s: Settings) -> None:
    """Register the pages and their static files on ``app``."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    framed_by = widget_ancestors(s)

    def page(
        request: Request,
        name: str,
        context: dict[str, Any],
        *,
        frame_ancestors: str = "'none'",
        status: int = 200,
    ) -> HTMLResponse:
        return TEMPLATES.TemplateResponse(
            request,
            name,
            {"shop_name": s.shop_name, "root": request.scope.get("root_path", ""), **context},
            status_code=status,
            headers=_headers(frame_ancestors),
        )

    def signin_page(request: Request, next_page: str, error: str = "", status: int = 200):
        return page(
            request,
            "signin.html",
            {
                "next": next_page,
                "what": PAGES[next_page],
                "error": error,
                "page_id": next_page.lstrip("/"),
            },
            status=status,
        )

    @app.get("/", include_in_schema=False, response_class=HTMLResponse)
    async def widget(request: Request) -> HTMLResponse:
        """The storefront chat widget (the token comes from the embed or ``?token=``)."""
        return page(request, "widget.html", {}, frame_ancestors=framed_by)

    @app.get("/manager", include_in_schema=False, response_class=HTMLResponse)
    async def inbox(request: Request) -> HTMLResponse:
        """The pending approvals (the list is drawn and kept live by ``inbox.js``)."""
        who = signed_in(request, s)
        if who is None:
            return signin_page(request, "/manager")
        return page(request, "inbox.html", {"who": who, "csrf": who.csrf, "page_id": "manager"})

    @app.get("/analyst", include_in_schema=False, response_class=HTMLResponse)
    async def analyst(request: Request) -> HTMLResponse:
        """The report with server-rendered SVG charts; ``?since=YYYY-MM-DD`` filters it."""
        who = signed_in(request, s)
        if who is None:
            return signin_page(request, "/analyst")
        since = (request.query_params.get("since") or "").strip()[:40]
        error = ""
        try:
            moment = parse_since(since)
        except InputError as e:
            error, since, moment = str(e), "", None
        neg = request.app.state.negotiator
        report = await asyncio.to_thread(neg.services.report, moment)
        view = dashboard(report, since)
        return page(
            request,
            "analyst.html",
            {"who": who, "csrf": who.csrf, "page_id": "analyst", "view": view, "error": error},
            status=400 if error else 200,
        )

    @app.post("/signin", include_in_schema=False, response_model=None)
    async def signin(request: Request) -> Response:
        """Check a manager token and set the sign-in cookie (same-origin posts only)."""
        form = await _form(request)
        next_page = _next_page(form.get("next"))
        if not same_origin(request):
            return signin_page(request, next_page, "Sign in from this site's own page.", status=403)
        token = (form.get("token") or "").strip()
        who = manager_from_token(s, token) if token else None
        if who is None:
            return signin_page(request, next_page, "That token is not valid.", status=401)
        cookie, _ = session_cookie(s, who)
        root = request.scope.get("root_path", "")
        response = RedirectResponse(root + next_page, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            cookie,
            max_age=SESSION_TTL_S,
            path="/",
            secure=_https(request),
            httponly=True,
            samesite="strict",
        )
        return response

    @app.post("/signout", include_in_schema=False, response_model=None)
    async def signout(request: Request) -> Response:
        """Clear the sign-in cookie (the form carries the page's CSRF token)."""
        form = await _form(request)
        next_page = _next_page(form.get("next"))
        who = signed_in(request, s)
        sent = form.get("csrf") or ""
        if who is not None and (
            not same_origin(request)
            or not who.csrf
            or not hmac.compare_digest(sent.encode(), who.csrf.encode())
        ):
            return Response("sign-out refused: not from this site's page", status_code=403)
        root = request.scope.get("root_path", "")
        response = RedirectResponse(root + next_page, status_code=303)
        response.delete_cookie(
            SESSION_COOKIE, path="/", secure=_https(request), httponly=True, samesite="strict"
        )
        return response
