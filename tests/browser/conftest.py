"""Browser fixtures: Debian's chromium (one per test module), the real app on a loopback
port per test, and pages that fail the test on a script error, a CSP violation or a dialog.

Without chromium (or PyPI playwright) the tests fail under ``CI`` and are skipped otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from graph.ops.sim.fake_model import fake_structured_llm
from graph.settings import Settings
from graph.sgr import StructuredLLM
from tests.browser.harness import LiveServer, browser_settings, chromium_unavailable, launch


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium under Playwright's sync API, per module: while it runs, Playwright's event
    loop counts as running in this thread, and later tests calling ``asyncio.run`` (the rest
    of the suite) would fail if it outlived the browser modules."""
    reason = chromium_unavailable()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests need chromium under CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=10_000)  # a shared 2-core machine: polls every 2 s plus load
    with sync_playwright() as p:
        b = launch(p)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def serve(settings: Settings) -> Iterator[Callable[..., LiveServer]]:
    """``serve(llm=None, **settings)``: the app on the seeded data dir (default model: the
    deterministic ``fake_structured_llm``), stopped after the test."""
    started: list[LiveServer] = []

    def factory(llm: StructuredLLM | None = None, **overrides: Any) -> LiveServer:
        server = LiveServer(llm or fake_structured_llm(), browser_settings(settings, **overrides))
        started.append(server.start())
        return server

    yield factory
    for server in started:
        server.stop()


class Pages:
    """New pages, each in a context of its own (a separate browser profile: cookies and
    sessionStorage are not shared), watched for trouble."""

    def __init__(self, browser: Any) -> None:
        self.browser = browser
        self.contexts: list[Any] = []
        self.problems: list[str] = []
        self.dialogs: list[str] = []

    def new(self, **context: Any) -> Any:
        ctx = self.browser.new_context(**{"viewport": {"width": 1280, "height": 800}, **context})
        self.contexts.append(ctx)
        page = ctx.new_page()
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("console", self._console)
        page.on("dialog", self._dialog)
        return page

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            self.problems.append(f"console: {message.text}")

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def close(self) -> None:
        for ctx in self.contexts:
            ctx.close()


@pytest.fixture
def pages(browser: Any) -> Iterator[Pages]:
    watched = Pages(browser)
    yield watched
    watched.close()
    assert not watched.dialogs, watched.dialogs
    assert not watched.problems, watched.problems
