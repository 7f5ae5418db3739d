"""The real app served by uvicorn on a loopback port, and Debian's chromium driven by PyPI
Playwright (never ``playwright install``): what the browser tests and the screenshot script
share."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from graph.api.app import create_app
from graph.api.auth import shopper_token
from graph.services import Services
from graph.settings import Settings
from graph.sgr import StructuredLLM

try:
    from playwright.sync_api import expect
except ImportError:  # the ``browser`` fixture skips, or fails under CI, and says why
    expect = None  # type: ignore[assignment]

__all__ = ["expect"]

CHROMIUM = Path(os.environ.get("SGR_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",  # we run as root
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOP_SECRET = "browser-test-shop-secret-0123456789"
MANAGERS = {"alice": "alice-token-0123", "bob": "bob-token-4567"}
SHOP_ORIGIN = "http://localhost:8123"  # the embedding shop: served by page.route, never fetched
# (localhost: a secure context, which Chrome requires of a page embedding a loopback server)


def browser_settings(base: Settings, **overrides: Any) -> Settings:
    """``base`` (a seeded data dir) with the secrets, managers and shop origin of the tests."""
    update = {
        "shop_secret": SHOP_SECRET,
        "manager_tokens": ",".join(f"{n}:{t}" for n, t in MANAGERS.items()),
        "allowed_origins": SHOP_ORIGIN,
        **overrides,
    }
    return base.model_copy(update=update)


def chromium_unavailable() -> str | None:
    """Why the browser tests cannot run here, or ``None``."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as e:
        return f"PyPI playwright is not installed ({e}); uv sync installs the dev group"
    if not CHROMIUM.is_file():
        return f"no chromium at {CHROMIUM} (apt-get install chromium, or set SGR_CHROMIUM)"
    return None


def launch(playwright: Any) -> Any:
    """Debian's chromium, headless."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


class LiveServer:
    """``create_app(services=...)`` under uvicorn in a background thread on a free port."""

    def __init__(self, llm: StructuredLLM, settings: Settings) -> None:
        self.settings = settings
        self.services = Services.with_llm(llm, settings)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(services=self.services),
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the app did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    # -- helpers -------------------------------------------------------------------------

    def token(self, user: str = "user_100", ttl: int = 900) -> str:
        return shopper_token(self.settings, user, ttl)

    def widget_url(self, user: str = "user_100") -> str:
        """The widget as embed.js opens it: the JWT in the URL fragment."""
        return f"{self.url}/#token={self.token(user)}"

    def turn(self, session: str, message: str, user: str = "user_100") -> dict[str, Any]:
        """A turn through the HTTP API (JSON), for setting the scene."""
        r = httpx.post(
            f"{self.url}/v1/sessions/{session}/turns",
            json={"message": message},
            headers={"Authorization": f"Bearer {self.token(user)}"},
            timeout=30,
        )
        assert r.status_code in (200, 503), r.text
        return r.json()

    def decide(self, session: str, decision: str, percent: float | None = None) -> Any:
        body: dict[str, Any] = {"decision": decision}
        if percent is not None:
            body["percent"] = percent
        return httpx.post(
            f"{self.url}/v1/approvals/{session}",
            json=body,
            headers={"Authorization": f"Bearer {MANAGERS['alice']}"},
            timeout=30,
        )


def sign_in(page: Any, server: LiveServer, path: str = "/manager", who: str = "alice") -> None:
    """Open ``path`` and sign in through its form."""
    page.goto(server.url + path)
    page.get_by_label("Token").fill(MANAGERS[who])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(re.escape(server.url + path) + r"(\?.*)?$"))
