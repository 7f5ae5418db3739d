"""The pages' routes (placeholder until the pages land)."""

from __future__ import annotations

from fastapi import FastAPI

from graph.settings import Settings


def install(app: FastAPI, s: Settings) -> None:
    """Register the pages on ``app``."""
