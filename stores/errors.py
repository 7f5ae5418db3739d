"""Typed errors of the stores."""

from __future__ import annotations

from typing import Literal

OfferReason = Literal[
    "ok",
    "unknown_code",
    "wrong_user",
    "expired",
    "superseded",
    "rejected",
    "approval_pending",
    "not_pending",
]


class StoreNotFoundError(FileNotFoundError):
    """A store file is missing: the data has not been generated yet."""

    def __init__(self, path: object, what: str) -> None:
        super().__init__(f"{what} not found at {path}: run `discount-manager setup-data`")
        self.path = path


class OfferError(Exception):
    """An offer operation refused, with a machine-readable ``reason``."""

    def __init__(self, reason: OfferReason, message: str | None = None) -> None:
        super().__init__(message or reason)
        self.reason: OfferReason = reason
