"""The HTTP service on a seeded data dir with a scripted model (Starlette's TestClient runs
the app's lifespan in a thread of its own)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from graph.api.app import create_app
from graph.api.auth import shopper_token
from graph.services import Services
from graph.settings import Settings
from graph.sgr import StructuredLLM

SECRET = "test-shop-secret-0123456789abcdef"
MANAGER = "alice:manager-token-123"
MANAGER_TOKEN = "manager-token-123"


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "shop_secret": SECRET,
            "manager_tokens": f"{MANAGER},bob:other-manager-456",
            "allowed_origins": "https://shop.example",
        }
    )


class Api:
    """A started app plus helpers for the tokens of its callers."""

    def __init__(self, client: TestClient, settings: Settings, services: Services) -> None:
        self.client = client
        self.settings = settings
        self.services = services

    def shopper(self, user: str = "user_100", ttl: int = 600) -> dict[str, str]:
        return {"Authorization": f"Bearer {shopper_token(self.settings, user, ttl)}"}

    @staticmethod
    def manager(token: str = MANAGER_TOKEN) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def turn(self, session: str, message: str, user: str = "user_100", **kw: Any) -> Any:
        return self.client.post(
            f"/v1/sessions/{session}/turns",
            json={"message": message},
            headers={**self.shopper(user), **kw.pop("headers", {})},
            **kw,
        )


@pytest.fixture
def make_api(api_settings: Settings) -> Iterator[Callable[..., Api]]:
    opened: list[TestClient] = []

    def factory(llm: StructuredLLM, **overrides: Any) -> Api:
        s = api_settings.model_copy(update=overrides) if overrides else api_settings
        services = Services.with_llm(llm, s)
        client = TestClient(create_app(services=services))
        client.__enter__()
        opened.append(client)
        return Api(client, s, services)

    yield factory
    for client in opened:
        client.__exit__(None, None, None)
